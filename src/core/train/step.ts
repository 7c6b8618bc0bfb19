/**
 * One optimiser step of prompt tuning, with exact gradient accumulation:
 * every micro-batch's loss is divided by the whole batch's example count,
 * so the summed gradients equal those of the whole batch at once.
 */
import * as tf from '@tensorflow/tfjs';
import { dropoutMasks, head, vptFeatures, type VptVars } from '../tuning/vpt';
import type { FrozenViT } from '../vit/model';
import { weightedCrossEntropy } from './loss';
import type { Optimizer } from './optimizer';
import type { Rng } from './rng';

/** A batch on the host: NHWC float32 images, already normalised. */
export interface HostBatch {
  images: Float32Array; /** [B, S, S, 3] */
  labels: Int32Array; /** [B] */
  /** [B]: 1 for real rows, 0 for padding (keeps one batch shape). */
  weights: Float32Array;
  size: number; /** B */
}

export interface StepOptions {
  microBatch: number;
  promptDropout: number;
  rng: Rng;
}

function slice(b: HostBatch, from: number, n: number, S: number) {
  const px = S * S * 3;
  return {
    images: tf.tensor4d(b.images.subarray(from * px, (from + n) * px), [n, S, S, 3]),
    labels: tf.tensor1d(b.labels.subarray(from, from + n), 'int32'),
    weights: tf.tensor1d(b.weights.subarray(from, from + n)),
  };
}

/** Gradients of the batch loss for the VPT variables, summed over micro-batches. Caller disposes. */
export interface StepResult {
  loss: tf.Scalar;
  /** Weighted count of correct predictions in the batch (for training accuracy). */
  correct: tf.Scalar;
}

export function vptGradients(model: FrozenViT, vars: VptVars, batch: HostBatch, opts: StepOptions): StepResult & { grads: Map<string, tf.Tensor> } {
  const S = model.config.imageSize;
  let denom = 0;
  for (let i = 0; i < batch.size; i++) denom += batch.weights[i];
  denom = Math.max(denom, 1);
  const [Lp, p, d] = vars.prompts.shape as [number, number, number];
  const list = [vars.prompts, vars.headW, vars.headB];
  const names = ['prompts', 'head.weight', 'head.bias'];
  let total: tf.Scalar = tf.scalar(0);
  let correct: tf.Scalar = tf.scalar(0);
  const acc = new Map<string, tf.Tensor>();
  for (let from = 0; from < batch.size; from += opts.microBatch) {
    const n = Math.min(opts.microBatch, batch.size - from);
    const mb = slice(batch, from, n, S);
    const masks = opts.promptDropout > 0 ? dropoutMasks(opts.rng, Lp, n, p, d, opts.promptDropout) : undefined;
    let hits: tf.Scalar | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const logits = head(vptFeatures(model, vars, mb.images, masks), vars.headW, vars.headB);
      hits = tf.keep(tf.sum<tf.Tensor>(tf.mul(tf.cast(tf.equal(tf.argMax(logits, 1), mb.labels), 'float32'), mb.weights))) as tf.Scalar;
      return weightedCrossEntropy(logits, mb.labels, mb.weights, denom);
    }, list);
    list.forEach((v, i) => {
      const g = grads[v.name];
      const prev = acc.get(names[i]);
      acc.set(names[i], prev ? tf.tidy(() => tf.add(prev, g)) : g);
      if (prev) { prev.dispose(); g.dispose(); }
    });
    const t = tf.add(total, value) as tf.Scalar;
    const h = tf.add(correct, hits!) as tf.Scalar;
    tf.dispose([total, correct, hits!, value, mb.images, mb.labels, mb.weights, ...(masks ?? [])]);
    total = t;
    correct = h;
  }
  return { loss: total, correct, grads: acc };
}

/** One optimiser step at learning rate `lr`; returns loss and hits (read them asynchronously, then dispose). */
export function vptStep(model: FrozenViT, vars: VptVars, opt: Optimizer, batch: HostBatch, lr: number, opts: StepOptions): StepResult {
  const { loss, correct, grads } = vptGradients(model, vars, batch, opts);
  opt.apply(grads, lr);
  grads.forEach((g) => g.dispose());
  return { loss, correct };
}

/** The official optimiser's groups: weight decay everywhere except the head bias. */
export function vptParamGroups(vars: VptVars, weightDecay: number) {
  return [
    { name: 'prompts', variable: vars.prompts, weightDecay },
    { name: 'head.weight', variable: vars.headW, weightDecay },
    { name: 'head.bias', variable: vars.headB, weightDecay: 0 },
  ];
}
