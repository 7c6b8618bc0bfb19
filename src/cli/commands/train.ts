/** `vpt train`: tune a frozen backbone on a folder of images with one protocol (VPT-deep by default). */
import { renameSync, writeFileSync } from 'node:fs';
import { writeTask } from '../../core/io/task-file';
import { readCheckpoint, writeCheckpoint } from '../../core/train/checkpoint';
import { describeReplay } from '../../core/train/replay';
import { resolveTrainConfig, type TrainConfig } from '../../core/train/config';
import { train as runTraining } from '../../core/train/loop';
import { describePlan, formatBudget, planPasses } from '../../core/train/memory';
import { parseSpec, protocolOf, titleOf } from '../../core/tuning/registry';
import type { ProtocolSpec } from '../../core/tuning/types';
import { FrozenViT } from '../../core/vit/model';
import { num, oneOf, str, UsageError, type Parsed } from '../args';
import { loadBackboneFromPath, readBytes } from '../node-io';
import { backboneRef, loadTrainData, log, memoryFlag, preprocessingFromFlags } from './common';
import { engineKernels } from '../../core/vit/ops';

function writeAtomic(path: string, bytes: Uint8Array): void {
  // Write then rename, so a crash never leaves a half-written file under the real name.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

/** `--protocol NAME[-N]`, or the VPT shorthands `--variant deep|shallow` and `--prompts N`. */
function protocolFromFlags(p: Parsed): ProtocolSpec | undefined {
  const text = str(p, 'protocol');
  const variant = oneOf(p, 'variant', ['deep', 'shallow'] as const);
  const prompts = num(p, 'prompts', true);
  if (text && variant) throw new UsageError('use either --protocol or --variant');
  let spec = text ? parseSpec(text) : variant ? parseSpec(`vpt-${variant}`) : undefined;
  if (prompts !== undefined) {
    if (spec && !spec.name.startsWith('vpt-')) throw new UsageError(`--prompts applies to VPT, not ${spec.name}`);
    spec = { name: spec?.name ?? 'vpt-deep', n: prompts };
  }
  return spec;
}

export function configFromFlags(p: Parsed): Partial<TrainConfig> {
  return {
    protocol: protocolFromFlags(p), epochs: num(p, 'epochs', true), batch: num(p, 'batch', true),
    lr: num(p, 'lr'), weightDecay: num(p, 'wd'), optimizer: oneOf(p, 'optimizer', ['sgd', 'adamw'] as const),
    warmupEpochs: num(p, 'warmup', true), schedule: oneOf(p, 'schedule', ['step', 'epoch'] as const),
    promptDropout: num(p, 'prompt-dropout'), valSplit: num(p, 'val-split'),
    augment: p.flags.get('augment') === true ? true : undefined, seed: num(p, 'seed', true), microBatch: num(p, 'micro-batch', true),
    cacheFeatures: p.flags.get('no-cache') === true ? false : undefined,
    recompute: p.flags.get('recompute') === true ? true : undefined,
  };
}

export async function train(p: Parsed, backend: string): Promise<void> {
  const backbonePath = str(p, 'backbone');
  const dataDir = str(p, 'data');
  const out = str(p, 'out');
  if (!backbonePath || !dataDir || !out) throw new UsageError('train needs --backbone PATH --data DIR --out FILE');
  const budgetBytes = memoryFlag(p);
  const resumePath = str(p, 'resume');
  const resume = resumePath ? readCheckpoint(readBytes(resumePath), resumePath) : undefined;
  // A resumed run keeps its own settings; flags may only extend the epochs.
  const cfg = resume ? resolveTrainConfig({ ...resume.config, epochs: num(p, 'epochs', true) ?? resume.config.epochs }) : resolveTrainConfig(configFromFlags(p));
  const b = await loadBackboneFromPath(backbonePath);
  b.warnings.forEach((w) => log(`warning: ${b.name}: ${w}`));
  const pre = preprocessingFromFlags(b, p);
  const { train: trainEx, val, classes } = await loadTrainData(dataDir, pre, cfg);
  log(`backbone ${b.architecture}, ${b.format}, fingerprint ${b.fingerprint.slice(0, 12)}; backend ${backend}`);
  log(`data: ${classes.length} classes, ${trainEx.length} train, ${val.length} validation images; ${titleOf(cfg.protocol)}`);
  const warning = protocolOf(cfg.protocol.name).warning;
  if (warning) log(`warning: ${warning}`);
  // Passes that keep the whole step within --memory, as the studio plans them (gradients accumulate exactly: same result).
  const planned = planPasses(b.weights.config, cfg, { budgetBytes, ...engineKernels() });
  if (planned.microBatch < cfg.batch) log(`memory: ${describePlan(planned, cfg)} (${formatBudget(budgetBytes)} for the whole step)`);
  const model = new FrozenViT(b.weights);
  const ckptPath = str(p, 'checkpoint') ?? out.replace(/(\.vpt)?\.safetensors$/, '') + '.ckpt.safetensors';
  try {
    const result = await runTraining(model, pre, { train: trainEx, val, classes }, planned, b.fingerprint, {
      onEpoch: (r) => log(`epoch ${r.epoch}/${cfg.epochs}  loss ${r.loss.toFixed(4)}  train ${(100 * r.trainAccuracy).toFixed(1)}%` +
        `${r.valAccuracy === null ? '' : `  val ${(100 * r.valAccuracy).toFixed(1)}%`}  lr ${r.lr.toExponential(2)}  ${r.imagesPerSecond.toFixed(1)} img/s`),
      onCheckpoint: (c) => writeAtomic(ckptPath, writeCheckpoint(c)),
    }, resume);
    if (result.diverged) log(`warning: ${result.diverged}`);
    const ref = backboneRef(b);
    const metrics = result.validation ? { accuracy: result.validation.accuracy, per_class: result.validation.perClass, split: 'validation', count: result.validation.count } : {};
    const training = { ...cfg, lr_per_256: cfg.lr, lr_applied: result.appliedLr, best_epoch: result.bestEpoch, epochs_run: result.history.length, backend, train_images: trainEx.length, val_images: val.length };
    const bytes = writeTask(result.state, { classes, backbone: ref, preprocessing: pre, training, metrics }, {
      dtype: p.flags.get('fp16') === true ? 'F16' : 'F32', naming: oneOf(p, 'naming', ['vpt', 'official'] as const) ?? 'vpt',
    });
    writeAtomic(out, bytes);
    log(`best epoch ${result.bestEpoch}${result.bestValAccuracy === null ? '' : ` (validation ${(100 * result.bestValAccuracy).toFixed(1)}%)`}; wrote ${out} (${bytes.byteLength} bytes)`);
    const replay = describeReplay(result.steps);
    if (replay) log(replay);
    if (p.flags.get('json') === true) {
      process.stdout.write(JSON.stringify({
        out, bytes: bytes.byteLength, classes, best_epoch: result.bestEpoch, val_accuracy: result.bestValAccuracy,
        per_class: result.validation?.perClass ?? null, lr_per_256: cfg.lr, lr_applied: result.appliedLr, history: result.history, config: cfg, backend, diverged: result.diverged,
        features_cached: result.cached, embeddings_cached: result.embedded,
        steps: result.steps.steps, replayed_steps: result.steps.webgpu ? result.steps.replayed : null, not_replayed: result.steps.webgpu && !result.steps.replayed ? result.steps.refused : null,
      }) + '\n');
    }
  } finally {
    model.dispose();
  }
}
