/**
 * The frozen ViT forward pass, split into named stages as timm does:
 * embed (patches, [CLS], position embeddings), blocks, final norm. Prompt
 * tuning hooks in between embed and blocks (tuning/vpt.ts). Weights live in
 * tfjs tensors that no optimiser ever sees: they are never variables.
 */
import * as tf from '@tensorflow/tfjs';
import { attention } from './attention';
import type { ViTConfig } from './config';
import { blockParts, fusedBlock } from './fused-block';
import { FrozenLinear, frozenLayerNorm, gelu, GELU_CONSTANTS, holdScalars, layerNorm } from './ops';
import type { ViTWeights } from './weights';

interface Block {
  ln1g: tf.Tensor1D; ln1b: tf.Tensor1D; qkv: FrozenLinear; out: FrozenLinear;
  ln2g: tf.Tensor1D; ln2b: tf.Tensor1D; fc1: FrozenLinear; fc2: FrozenLinear;
}

/** Hook called before block i (0-based) to rewrite the token sequence. */
export type TokenHook = (x: tf.Tensor3D, layer: number) => tf.Tensor3D;

/** A linear map on rows, [n, in] -> [n, out]. */
export type LinearFn = (x: tf.Tensor2D) => tf.Tensor2D;

/** One block's parts as the forward pass uses them; tuning protocols swap some. */
export interface BlockParts {
  ln1g: tf.Tensor1D; ln1b: tf.Tensor1D; qkv: LinearFn; out: LinearFn;
  ln2g: tf.Tensor1D; ln2b: tf.Tensor1D; fc1: LinearFn; fc2: LinearFn;
  /** Applied to the MLP sub-layer's output before its residual add (Adapter). */
  mlpOut?: (m: tf.Tensor2D) => tf.Tensor2D;
}

/** Embedding parts: patch projection, [CLS] [1, 1, d] and position embeddings [1, T, d]. */
export interface EmbedParts { patch: LinearFn; cls: tf.Tensor; pos: tf.Tensor }

/**
 * How a tuning protocol changes the frozen forward pass. Each hook gets the
 * frozen parts and returns what to use instead; absent hooks change nothing.
 */
export interface Tuning {
  embed?: (frozen: EmbedParts) => EmbedParts;
  tokens?: TokenHook;
  block?: (i: number, frozen: BlockParts) => BlockParts;
  norm?: (g: tf.Tensor1D, b: tf.Tensor1D) => { g: tf.Tensor; b: tf.Tensor };
  /** Recompute frozen blocks in the backward pass instead of keeping their activations (blocks without a `block` hook only). */
  recompute?: boolean;
}

/**
 * Run `f` (which computes gradients of its own) from inside a gradient
 * function. tfjs keeps one active tape per engine: a nested `tf.grad` at
 * depth 0 replaces it and leaves it null, and the outer backward pass then
 * fails to release its saved tensors. Restore the outer tape afterwards.
 */
function withOwnTape<T>(f: () => T): T {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
  const outer = state.activeTape;
  try { return f(); } finally { state.activeTape = outer; }
}

export class FrozenViT {
  readonly config: ViTConfig;
  private readonly patch: FrozenLinear;
  private readonly cls: tf.Tensor3D;
  private readonly pos: tf.Tensor3D;
  private readonly blocks: Block[];
  private readonly normG: tf.Tensor1D;
  private readonly normB: tf.Tensor1D;
  private readonly owned: tf.Tensor[] = [];
  private readonly recomputing = new Map<number, (x: tf.Tensor3D) => tf.Tensor3D>();
  private readonly fusedBlocks = new Map<string, (x: tf.Tensor3D) => tf.Tensor3D>();

  /** Host weights kept for protocols that start from them (Partial, Full) and for rebuilds. */
  readonly weights: ViTWeights;

  constructor(w: ViTWeights) {
    this.weights = w;
    const c = (this.config = w.config);
    const d = c.hiddenSize;
    const P = c.patchSize;
    const T = (c.imageSize / P) ** 2 + 1;
    const keep = <X extends tf.Tensor>(t: X): X => { this.owned.push(t); return t; };
    const v = (a: Float32Array) => keep(tf.tensor1d(a));
    const lin = (W: Float32Array, b: Float32Array, inn: number, out: number) =>
      new FrozenLinear(tf.tensor2d(W, [inn, out]), tf.tensor1d(b));
    this.patch = lin(w.patchW, w.patchB, P * P * 3, d);
    this.cls = keep(tf.tensor3d(w.cls, [1, 1, d]));
    this.pos = keep(tf.tensor3d(w.pos, [1, T, d]));
    this.blocks = w.blocks.map((b) => ({
      ln1g: v(b.ln1g), ln1b: v(b.ln1b), qkv: lin(b.qkvW, b.qkvB, d, 3 * d), out: lin(b.outW, b.outB, d, d),
      ln2g: v(b.ln2g), ln2b: v(b.ln2b), fc1: lin(b.fc1W, b.fc1B, d, c.mlpDim), fc2: lin(b.fc2W, b.fc2B, c.mlpDim, d),
    }));
    this.normG = v(w.normG);
    this.normB = v(w.normB);
    this.releaseScalars = holdScalars([...GELU_CONSTANTS, c.layerNormEps, 1 / Math.sqrt(d / c.numHeads)]);
  }

  private readonly releaseScalars: () => void;

  /** The frozen parts of block i, for protocols that replace some of them. */
  frozenBlock(i: number): BlockParts {
    const b = this.blocks[i];
    return { ln1g: b.ln1g, ln1b: b.ln1b, qkv: b.qkv.apply, out: b.out.apply, ln2g: b.ln2g, ln2b: b.ln2b, fc1: b.fc1.apply, fc2: b.fc2.apply };
  }

  /** Patch embedding as reshape + matmul, then [CLS] and position embeddings. */
  embed(images: tf.Tensor4D, t?: Tuning): tf.Tensor3D {
    const { patchSize: P, imageSize: S, hiddenSize: d } = this.config;
    const B = images.shape[0];
    const g = S / P;
    const patches = tf.reshape(
      tf.transpose(tf.reshape(images, [B, g, P, g, P, 3]), [0, 1, 3, 2, 4, 5]), // [B, gy, gx, P, P, 3]
      [B * g * g, P * P * 3]);
    const frozen: EmbedParts = { patch: this.patch.apply, cls: this.cls, pos: this.pos };
    const e = t?.embed ? t.embed(frozen) : frozen;
    const x = tf.reshape(e.patch(patches as tf.Tensor2D), [B, g * g, d]); // [B, N, d]
    const cls = tf.tile(e.cls, [B, 1, 1]); // [B, 1, d]
    return tf.add(tf.concat([cls, x], 1), e.pos) as tf.Tensor3D; // [B, T, d]
  }

  /** One pre-norm encoder block: x + MSA(LN(x)), then x + MLP(LN(x)). */
  block(x: tf.Tensor3D, i: number, t?: Tuning): tf.Tensor3D {
    const { hiddenSize: d, numHeads: H, layerNormEps: eps } = this.config;
    const [B, T] = x.shape;
    // A frozen block written out as one gradient node where its parts allow (fused-block.ts).
    const parts = t?.block ? null : blockParts(B, T, H, d / H);
    if (parts) {
      const key = `${parts.name} ${i}`;
      let f = this.fusedBlocks.get(key);
      if (!f) this.fusedBlocks.set(key, (f = fusedBlock(this.blocks[i], H, eps, parts)));
      return f(x);
    }
    const blk = t?.block ? t.block(i, this.frozenBlock(i)) : this.frozenBlock(i);
    const frozen = this.blocks[i];
    // The written-out gradient where g and b are the backbone's own (constants); the tape's where a protocol tunes them.
    const norm = (z: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D) =>
      (g === frozen.ln1g && b === frozen.ln1b) || (g === frozen.ln2g && b === frozen.ln2b) ? frozenLayerNorm(z, g, b, eps) : layerNorm(z, g, b, eps);
    const y = tf.reshape(norm(x, blk.ln1g, blk.ln1b), [B * T, d]) as tf.Tensor2D;
    const o = attention(blk.qkv(y), B, H); // softmax(q k^T / sqrt(hd)) v per head, heads side by side: [B*T, d]
    const x1 = tf.add(x, tf.reshape(blk.out(o), [B, T, d])) as tf.Tensor3D;
    const z = tf.reshape(norm(x1, blk.ln2g, blk.ln2b), [B * T, d]) as tf.Tensor2D;
    let m = blk.fc2(gelu(blk.fc1(z)) as tf.Tensor2D); // [B*T, d]
    if (blk.mlpOut) m = blk.mlpOut(m);
    return tf.add(x1, tf.reshape(m, [B, T, d])) as tf.Tensor3D;
  }

  /**
   * Block i with activation recomputation: the tape keeps only the block's
   * input; the backward pass runs the block again and differentiates that.
   * Memory per block falls from every intermediate (attention scores, MLP
   * hidden, norms) to one [B, T, d] tensor, for one more forward pass. Only
   * for frozen blocks: the gradient flows to the input alone.
   */
  private recomputed(i: number): (x: tf.Tensor3D) => tf.Tensor3D {
    let f = this.recomputing.get(i);
    if (!f) {
      f = tf.customGrad(((x: tf.Tensor3D, save: tf.GradSaveFunc) => {
        save([x]);
        return {
          value: tf.tidy(() => this.block(x, i)),
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
            withOwnTape(() => tf.grad((xx: tf.Tensor) => this.block(xx as tf.Tensor3D, i))(saved[0], dy)),
        };
      }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor3D) => tf.Tensor3D;
      this.recomputing.set(i, f);
    }
    return f;
  }

  /** Blocks then final LayerNorm; returns the normalised [CLS] token [B, d]. */
  encode(tokens: tf.Tensor3D, t?: Tuning): tf.Tensor2D {
    let x = tokens;
    for (let i = 0; i < this.blocks.length; i++) {
      if (t?.tokens) x = t.tokens(x, i);
      x = t?.recompute && !t.block ? this.recomputed(i)(x) : this.block(x, i, t);
    }
    const [B, , d] = x.shape;
    const cls = tf.reshape(tf.slice(x, [0, 0, 0], [B, 1, d]), [B, d]);
    // The head reads the final-LayerNorm [CLS]; LayerNorm is per token, so normalise [CLS] alone.
    const n = t?.norm ? t.norm(this.normG, this.normB) : { g: this.normG, b: this.normB };
    const ln = n.g === this.normG && n.b === this.normB ? frozenLayerNorm : layerNorm;
    return ln(cls, n.g as tf.Tensor1D, n.b as tf.Tensor1D, this.config.layerNormEps) as tf.Tensor2D;
  }

  /**
   * Make the pre-transposed weight copies that backward passes use. Training
   * calls this once up front, so memory is allocated before the first step.
   */
  prepareBackward(): void {
    this.patch.prepareBackward();
    for (const b of this.blocks) [b.qkv, b.out, b.fc1, b.fc2].forEach((l) => l.prepareBackward());
  }

  /** Plain or tuned features: final-LayerNorm [CLS], [B, d]. Call inside tidy or a gradient function. */
  tunedFeatures(images: tf.Tensor4D, t?: Tuning): tf.Tensor2D {
    return this.encode(this.embed(images, t), t);
  }

  /** Plain backbone features (no prompts): final-LayerNorm [CLS], [B, d]. */
  features(images: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.encode(this.embed(images)));
  }

  dispose(): void {
    this.patch.dispose();
    for (const b of this.blocks) { b.qkv.dispose(); b.out.dispose(); b.fc1.dispose(); b.fc2.dispose(); }
    for (const t of this.owned) t.dispose();
    this.releaseScalars();
  }
}
