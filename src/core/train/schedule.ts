/**
 * Learning-rate multiplier of the official `WarmupCosineSchedule`
 * (vpt/src/solver/lr_scheduler.py): linear warm-up from 0 over `warmup`
 * steps, then a half cosine from 1 to 0 at `total`. Pure.
 */
export function warmupCosine(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export type ScheduleUnit = 'step' | 'epoch';

/**
 * The multiplier for optimiser step `step` (0-based, global) of a run.
 * `epoch` mode evaluates the schedule once per epoch exactly as the official
 * trainer does (so its first epoch runs at lr 0); `step` mode evaluates it
 * per step over warm-up and total counted in steps.
 */
export function lrMultiplier(unit: ScheduleUnit, step: number, stepsPerEpoch: number, warmupEpochs: number, epochs: number): number {
  if (unit === 'epoch') return warmupCosine(Math.floor(step / stepsPerEpoch), warmupEpochs, epochs);
  return warmupCosine(step, warmupEpochs * stepsPerEpoch, epochs * stepsPerEpoch);
}

/**
 * Learning rates are given per 256 images, as the official tuning scripts'
 * grids are: the applied base rate is lr x batch / 256.
 */
export function appliedLr(lrPer256: number, batch: number): number {
  return (lrPer256 * batch) / 256;
}
