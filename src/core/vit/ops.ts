/** The ViT's building blocks as tfjs ops, smallest first (read bottom-up). */
import * as tf from '@tensorflow/tfjs';
import { fusedKernels, GELU, GELU_GRAD, LAYER_NORM, LAYER_NORM_GRAD, runFused, SCALED_SOFTMAX, SCALED_SOFTMAX_GRAD } from './webgpu-kernels';
import { MATMUL, matmulTiling } from './webgpu-matmul';
import { SIMD_LINEAR, SIMD_PACK, wasmSimdKernels } from './wasm-simd';

/** Whether GELU and the frozen norms run as the two-kernel pairs below: webgpu's WGSL, or wasm's SIMD (wasm-simd.ts). */
const fusedPairs = (): boolean => fusedKernels() || wasmSimdKernels();

/** What the engine runs now, as the memory planner's PassOptions name it (core/train/memory.ts). */
export const engineKernels = (): { backend: string; fused: boolean; simd: boolean } =>
  ({ backend: tf.getBackend(), fused: fusedKernels(), simd: wasmSimdKernels() });

/**
 * Scalar constants held as tensors while a model lives. A plain number in a
 * tfjs op becomes a new scalar tensor on every call, and on webgpu each one is
 * uploaded through a freshly created buffer: about 110 per training step, a
 * sixth of a small step's host time on a real GPU. Reference-counted per value,
 * so several models share them and the last to go disposes them.
 */
interface Held { t: tf.Scalar; refs: number; engine: object }
const held = new Map<number, Held>();
// An engine reset (the studio's rebuild after a lost GPU device) drops every tensor without
// disposing it: an entry made before it is dead, and is replaced, never reused.
const engineState = () => (tf.engine() as unknown as { state: object }).state;
const alive = (e: Held) => e.engine === engineState() && !e.t.isDisposed;

/** Keeps scalars for `values` until the returned function is called (once). */
export function holdScalars(values: number[]): () => void {
  const mine: [number, Held][] = [];
  for (const v of new Set(values)) {
    let e = held.get(v);
    if (!e || !alive(e)) held.set(v, (e = { t: tf.keep(tf.scalar(v)), refs: 0, engine: engineState() }));
    e.refs++;
    mine.push([v, e]);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const [v, e] of mine) {
      if (--e.refs > 0) continue;
      if (alive(e)) e.t.dispose();
      if (held.get(v) === e) held.delete(v);
    }
  };
}

/** The held scalar for `v`, else `v` itself (tfjs makes a temporary one). */
export function constant(v: number): tf.Scalar | number {
  const e = held.get(v);
  return e && alive(e) ? e.t : v;
}

/** GELU's constants, for holdScalars. */
export const GELU_CONSTANTS = [Math.SQRT1_2, 0.5, -0.5, 1, 1 / Math.sqrt(2 * Math.PI)];

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm (differentiable in x, g and b). */
export function layerNorm(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, constant(eps)))), g), b);
}

/**
 * LayerNorm with constant g and b (the frozen backbone's): the same values as
 * layerNorm, with the input gradient written out,
 * dx = r (dy g - mean(dy g) - x^ mean(dy g x^)), x^ = (x - mean) r.
 * The tape's version takes about 20 kernels per norm, and on wasm every
 * Multiply gradient also copies its other operand (a same-type Cast);
 * this takes 8, and computes no unused dg, db. On webgpu it is two fused
 * kernels (webgpu-kernels.ts), on wasm two SIMD ones (wasm-simd.ts).
 */
export function frozenLayerNorm(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor {
  return fusedPairs() ? fusedFrozenLayerNorm(x, g, b, eps) : plainFrozenLayerNorm(x, g, b, eps);
}

/**
 * A one-input op as two fused WGSL kernels (webgpu-kernels.ts): `forward`, and
 * `backward` from dy and the op's saved input or output (whichever the kernel
 * recomputes the rest from).
 */
function fusedPair(x: tf.Tensor, forward: (x: tf.Tensor) => tf.Tensor, backward: (saved: tf.Tensor, dy: tf.Tensor) => tf.Tensor, keep: 'input' | 'output'): tf.Tensor {
  const f = tf.customGrad(((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    const y = forward(xx);
    save([keep === 'input' ? xx : y]);
    return { value: y, gradFunc: (dy: tf.Tensor, [s]: tf.Tensor[]) => backward(s, dy) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as tf.Tensor;
}

/** frozenLayerNorm fused; the backward kernel recomputes the row statistics from x. */
const fusedFrozenLayerNorm = (x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number) => fusedPair(x,
  (xx) => runFused(LAYER_NORM, { xIn: xx, gamma: g, beta: b }, { eps }),
  (sx, dy) => runFused(LAYER_NORM_GRAD, { xIn: sx, gamma: g, dyIn: dy }, { eps }), 'input');

/**
 * frozenLayerNorm in tfjs ops, forward: y, and the normalised x^ and 1/std r
 * its gradient needs. plainFrozenLayerNorm and written-out blocks
 * (fused-block.ts) call it.
 */
export function plainLayerNormForward(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): { y: tf.Tensor; xh: tf.Tensor; r: tf.Tensor } {
  const xc = tf.sub(x, tf.mean(x, -1, true));
  const r = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), constant(eps)));
  const xh = tf.mul(xc, r);
  return { y: tf.add(tf.mul(xh, g), b), xh, r };
}

/** Its input gradient, in a tidy (as GELU's below): the temporaries go when the gradient is made. */
export const plainLayerNormBackward = (g: tf.Tensor1D, xh: tf.Tensor, r: tf.Tensor, dy: tf.Tensor): tf.Tensor => tf.tidy(() => {
  const gx = tf.mul(dy, g);
  return tf.mul(tf.sub(tf.sub(gx, tf.mean(gx, -1, true)), tf.mul(xh, tf.mean(tf.mul(gx, xh), -1, true))), r);
});

/** frozenLayerNorm in tfjs ops: every backend but webgpu, and the reference the fused kernels are tested against. */
export function plainFrozenLayerNorm(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor {
  const f = tf.customGrad(((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    const { y, xh, r } = plainLayerNormForward(xx, g, b, eps);
    save([xh, r]);
    return { value: y, gradFunc: (dy: tf.Tensor, [sxh, sr]: tf.Tensor[]) => plainLayerNormBackward(g, sxh, sr, dy) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as tf.Tensor;
}

/** Exact GELU's forward in tfjs ops: x Phi(x), and Phi(x) for the gradient. */
export function plainGeluForward(x: tf.Tensor): { y: tf.Tensor; cdf: tf.Tensor } {
  const cdf = tf.add(tf.mul(tf.erf(tf.mul(x, constant(Math.SQRT1_2))), constant(0.5)), constant(0.5)); // Phi(x)
  return { y: tf.mul(x, cdf), cdf };
}

/**
 * Its gradient, dy (Phi(x) + x phi(x)), in a tidy: the engine calls a custom gradient outside its
 * per-node tidy, so its temporaries (six [B*T, mlp] tensors here) would otherwise live until the
 * whole backward pass ends.
 */
export const plainGeluBackward = (x: tf.Tensor, cdf: tf.Tensor, dy: tf.Tensor): tf.Tensor => tf.tidy(() => {
  const a = tf.mul(tf.square(x), constant(-0.5));
  // sqrt(2 pi) phi(x) = exp(-x^2 / 2). tfjs-wasm's Exp is a scalar loop (20 ms on [1656, 768],
  // 7% of a ViT-Ti step); its Elu is XNNPACK's vectorised, threaded kernel (6 ms), and for
  // a <= 0, exp(a) = elu(a) + 1, within 1e-7 of exp (tests/unit/kernels.test.ts).
  const pdf = tf.getBackend() === 'wasm' ? tf.add(tf.elu(a), constant(1)) : tf.exp(a);
  return tf.mul(dy, tf.add(cdf, tf.mul(tf.mul(x, constant(1 / Math.sqrt(2 * Math.PI))), pdf)));
});

/**
 * Exact (erf) GELU, as the official ViT-pytorch code's `ACT2FN['gelu']`:
 * x Phi(x), with its gradient written out, Phi(x) + x phi(x). The tape's
 * version differentiates erf through five more full-size kernels and copies.
 */
export const plainGelu = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const { y, cdf } = plainGeluForward(x);
  save([x, cdf]);
  return { value: y, gradFunc: (dy: tf.Tensor, [sx, scdf]: tf.Tensor[]) => plainGeluBackward(sx, scdf, dy) };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/** GELU fused; the backward kernel recomputes Phi(x) from x. */
const fusedGelu = (x: tf.Tensor) => fusedPair(x, (xx) => runFused(GELU, { xIn: xx }), (sx, dy) => runFused(GELU_GRAD, { xIn: sx, dyIn: dy }), 'input');

/** Exact GELU: fused kernels on webgpu and wasm with SIMD, plainGelu elsewhere. */
export const gelu = (x: tf.Tensor): tf.Tensor => (fusedPairs() ? fusedGelu(x) : plainGelu(x));

/** softmax(z scale) over the last axis, as attention scores are normalised. */
export function scaledSoftmax(z: tf.Tensor, scale: number): tf.Tensor {
  return fusedKernels() ? fusedScaledSoftmax(z, scale) : tf.softmax(tf.mul(z, constant(scale)));
}

/** The scaled softmax fused; its gradient needs only the probabilities. */
const fusedScaledSoftmax = (z: tf.Tensor, scale: number) => fusedPair(z,
  (zz) => runFused(SCALED_SOFTMAX, { zIn: zz }, { scale }),
  (sp, dp) => runFused(SCALED_SOFTMAX_GRAD, { pIn: sp, dpIn: dp }, { scale }), 'output');

/**
 * x W + b as webgpu's fused-matmul kernel, called on the 2-D operands
 * themselves. tf.fused.matMul reshapes both to 3-D and the product back, and
 * wraps them in a gradient of its own that goes unused here: four engine
 * records besides the kernel's (16 a layer), host time that small GPU steps
 * wait on. webgpu's kernel takes any rank; wasm's is not known to, so it keeps tf.fused.matMul.
 */
function matMulBias2d(x: tf.Tensor, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.engine().runKernel('_FusedMatMul', { a: x, b: w, bias: b } as unknown as tf.NamedTensorMap,
    { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0 } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/**
 * x W (+ b) on webgpu: our tiled kernel (webgpu-matmul.ts) where the shape
 * suits it, else tfjs's. The bias rides in the product's accumulators, one
 * pass instead of two.
 */
function fusedLinear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const tile = matmulTiling(x.shape[0], w.shape[0], w.shape[1]);
  if (tile) return runFused(MATMUL, b ? { a: x, b: w, bias: b } : { a: x, b: w }, { tile }) as tf.Tensor2D;
  return b ? matMulBias2d(x, w, b) : tf.matMul(x as tf.Tensor2D, w);
}

/**
 * A frozen linear layer y = x W + b on 2-D x. W is constant, so the only
 * gradient is dx = dy W^T, computed against a pre-transposed copy: tfjs's
 * fast matmul path (wasm, webgpu) needs an untransposed second operand, and
 * the tape's own MatMul gradient would also compute an unused dW.
 */
export class FrozenLinear {
  private wt: tf.Tensor2D | null = null;
  private plain: tf.Tensor2D | null;
  // W and W^T in wasm-simd.ts's panel layout. Where that kernel runs, W is kept packed only (unpacked
  // if another path asks for it), so the weights cost what they did: once, twice once training.
  private packed: tf.Tensor | null = null;
  private packedT: tf.Tensor | null = null;
  /** [in, out]. */
  readonly shape: [number, number];
  readonly apply: (x: tf.Tensor2D) => tf.Tensor2D;

  /** Takes ownership of w [in, out] and b [out]. */
  constructor(w: tf.Tensor2D, readonly b: tf.Tensor1D) {
    this.shape = [w.shape[0], w.shape[1]];
    if (this.simd(this.shape[1])) {
      this.packed = tf.keep(simdPack(w, false));
      w.dispose();
      this.plain = null;
    } else this.plain = w;
    this.apply = tf.customGrad(((x: tf.Tensor) => ({
      value: this.forward(x),
      gradFunc: (dy: tf.Tensor) => this.backward(dy),
    })) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor2D) => tf.Tensor2D;
  }

  /** W [in, out] (from the packed copy, the first time a path other than wasm's SIMD one asks). */
  get w(): tf.Tensor2D {
    return (this.plain ??= tf.keep(tf.tidy(() => unpackPanels(this.packed!, this.shape))));
  }

  /** x W + b with no gradient of its own (`apply` has one; fused-block.ts differentiates whole blocks). */
  forward(x: tf.Tensor): tf.Tensor2D {
    if (fusedKernels()) return fusedLinear(x, this.w, this.b);
    if (this.simd(this.shape[1])) return simdLinear(x, (this.packed ??= tf.keep(simdPack(this.w, false))), this.shape[1], this.b);
    return tf.fused.matMul({ a: x as tf.Tensor2D, b: this.w, bias: this.b }) as tf.Tensor2D;
  }

  /** The input gradient dy W^T. */
  backward(dy: tf.Tensor): tf.Tensor2D {
    if (fusedKernels()) return fusedLinear(dy, this.transposed());
    if (this.simd(this.shape[0])) return simdLinear(dy, this.packedTransposed(), this.shape[0]);
    return tf.matMul(dy as tf.Tensor2D, this.transposed());
  }

  /** Make what the backward pass multiplies by (FrozenViT.prepareBackward), so that a step allocates none of it. */
  prepareBackward(): void {
    if (this.simd(this.shape[0]) && !fusedKernels()) this.packedTransposed();
    else this.transposed();
  }

  /** [out, in], made before the first backward pass only (inference never needs it). */
  transposed(): tf.Tensor2D {
    if (!this.wt) this.wt = tf.keep(tf.tidy(() => tf.transpose(this.w)));
    return this.wt;
  }

  /** W^T packed; where W is kept packed only, the plain W it is made from is not kept. */
  private packedTransposed(): tf.Tensor {
    if (!this.packedT) {
      const had = this.plain !== null;
      this.packedT = tf.keep(simdPack(this.w, true));
      if (!had) { this.plain?.dispose(); this.plain = null; }
    }
    return this.packedT;
  }

  /** Whether a product with n output columns runs in wasm's SIMD kernel (it takes widths divisible by 4). */
  private simd(n: number): boolean {
    return n % 4 === 0 && wasmSimdKernels();
  }

  dispose(): void {
    this.plain?.dispose();
    this.b.dispose();
    this.wt?.dispose();
    this.packed?.dispose();
    this.packedT?.dispose();
  }
}

/** [in, out] back from the panels [ceil(out / 8), in, 8] (tfjs ops: any backend, rarely needed). */
const unpackPanels = (packed: tf.Tensor, [K, N]: [number, number]): tf.Tensor2D =>
  tf.slice(tf.reshape(tf.transpose(packed, [1, 0, 2]), [K, packed.shape[0] * 8]), [0, 0], [K, N]) as tf.Tensor2D;

/** w (or w^T) packed for simdLinear (wasm-simd.ts). */
const simdPack = (w: tf.Tensor2D, transposed: boolean): tf.Tensor =>
  tf.engine().runKernel(SIMD_PACK, { w }, { transposed } as unknown as tf.NamedAttrMap) as tf.Tensor;

/** x W (+ b) with W packed, N columns, in wasm's SIMD kernel. */
const simdLinear = (x: tf.Tensor, packed: tf.Tensor, N: number, b?: tf.Tensor1D): tf.Tensor2D =>
  tf.engine().runKernel(SIMD_LINEAR, (b ? { x, w: packed, bias: b } : { x, w: packed }) as unknown as tf.NamedTensorMap, { N } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
