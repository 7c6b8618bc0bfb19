/**
 * Scaled dot-product attention, softmax(q k^T / sqrt(hd)) v, over [B, H, T, hd].
 *
 * Why two paths: tfjs-wasm hands a matmul to XNNPACK only when both operands
 * are 2-D and the second is not transposed; batched or transposed products
 * (Q K^T, and every product in the tape's MatMul gradient) run a scalar loop
 * about ten times slower, and they were 60% of a ViT-Ti training step
 * (bench/profile.ts). So on wasm the products run per head as plain 2-D
 * matmuls on explicitly transposed operands, with the gradient written out
 * (softmax backward: dS = P * (dP - rowsum(dP * P))). Other backends keep the
 * batched form, which their kernels handle well. Both agree to float rounding
 * (tests/unit/attention.test.ts).
 */
import * as tf from '@tensorflow/tfjs';

/** The batched form: what every backend but wasm runs. */
export function batchedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
  const hd = q.shape[3];
  const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd))); // [B, H, T, T]
  return tf.matMul(att, v) as tf.Tensor4D; // [B, H, T, hd]
}

/** Per-head 2-D products ([T, hd] x [hd, T], [T, T] x [T, hd]) stacked back: XNNPACK's fast path on wasm. */
function perHead(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [n, r, m] = a.shape, c = b.shape[2];
  // Slices, not tf.unstack: wasm's Unpack kernel cost five times the products themselves.
  const head = (x: tf.Tensor3D, i: number, rows: number, cols: number) => tf.reshape(tf.slice(x, [i, 0, 0], [1, rows, cols]), [rows, cols]) as tf.Tensor2D;
  // tidy: the slices and per-head products go as soon as they are stacked (memory, not just speed).
  return tf.tidy(() => tf.stack(Array.from({ length: n }, (_, i) => tf.matMul(head(a, i, r, m), head(b, i, m, c)))) as tf.Tensor3D);
}

const T3 = (x: tf.Tensor3D) => tf.transpose(x, [0, 2, 1]) as tf.Tensor3D;

const headwise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [q, k, v, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
  const [B, H, T, hd] = q.shape;
  const n = B * H, scale = 1 / Math.sqrt(hd);
  const q3 = tf.reshape(q, [n, T, hd]) as tf.Tensor3D, k3 = tf.reshape(k, [n, T, hd]) as tf.Tensor3D, v3 = tf.reshape(v, [n, T, hd]) as tf.Tensor3D;
  const p = tf.softmax(tf.mul(perHead(q3, T3(k3)), scale)) as tf.Tensor3D; // [n, T, T]
  save([q3, k3, v3, p]);
  return {
    value: tf.reshape(perHead(p, v3), [B, H, T, hd]) as tf.Tensor4D,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sq, sk, sv, sp] = saved as tf.Tensor3D[];
      const dy3 = tf.reshape(dy, [n, T, hd]) as tf.Tensor3D;
      const dp = perHead(dy3, T3(sv)); // [n, T, T]
      const dv = perHead(T3(sp), dy3); // [n, T, hd]
      const ds = tf.mul(tf.mul(sp, tf.sub(dp, tf.sum(tf.mul(dp, sp), -1, true))), scale) as tf.Tensor3D;
      const dq = perHead(ds, sk), dk = perHead(T3(ds), sq);
      return [dq, dk, dv].map((g) => tf.reshape(g, [B, H, T, hd]));
    },
  };
});

/** The per-head form with its written-out gradient (what wasm runs). */
export function headwiseAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
  return headwise(q, k, v) as tf.Tensor4D;
}

/**
 * Whether the per-head form pays: on wasm, when each head's product is large
 * enough (T^2 hd >= 1M multiply-adds) for XNNPACK to outrun the cost of the
 * extra kernel calls. ViT-Ti/16 at 224 (T = 207, hd = 64: 2.7M) gains; the
 * tiny 32-pixel demo model (T = 65, hd = 16: 68K) ran 2x slower per head.
 */
export function headwisePays(backend: string, tokens: number, headDim: number): boolean {
  return backend === 'wasm' && tokens * tokens * headDim >= 1e6;
}

/** softmax(q k^T / sqrt(hd)) v, [B, H, T, hd]; per-head 2-D products where that is faster. */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
  return headwisePays(tf.getBackend(), q.shape[2], q.shape[3]) ? headwiseAttention(q, k, v) : batchedAttention(q, k, v);
}
