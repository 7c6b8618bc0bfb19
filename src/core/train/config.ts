/** Training settings: one typed config, its defaults and its validation. */
import { VptError } from '../errors';
import { checkSpec } from '../tuning/registry';
import type { ProtocolName, ProtocolSpec } from '../tuning/types';
import type { OptimizerName } from './optimizer';
import type { ScheduleUnit } from './schedule';

export interface TrainConfig {
  /** The tuning protocol and its size (VPT: the number of prompts). */
  protocol: ProtocolSpec;
  epochs: number;
  batch: number;
  /** Learning rate per 256 images; the applied rate is lr x batch / 256. */
  lr: number;
  weightDecay: number;
  optimizer: OptimizerName;
  warmupEpochs: number;
  schedule: ScheduleUnit;
  promptDropout: number;
  valSplit: number;
  augment: boolean;
  seed: number;
  /** Images per forward/backward pass; 0 = the whole batch. Gradients accumulate exactly. */
  microBatch: number;
  /** Head-only protocols without augmentation: compute each image's features once. */
  cacheFeatures: boolean;
  /** Recompute frozen blocks in the backward pass instead of keeping their activations (less memory, one more forward). */
  recompute: boolean;
}

/**
 * Per-256 defaults: SGD 1.0 (0.25 applied at batch 64), AdamW 0.1 (0.025).
 * AdamW was 0.004: with the official head's start (kaiming normal, fan_out,
 * so logits of several units) Adam's fixed step size could not move the head
 * far enough. On the demo (tiny-vit-mnist, notMNIST, batch 32, 10 epochs)
 * the best validation at 0.004 / 0.04 / 0.4 per 256 was 9 / 54 / 70% for
 * Linear, 13 / 49 / 72% for VPT-shallow and 13 / 46 / 72% (0.1: 65%) for
 * VPT-deep; at 100 epochs VPT-deep reached 46% at 0.004 and 79% at 0.4, as
 * SGD does. 0.1 stays nearer the rates published for prompts with AdamW.
 */
export const DEFAULT_LR: Record<OptimizerName, number> = { sgd: 1.0, adamw: 0.1 };

/**
 * Protocols that change backbone tensors need smaller rates than prompts or
 * a head: the paper's grids find ~0.001-0.01 for Full, and a bias's gradient
 * sums over every token of every image (measured here with SGD: Bias at the
 * prompts' rate stays at chance on notMNIST letters). Adam's steps do not grow with
 * the gradient, so its factors follow the size of the change a weight can
 * take instead: Full 1e-4 per 256 (about DeiT's fine-tuning rate).
 */
const LR_FACTOR: Record<OptimizerName, Partial<Record<ProtocolName, number>>> = {
  sgd: { full: 0.01, partial: 0.05, bias: 0.1 },
  adamw: { full: 0.001, partial: 0.01, bias: 0.1 },
};

export function defaultLr(optimizer: OptimizerName, protocol: ProtocolName): number {
  return DEFAULT_LR[optimizer] * (LR_FACTOR[optimizer][protocol] ?? 1);
}

/** Paper-like defaults (official VPT configs: SGD momentum 0.9, batch 64, 100 epochs, 10 warm-up). */
export const DEFAULT_TRAIN: TrainConfig = {
  protocol: { name: 'vpt-deep', n: 10 }, epochs: 100, batch: 64, lr: DEFAULT_LR.sgd, weightDecay: 1e-4,
  optimizer: 'sgd', warmupEpochs: 10, schedule: 'step', promptDropout: 0, valSplit: 0.1,
  augment: false, seed: 42, microBatch: 0, cacheFeatures: true, recompute: false,
};

/** Fill unset fields: lr follows the optimiser, warm-up a tenth of the epochs. */
export function resolveTrainConfig(partial: Partial<TrainConfig>): TrainConfig {
  const optimizer = partial.optimizer ?? DEFAULT_TRAIN.optimizer;
  const epochs = partial.epochs ?? DEFAULT_TRAIN.epochs;
  const cfg: TrainConfig = {
    ...DEFAULT_TRAIN,
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
    optimizer, epochs,
    lr: partial.lr ?? defaultLr(optimizer, (partial.protocol ?? DEFAULT_TRAIN.protocol).name),
    warmupEpochs: partial.warmupEpochs ?? Math.round(epochs / 10),
  };
  validateTrainConfig(cfg);
  return cfg;
}

export function validateTrainConfig(c: TrainConfig): void {
  const bad = (k: string, why: string) => { throw new VptError(`--${k}`, why); };
  checkSpec(c.protocol);
  const posInt: [string, number][] = [['epochs', c.epochs], ['batch', c.batch]];
  for (const [k, v] of posInt) if (!Number.isSafeInteger(v) || v < 1) bad(k, `${v} is not a positive integer`);
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) bad('lr', `${c.lr} must be a positive number`);
  if (!(c.weightDecay >= 0)) bad('wd', `${c.weightDecay} must be >= 0`);
  if (c.optimizer !== 'sgd' && c.optimizer !== 'adamw') bad('optimizer', `"${c.optimizer}" is not sgd or adamw`);
  if (!Number.isSafeInteger(c.warmupEpochs) || c.warmupEpochs < 0 || c.warmupEpochs > c.epochs) bad('warmup', `${c.warmupEpochs} must be an integer between 0 and the epochs`);
  if (c.schedule !== 'step' && c.schedule !== 'epoch') bad('schedule', `"${c.schedule}" is not step or epoch`);
  if (!(c.promptDropout >= 0 && c.promptDropout < 1)) bad('prompt-dropout', `${c.promptDropout} must be in [0, 1)`);
  if (!(c.valSplit >= 0 && c.valSplit < 1)) bad('val-split', `${c.valSplit} must be in [0, 1)`);
  if (!Number.isSafeInteger(c.seed)) bad('seed', `${c.seed} is not an integer`);
  if (!Number.isSafeInteger(c.microBatch) || c.microBatch < 0) bad('micro-batch', `${c.microBatch} is not a non-negative integer`);
}
