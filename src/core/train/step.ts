/**
 * One optimiser step, for any protocol, with exact gradient accumulation:
 * every micro-batch's loss is divided by the whole batch's example count,
 * so the summed gradients equal those of the whole batch at once.
 */
import * as tf from '@tensorflow/tfjs';
import { vptDeep, vptShallow } from '../tuning/prompt';
import type { ForwardOptions, Protocol, Vars } from '../tuning/types';
import { PromptDropout, type VptVars } from '../tuning/vpt';
import type { FrozenViT } from '../vit/model';
import { weightedCrossEntropy } from './loss';
import type { Optimizer, ParamGroup } from './optimizer';
import type { Rng } from './rng';

/** A batch on the host: rows of inputs (normalised NHWC images, cached patch embeddings or cached features). */
export interface HostBatch {
  inputs: Float32Array; /** [B, ...rowShape] */
  /** One row's shape: [S, S, 3] for images, [T, d] for patch embeddings, [d] for cached features. */
  rowShape: number[];
  labels: Int32Array; /** [B] */
  /** [B]: 1 for real rows, 0 for padding (keeps one batch shape). */
  weights: Float32Array;
  size: number; /** B */
}

/** Logits for a micro-batch of inputs. Runs inside the gradient function. */
export type Forward = (inputs: tf.Tensor) => tf.Tensor2D;

/**
 * The forward pass of a protocol: from images through the (tuned) backbone,
 * or, with `cached`, from precomputed features straight into the head
 * (head-only protocols, whose features never change).
 */
export function forwardOf(model: FrozenViT, proto: Protocol, vars: Vars, opts: ForwardOptions & { cached?: boolean; embedded?: boolean; recompute?: boolean } = {}): Forward {
  if (opts.cached) return (x) => proto.logits(x as tf.Tensor2D, vars);
  // Head-only protocols never need the backbone's activations for backward: recomputing (never run) keeps none.
  const recompute = opts.recompute || proto.headOnly;
  const tuning = () => ({ ...proto.tuning?.(vars, model.config, opts), recompute });
  // `embedded`: the inputs are patch embeddings [B, T, d] (model.embed, computed once), for protocols without an embed hook.
  if (opts.embedded) return (x) => proto.logits(model.encode(x as tf.Tensor3D, tuning()), vars);
  return (x) => proto.logits(model.tunedFeatures(x as tf.Tensor4D, tuning()), vars);
}

export interface StepResult {
  loss: tf.Scalar;
  /** Weighted count of correct predictions in the batch (for training accuracy). */
  correct: tf.Scalar;
}

/** One pass's tensors: rows [from, from + n) of the batch. */
export type Rows = (b: HostBatch, from: number, n: number) => { inputs: tf.Tensor; labels: tf.Tensor1D; weights: tf.Tensor1D };

/**
 * The step's host data as tensors the caller made (train/replay.ts, in buffers of its own): each
 * pass's rows, the loss's denominator and the optimiser's numbers (the learning rate, AdamW's bias
 * corrections). Without it, each is a new tensor.
 */
export interface StepTensors { rows: Rows; denom: tf.Scalar; /** Optimizer.hostScalars of the step's rate. */ scalars: tf.Scalar[] }

/** The loss's denominator: the batch's weight, at least 1 (micro-batches share it). */
export function lossDenominator(batch: HostBatch): number {
  let denom = 0;
  for (let i = 0; i < batch.size; i++) denom += batch.weights[i];
  return Math.max(denom, 1);
}

const rows: Rows = (b, from, n) => {
  const px = b.rowShape.reduce((a, c) => a * c, 1);
  return {
    inputs: tf.tensor(b.inputs.subarray(from * px, (from + n) * px), [n, ...b.rowShape]),
    labels: tf.tensor1d(b.labels.subarray(from, from + n), 'int32'),
    weights: tf.tensor1d(b.weights.subarray(from, from + n)),
  };
};

/** Gradients of the batch loss for `vars`, summed over micro-batches, by parameter name. Caller disposes. */
export function batchGradients(forward: Forward, vars: Vars, batch: HostBatch, microBatch: number, given?: StepTensors): StepResult & { grads: Map<string, tf.Tensor> } {
  const denom = given?.denom ?? lossDenominator(batch), rowsOf = given?.rows ?? rows;
  const names = [...vars.keys()];
  const list = names.map((n) => vars.get(n)!);
  // Sums over the passes, started from the first pass's values rather than from zeros (each zero
  // would be an upload, on webgpu through a fresh buffer that also ends the compute pass).
  let total: tf.Scalar | null = null;
  let correct: tf.Scalar | null = null;
  const acc = new Map<string, tf.Tensor>();
  for (let from = 0; from < batch.size; from += microBatch) {
    const n = Math.min(microBatch, batch.size - from);
    const mb = rowsOf(batch, from, n);
    let hits: tf.Scalar | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const logits = forward(mb.inputs);
      hits = tf.keep(tf.sum<tf.Tensor>(tf.mul(tf.cast(tf.equal(tf.argMax(logits, 1), mb.labels), 'float32'), mb.weights))) as tf.Scalar;
      return weightedCrossEntropy(logits, mb.labels, mb.weights, denom);
    }, list);
    list.forEach((v, i) => {
      // A variable the loss does not reach has no gradient: skip it (the optimiser leaves it alone).
      const g = grads[v.name];
      if (!g) return;
      const prev = acc.get(names[i]);
      acc.set(names[i], prev ? tf.tidy(() => tf.add(prev, g)) : g);
      if (prev) { prev.dispose(); g.dispose(); }
    });
    if (total && correct) {
      const t = tf.add(total, value) as tf.Scalar;
      const h = tf.add(correct, hits!) as tf.Scalar;
      tf.dispose([total, correct, hits!, value]);
      total = t;
      correct = h;
    } else {
      total = value;
      correct = hits!;
    }
    tf.dispose([mb.inputs, mb.labels, mb.weights]);
  }
  return { loss: total ?? tf.scalar(0), correct: correct ?? tf.scalar(0), grads: acc };
}

/**
 * One optimiser step at learning rate `lr`; returns loss and hits (read them asynchronously, then dispose).
 * `given`: the step's host data as tensors the caller made (StepTensors).
 */
export function optimizerStep(forward: Forward, vars: Vars, opt: Optimizer, batch: HostBatch, lr: number, microBatch: number, given?: StepTensors): StepResult {
  const { loss, correct, grads } = batchGradients(forward, vars, batch, microBatch, given);
  opt.apply(grads, lr, given?.scalars);
  grads.forEach((g) => g.dispose());
  return { loss, correct };
}

/**
 * Weight decay on weights and prompts, none on biases, LayerNorm gains and
 * the embeddings (as the official optimiser leaves the head bias alone).
 */
export function paramGroups(vars: Vars, weightDecay: number): ParamGroup[] {
  return [...vars].map(([name, variable]) => ({
    name, variable,
    weightDecay: variable.rank >= 2 && name !== 'cls_token' && name !== 'pos_embed' ? weightDecay : 0,
  }));
}

// VPT conveniences over the generic step, in the terms of tuning/vpt.ts (parity tests, bench).

export interface StepOptions { microBatch: number; promptDropout: number; rng: Rng }

function vptVarMap(vars: VptVars): Vars {
  return new Map([['prompts', vars.prompts], ['head.weight', vars.headW], ['head.bias', vars.headB]]);
}

function vptForward(model: FrozenViT, vars: VptVars, o: StepOptions): Forward {
  return forwardOf(model, vars.variant === 'deep' ? vptDeep : vptShallow, vptVarMap(vars), { dropout: new PromptDropout(o.rng, o.promptDropout) });
}

export function vptGradients(model: FrozenViT, vars: VptVars, batch: HostBatch, o: StepOptions) {
  return batchGradients(vptForward(model, vars, o), vptVarMap(vars), batch, o.microBatch);
}

export function vptStep(model: FrozenViT, vars: VptVars, opt: Optimizer, batch: HostBatch, lr: number, o: StepOptions): StepResult {
  return optimizerStep(vptForward(model, vars, o), vptVarMap(vars), opt, batch, lr, o.microBatch);
}

export function vptParamGroups(vars: VptVars, weightDecay: number): ParamGroup[] {
  return paramGroups(vptVarMap(vars), weightDecay);
}
