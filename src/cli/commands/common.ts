/** Pieces shared by the CLI commands. */
import { readFileSync } from 'node:fs';
import { VptError } from '../../core/errors';
import { backboneRef as coreBackboneRef, checkTaskAgainstBackbone, readTask, type BackboneRef, type Task } from '../../core/io/task-file';
import type { TrainConfig } from '../../core/train/config';
import type { Example } from '../../core/train/evaluate';
import type { TrainData } from '../../core/train/loop';
import { splitTrainVal } from '../../core/train/split';
import type { Preprocessing } from '../../core/vit/config';
import type { Backbone } from '../../core/vit/load';
import { DEFAULT_STEP_BUDGET, validBudget } from '../../core/train/memory';
import { num, oneOf, str, triple, UsageError, type Parsed } from '../args';
import { decoderFor } from '../decode-pool';
import { loadExamples, readBytes, readLayout } from '../node-io';

export const log = (msg: string) => process.stderr.write(msg + '\n');

/** Backbone preprocessing with `--resize`, `--mean`, `--std` applied on top. */
export function preprocessingFromFlags(b: Backbone, p: Parsed, base?: Preprocessing): Preprocessing {
  const pre = { ...(base ?? b.preprocessing) };
  const resize = oneOf(p, 'resize', ['crop', 'direct'] as const);
  if (resize) pre.resize = resize;
  const mean = triple(p, 'mean');
  const std = triple(p, 'std');
  if (mean) { pre.mean = mean; pre.source = 'flags'; }
  if (std) {
    if (std.some((s) => s <= 0)) throw new VptError('--std', 'every value must be positive');
    pre.std = std; pre.source = 'flags';
  }
  return pre;
}

export function loadTaskFor(b: Backbone, path: string, classes?: string[]): Task {
  const task = readTask(readBytes(path), path, classes);
  checkTaskAgainstBackbone(task, b.weights.config, b.fingerprint, path);
  task.warnings.forEach((w) => log(`warning: ${path}: ${w}`));
  return task;
}

export function classesFlag(p: Parsed): string[] | undefined {
  const v = p.flags.get('classes');
  if (typeof v !== 'string') return undefined;
  if (v.startsWith('@')) return readFileSync(v.slice(1), 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
  return v.split(',').map((s) => s.trim());
}

/** What a task file records about its backbone, named by the last two parts of its path (not the user's whole path). */
export function backboneRef(b: Backbone): BackboneRef {
  return coreBackboneRef(b, b.name.split(/[\\/]/).slice(-2).join('/'));
}

/**
 * Training and validation examples from a data folder: its own val split
 * when it has one, else `cfg.valSplit` of train (stratified, seeded).
 * Skipped files are logged; classes without images are an error.
 */
export async function loadTrainData(dataDir: string, pre: Preprocessing, cfg: Pick<TrainConfig, 'valSplit' | 'seed'>, pixelBudget?: number): Promise<TrainData> {
  const layout = readLayout(dataDir);
  const trainSet = await loadExamples(dataDir, layout, 'train', pre, pixelBudget, decoderFor);
  let val: Example[] = [];
  let trainEx = trainSet.examples;
  const skipped = [...trainSet.skipped];
  if (layout.kind === 'split' && layout.splits.val) {
    const v = await loadExamples(dataDir, layout, 'val', pre, pixelBudget, decoderFor);
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
  return { train: trainEx, val, classes };
}

/** `--memory GiB`: bytes for a whole training step, the frozen model included (the planner's budget; 2 GiB by default). */
export function memoryFlag(p: Parsed): number {
  const gib = num(p, 'memory');
  if (gib === undefined) return DEFAULT_STEP_BUDGET;
  if (!validBudget(gib * 1024 ** 3) || gib > 1024) throw new UsageError(`--memory expects GiB for a training step, more than 0 and at most 1024, got "${str(p, 'memory')}"`);
  return gib * 1024 ** 3;
}
