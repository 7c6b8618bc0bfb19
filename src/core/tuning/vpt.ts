/**
 * Visual Prompt Tuning (Jia et al., ECCV 2022), as the official code
 * (github.com/KMnP/vpt, src/models/vit_prompt/vit.py) does it:
 * - shallow: p prompts inserted after [CLS], after position embeddings, before layer 1;
 * - deep: the same at layer 1, and before every later layer i the p prompt
 *   slots (tokens 1..p) are overwritten by that layer's own prompts.
 * The head is a linear layer on the final-LayerNorm [CLS].
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../train/rng';
import type { ViTConfig } from '../vit/config';
import type { FrozenViT, TokenHook } from '../vit/model';
import { fusedKernels, PROMPT_SET, PROMPT_SET_GRAD_P, PROMPT_SET_GRAD_X, runFused } from '../vit/webgpu-kernels';
import { headParams } from './head';
import { uniform } from './params';
import type { DropoutSource } from './types';

export type Variant = 'deep' | 'shallow';

/** Host-side trainable state: what a task file and a checkpoint store. */
export interface VptState {
  variant: Variant;
  /** [Lp, p, d] with Lp = 1 (shallow) or L (deep). */
  prompts: Float32Array;
  numPrompts: number;
  /** torch layout [C, d]: logits = x W^T + b. */
  headW: Float32Array;
  headB: Float32Array;
  numClasses: number;
  hiddenSize: number;
}

export function promptLayers(variant: Variant, c: ViTConfig): number {
  return variant === 'deep' ? c.numLayers : 1;
}

/** The official xavier-style bound of the prompts' uniform initialisation, over the patch fan-in: sqrt(6 / (3 P^2 + d)). */
export function promptBound(c: ViTConfig): number {
  return Math.sqrt(6 / (3 * c.patchSize * c.patchSize + c.hiddenSize));
}

/**
 * Initial state: prompts uniform(-v, v) with v = promptBound, then the head
 * (head.ts: kaiming normal fan_out, bias -ln(99)), from one PRNG in that order
 * (the same draws as the vpt-* protocols' initState).
 */
export function initVpt(c: ViTConfig, variant: Variant, numPrompts: number, numClasses: number, rng: Rng): VptState {
  const d = c.hiddenSize;
  const prompts = uniform(promptLayers(variant, c) * numPrompts * d, promptBound(c))(rng);
  const [[, w], [, b]] = headParams(d, numClasses);
  return { variant, prompts, numPrompts, headW: w.init(rng), headB: b.init(rng), numClasses, hiddenSize: d };
}

/** The trainable tensors while a run is live. */
export interface VptVars {
  variant: Variant;
  prompts: tf.Variable; /** [Lp, p, d] */
  headW: tf.Variable; /** [C, d] */
  headB: tf.Variable; /** [C] */
}

export function toVars(s: VptState, trainable = true): VptVars {
  const Lp = s.prompts.length / (s.numPrompts * s.hiddenSize);
  // tf.variable shares the initial tensor's data but not its handle: build inside tidy so the handles go.
  return tf.tidy(() => ({
    variant: s.variant,
    prompts: tf.variable(tf.tensor3d(s.prompts, [Lp, s.numPrompts, s.hiddenSize]), trainable),
    headW: tf.variable(tf.tensor2d(s.headW, [s.numClasses, s.hiddenSize]), trainable),
    headB: tf.variable(tf.tensor1d(s.headB), trainable),
  }));
}

export async function fromVars(v: VptVars, s: Pick<VptState, 'numPrompts' | 'numClasses' | 'hiddenSize'>): Promise<VptState> {
  return {
    variant: v.variant, numPrompts: s.numPrompts, numClasses: s.numClasses, hiddenSize: s.hiddenSize,
    prompts: (await v.prompts.data()) as Float32Array,
    headW: (await v.headW.data()) as Float32Array,
    headB: (await v.headB.data()) as Float32Array,
  };
}

export function disposeVars(v: VptVars): void {
  v.prompts.dispose(); v.headW.dispose(); v.headB.dispose();
}

/** n values of a prompt-dropout mask, each 1 / (1 - rate) or 0 like torch.nn.Dropout's; drawn from our PRNG for determinism. */
function maskValues(rng: Rng, n: number, rate: number): Float32Array {
  const keep = 1 - rate;
  const m = new Float32Array(n);
  for (let i = 0; i < m.length; i++) m[i] = rng.next() < keep ? 1 / keep : 0;
  return m;
}

/** One prompt-dropout mask [B, p, d]. */
export function dropoutMask(rng: Rng, B: number, p: number, d: number, rate: number): tf.Tensor3D {
  return tf.tensor3d(maskValues(rng, B * p * d, rate), [B, p, d]);
}

/**
 * Prompt dropout for a training forward: each mask drawn from the run's PRNG
 * as the layers ask for it, or, where the caller drew the step's masks before
 * the step (`drawAhead`) and handed tensors of them to `beginStep`, taken from
 * those. The webgpu stepper does that (train/replay.ts): a captured step must
 * read its host data from buffers written before it, never upload its own.
 * The PRNG is drawn in the same order either way, so the masks are the same.
 */
export class PromptDropout implements DropoutSource {
  /** This step's masks drawn ahead, taken in order by `mask`. */
  private ahead: tf.Tensor3D[] = [];
  /** The shapes `mask` was asked for this step, in order. */
  private asked: [number, number, number][] = [];

  constructor(private readonly rng: Rng, readonly rate: number) {}

  /** The values of masks of these shapes, in order, as `mask` would draw them. */
  drawAhead(shapes: [number, number, number][]): Float32Array[] {
    return shapes.map(([B, p, d]) => maskValues(this.rng, B * p * d, this.rate));
  }

  /** Start a step whose masks, drawn ahead, are `ahead` (the caller keeps and disposes them). */
  beginStep(ahead: tf.Tensor3D[]): void {
    this.ahead = [...ahead];
    this.asked = [];
  }

  /** End the step: the shapes of the masks it asked for, to draw the next step's ahead. */
  endStep(): [number, number, number][] {
    this.ahead = [];
    return this.asked;
  }

  mask(B: number, p: number, d: number): tf.Tensor3D {
    this.asked.push([B, p, d]);
    const m = this.ahead.shift();
    if (!m) return dropoutMask(this.rng, B, p, d, this.rate);
    // Drawn ahead for the shapes the same step asked for last time: another shape would mean other values.
    if (m.shape.join() !== [B, p, d].join()) throw new Error(`prompt dropout: a mask drawn ahead is [${m.shape.join(', ')}], the step asks for [${B}, ${p}, ${d}]`);
    return m;
  }
}

/** One mask per prompt layer. */
export function dropoutMasks(rng: Rng, layers: number, B: number, p: number, d: number, rate: number): tf.Tensor3D[] {
  return Array.from({ length: layers }, () => dropoutMask(rng, B, p, d, rate));
}

/**
 * The token hook that inserts (layer 0) or overwrites (later layers) the
 * prompt slots. With `mask`, each layer's prompts are multiplied by that
 * layer's dropout mask [B, p, d]; masks are drawn as the layers run.
 */
export function promptHook(prompts: tf.Tensor, mask?: (layer: number, B: number) => tf.Tensor3D): TokenHook {
  const [Lp, p, d] = prompts.shape as [number, number, number];
  return (x, layer) => {
    if (layer >= Lp) return x;
    if (!mask && fusedKernels()) return fusedPromptSet(x, prompts, layer);
    const [B, T] = x.shape;
    const pi = tf.slice(prompts, [layer, 0, 0], [1, p, d]) as tf.Tensor3D; // [1, p, d]
    // Broadcast by adding zeros rather than tf.tile: tfjs's Tile gradient is a loop of B slices
    // and B adds per layer (1536 kernel calls per ViT-Ti step at batch 64, most of its time on a
    // GPU), Add's is one sum over the batch.
    const pr = mask ? tf.mul(pi, mask(layer, B)) : tf.add(pi, tf.zeros([B, p, d])); // [B, p, d]
    const cls = tf.slice(x, [0, 0, 0], [B, 1, d]); // [B, 1, d]
    // Layer 0 inserts; later layers overwrite tokens 1..p (official `forward_deep_prompt`).
    const rest = layer === 0 ? tf.slice(x, [0, 1, 0], [B, T - 1, d]) : tf.slice(x, [0, 1 + p, 0], [B, T - 1 - p, d]);
    return tf.concat([cls, pr, rest], 1) as tf.Tensor3D; // [B, 1 + p + N, d]
  };
}

/** promptHook's insert or overwrite as one WGSL kernel, and its two gradients as one each (webgpu-kernels.ts). */
function fusedPromptSet(x: tf.Tensor3D, prompts: tf.Tensor, layer: number): tf.Tensor3D {
  const [L, p] = prompts.shape;
  const attrs = { layer, insert: layer === 0 ? 1 : 0, L, p, tIn: x.shape[1] };
  const f = tf.customGrad(((xx: tf.Tensor, pp: tf.Tensor) => ({
    value: runFused(PROMPT_SET, { xIn: xx, pIn: pp }, attrs),
    gradFunc: (dy: tf.Tensor) => [runFused(PROMPT_SET_GRAD_X, { dyIn: dy }, attrs), runFused(PROMPT_SET_GRAD_P, { dyIn: dy }, attrs)],
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, prompts) as tf.Tensor3D;
}

/** Final-LayerNorm [CLS] features with prompts, [B, d]. Call inside tidy or a gradient function. */
export function vptFeatures(model: FrozenViT, vars: Pick<VptVars, 'variant' | 'prompts'>, images: tf.Tensor4D, masks?: tf.Tensor3D[]): tf.Tensor2D {
  return model.tunedFeatures(images, { tokens: promptHook(vars.prompts, masks ? (layer) => masks[layer] : undefined) });
}

export { head } from './head';
