/** Seeded train/validation split, stratified per class. Pure. */
import { Rng } from './rng';

/**
 * The paper's FGVC rule: a random `fraction` of the training images (per
 * class, at least one when a class has two or more) becomes validation.
 */
export function splitTrainVal(labels: ArrayLike<number>, fraction: number, seed: number): { train: number[]; val: number[] } {
  if (fraction <= 0) return { train: Array.from({ length: labels.length }, (_, i) => i), val: [] };
  const rng = new Rng(seed ^ 0x5eed);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!byClass.has(l)) byClass.set(l, []);
    byClass.get(l)!.push(i);
  }
  const train: number[] = [], val: number[] = [];
  for (const l of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = rng.shuffle(byClass.get(l)!.slice());
    let nv = Math.round(idx.length * fraction);
    if (idx.length >= 2) nv = Math.min(Math.max(nv, 1), idx.length - 1);
    else nv = 0;
    val.push(...idx.slice(0, nv));
    train.push(...idx.slice(nv));
  }
  return { train: train.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}
