/** `vpt train`: prompt-tune a frozen backbone on a folder of images. */
import { renameSync, writeFileSync } from 'node:fs';
import { VptError } from '../../core/errors';
import { writeTask, type BackboneRef } from '../../core/io/task-file';
import { readCheckpoint, writeCheckpoint } from '../../core/train/checkpoint';
import { resolveTrainConfig, type TrainConfig } from '../../core/train/config';
import type { Example } from '../../core/train/evaluate';
import { trainVpt } from '../../core/train/loop';
import { splitTrainVal } from '../../core/train/split';
import { FrozenViT } from '../../core/vit/model';
import { num, oneOf, str, UsageError, type Parsed } from '../args';
import { loadBackboneFromPath, loadExamples, readBytes, readLayout } from '../node-io';
import { log, preprocessingFromFlags } from './common';

function writeAtomic(path: string, bytes: Uint8Array): void {
  // Write then rename, so a crash never leaves a half-written file under the real name.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

export function configFromFlags(p: Parsed): Partial<TrainConfig> {
  return {
    variant: oneOf(p, 'variant', ['deep', 'shallow'] as const),
    numPrompts: num(p, 'prompts', true), epochs: num(p, 'epochs', true), batch: num(p, 'batch', true),
    lr: num(p, 'lr'), weightDecay: num(p, 'wd'), optimizer: oneOf(p, 'optimizer', ['sgd', 'adamw'] as const),
    warmupEpochs: num(p, 'warmup', true), schedule: oneOf(p, 'schedule', ['step', 'epoch'] as const),
    promptDropout: num(p, 'prompt-dropout'), valSplit: num(p, 'val-split'),
    augment: p.flags.get('augment') === true ? true : undefined, seed: num(p, 'seed', true), microBatch: num(p, 'micro-batch', true),
  };
}

export async function train(p: Parsed, backend: string): Promise<void> {
  const backbonePath = str(p, 'backbone');
  const dataDir = str(p, 'data');
  const out = str(p, 'out');
  if (!backbonePath || !dataDir || !out) throw new UsageError('train needs --backbone PATH --data DIR --out FILE');
  const resumePath = str(p, 'resume');
  const resume = resumePath ? readCheckpoint(readBytes(resumePath), resumePath) : undefined;
  // A resumed run keeps its own settings; flags may only extend the epochs.
  const cfg = resume ? resolveTrainConfig({ ...resume.config, epochs: num(p, 'epochs', true) ?? resume.config.epochs }) : resolveTrainConfig(configFromFlags(p));
  const b = await loadBackboneFromPath(backbonePath);
  b.warnings.forEach((w) => log(`warning: ${b.name}: ${w}`));
  const pre = preprocessingFromFlags(b, p);
  const layout = readLayout(dataDir);
  const trainSet = loadExamples(dataDir, layout, 'train', pre);
  let val: Example[] = [];
  let trainEx = trainSet.examples;
  const skipped = [...trainSet.skipped];
  if (layout.kind === 'split' && layout.splits.val) {
    const v = loadExamples(dataDir, layout, 'val', pre);
    val = v.examples;
    skipped.push(...v.skipped);
  } else if (cfg.valSplit > 0) {
    const s = splitTrainVal(trainEx.map((e) => e.label), cfg.valSplit, cfg.seed);
    val = s.val.map((i) => trainEx[i]);
    trainEx = s.train.map((i) => trainEx[i]);
  }
  for (const s of [...layout.skipped, ...skipped]) log(`skipped: ${dataDir}/${s.path}: ${s.reason}`);
  const classes = trainSet.classes;
  if (classes.length < 2) throw new VptError(dataDir, `needs at least 2 class folders, found ${classes.length}`);
  const counts = classes.map((_, i) => trainEx.filter((e) => e.label === i).length);
  const empty = classes.filter((_, i) => counts[i] === 0);
  if (empty.length) throw new VptError(dataDir, `class folder(s) without usable training images: ${empty.join(', ')}`);
  log(`backbone ${b.architecture}, ${b.format}, fingerprint ${b.fingerprint.slice(0, 12)}; backend ${backend}`);
  log(`data: ${classes.length} classes, ${trainEx.length} train, ${val.length} validation images; VPT-${cfg.variant} p=${cfg.numPrompts}`);
  const model = new FrozenViT(b.weights);
  const ckptPath = str(p, 'checkpoint') ?? out.replace(/(\.vpt)?\.safetensors$/, '') + '.ckpt.safetensors';
  try {
    const result = await trainVpt(model, pre, { train: trainEx, val, classes }, cfg, b.fingerprint, {
      onEpoch: (r) => log(`epoch ${r.epoch}/${cfg.epochs}  loss ${r.loss.toFixed(4)}  train ${(100 * r.trainAccuracy).toFixed(1)}%` +
        `${r.valAccuracy === null ? '' : `  val ${(100 * r.valAccuracy).toFixed(1)}%`}  lr ${r.lr.toExponential(2)}  ${r.imagesPerSecond.toFixed(1)} img/s`),
      onCheckpoint: (c) => writeAtomic(ckptPath, writeCheckpoint(c)),
    }, resume);
    const ref: BackboneRef = {
      name: b.name.split(/[\\/]/).slice(-2).join('/'), architecture: b.architecture, fingerprint: b.fingerprint,
      hidden_size: b.weights.config.hiddenSize, num_layers: b.weights.config.numLayers, patch_size: b.weights.config.patchSize, image_size: b.weights.config.imageSize,
    };
    const metrics = result.validation ? { accuracy: result.validation.accuracy, per_class: result.validation.perClass, split: 'validation', count: result.validation.count } : {};
    const training = { ...cfg, lr_per_256: cfg.lr, lr_applied: result.appliedLr, best_epoch: result.bestEpoch, epochs_run: result.history.length, backend, train_images: trainEx.length, val_images: val.length };
    const bytes = writeTask(result.state, { classes, backbone: ref, preprocessing: pre, training, metrics }, {
      dtype: p.flags.get('fp16') === true ? 'F16' : 'F32', naming: oneOf(p, 'naming', ['vpt', 'official'] as const) ?? 'vpt',
    });
    writeAtomic(out, bytes);
    log(`best epoch ${result.bestEpoch}${result.bestValAccuracy === null ? '' : ` (validation ${(100 * result.bestValAccuracy).toFixed(1)}%)`}; wrote ${out} (${bytes.byteLength} bytes)`);
    if (p.flags.get('json') === true) {
      process.stdout.write(JSON.stringify({
        out, bytes: bytes.byteLength, classes, best_epoch: result.bestEpoch, val_accuracy: result.bestValAccuracy,
        per_class: result.validation?.perClass ?? null, lr_per_256: cfg.lr, lr_applied: result.appliedLr, history: result.history, config: cfg, backend,
      }) + '\n');
    }
  } finally {
    model.dispose();
  }
}
