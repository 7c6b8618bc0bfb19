/** The ViT's building blocks as tfjs ops, smallest first (read bottom-up). */
import * as tf from '@tensorflow/tfjs';

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm. */
export function layerNorm(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), g), b);
}

/** Exact (erf) GELU, as the official ViT-pytorch code's `ACT2FN['gelu']`. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * A frozen linear layer y = x W + b on 2-D x. W is constant, so the only
 * gradient is dx = dy W^T, computed against a pre-transposed copy: tfjs's
 * fast matmul path (wasm, webgpu) needs an untransposed second operand, and
 * the tape's own MatMul gradient would also compute an unused dW.
 */
export class FrozenLinear {
  private wt: tf.Tensor2D | null = null;
  readonly apply: (x: tf.Tensor2D) => tf.Tensor2D;

  constructor(readonly w: tf.Tensor2D, readonly b: tf.Tensor1D) {
    this.apply = tf.customGrad(((x: tf.Tensor) => ({
      value: tf.add(tf.matMul(x as tf.Tensor2D, this.w), this.b) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, this.transposed()),
    })) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor2D) => tf.Tensor2D;
  }

  /** [out, in], made before the first backward pass only (inference never needs it). */
  transposed(): tf.Tensor2D {
    if (!this.wt) this.wt = tf.keep(tf.transpose(this.w));
    return this.wt;
  }

  dispose(): void {
    this.w.dispose();
    this.b.dispose();
    this.wt?.dispose();
  }
}
