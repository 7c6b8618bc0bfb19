/**
 * Multi-head self-attention from the fused q|k|v projection: [B*T, 3d] (q,
 * then k, then v, each d = H heads x hd wide) to the heads' outputs side by
 * side, [B*T, d]: softmax(q k^T / sqrt(hd)) v per head.
 *
 * Why two paths: tfjs-wasm hands a matmul to XNNPACK only when both operands
 * are 2-D and the second is not transposed; batched or transposed products
 * (Q K^T, and every product in the tape's MatMul gradient) run a scalar loop
 * about ten times slower, and they were 60% of a ViT-Ti training step
 * (bench/profile.ts). So on wasm each head runs as plain 2-D products on
 * explicitly transposed operands, read straight out of the [B*T, 3d]
 * projection and written straight into the [B*T, d] output (no rank-4
 * transposes, no q/k/v slices and their zero-padded gradients), with the
 * gradient written out (softmax backward: dS = P * (dP - rowsum(dP * P))).
 * Where the fused WebGPU kernels run, the products read and write the
 * [B*T, 3d] layout directly too (webgpu-attention.ts): 6 dispatches a layer
 * instead of 16. Other backends keep the batched form, which their kernels
 * handle well. All agree to float rounding (tests/unit/attention.test.ts,
 * tests/unit/node-webgpu.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { scaledSoftmax } from './ops';
import { ATTENTION_DP, ATTENTION_DQKV, ATTENTION_PV, ATTENTION_SCORES, MAX_FUSED_HEADS } from './webgpu-attention';
import { fusedKernels, runFused, SCALED_SOFTMAX, SCALED_SOFTMAX_GRAD } from './webgpu-kernels';

/** The batched form: what every backend but wasm runs. */
export function batchedAttention(qkv: tf.Tensor2D, B: number, H: number): tf.Tensor2D {
  const [BT, d3] = qkv.shape, T = BT / B, d = d3 / 3, hd = d / H;
  // Rank-4 transposes only: tfjs-wasm's rank-5 transpose is ~80x slower (bench/micro.ts).
  const x = tf.transpose(tf.reshape(qkv, [B, T, 3 * H, hd]), [0, 2, 1, 3]); // [B, 3H, T, hd]
  // One split, not three slices: its gradient is one concat, where each slice's is a zero-padded
  // copy of the whole [B, 3H, T, hd] tensor, then two adds of them.
  const [q, k, v] = tf.split(x, 3, 1);
  const att = scaledSoftmax(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)); // [B, H, T, T]
  return tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [BT, d]) as tf.Tensor2D;
}

/**
 * The fused WebGPU form: scores, softmax, P V forward; dP, the softmax's
 * gradient, and dQ | dK | dV in one dispatch backward. Saves the projection
 * and the probabilities, as the batched form's products do.
 */
function makeFused(B: number, H: number) {
  return tf.customGrad(((qkv: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const scale = 1 / Math.sqrt(qkv.shape[1] / 3 / H), attrs = { B, H };
    const scores = runFused(ATTENTION_SCORES, { qkvIn: qkv }, attrs);
    const p = runFused(SCALED_SOFTMAX, { zIn: scores }, { scale });
    scores.dispose();
    save([qkv, p]);
    const out = runFused(ATTENTION_PV, { pIn: p, qkvIn: qkv }, attrs);
    p.dispose(); // the saved copy is the engine's
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, [sqkv, sp]: tf.Tensor[]) => tf.tidy(() => {
        const dp = runFused(ATTENTION_DP, { doIn: dy, qkvIn: sqkv }, attrs);
        const ds = runFused(SCALED_SOFTMAX_GRAD, { pIn: sp, dpIn: dp }, { scale });
        return runFused(ATTENTION_DQKV, { dsIn: ds, pIn: sp, qkvIn: sqkv, doIn: dy }, attrs);
      }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (qkv: tf.Tensor2D) => tf.Tensor2D;
}

type Attention = (qkv: tf.Tensor2D, B: number, H: number) => tf.Tensor2D;

/** One gradient function per (B, H), made on first use: tf.customGrad wraps a fixed function. */
function perShape(make: (B: number, H: number) => (qkv: tf.Tensor2D) => tf.Tensor2D): Attention {
  const byShape = new Map<string, (qkv: tf.Tensor2D) => tf.Tensor2D>();
  return (qkv, B, H) => {
    const key = `${B}x${H}`;
    let f = byShape.get(key);
    if (!f) byShape.set(key, (f = make(B, H)));
    return f(qkv);
  };
}

/** Attention in the fused WebGPU kernels (webgpu-attention.ts). */
export const fusedAttention: Attention = perShape(makeFused);

/** Row block b, columns [c, c + w) of a 2-D tensor: one head's q, k or v (or its gradient). */
const block = (x: tf.Tensor2D, b: number, T: number, c: number, w: number) => tf.slice(x, [b * T, c], [T, w]) as tf.Tensor2D;
const tr = (x: tf.Tensor2D) => tf.transpose(x) as tf.Tensor2D;

/** The per-head form's gradient function for one (B, H) shape (perShape caches it). */
function makeHeadwise(B: number, H: number) {
  return tf.customGrad(((qkv: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const [BT, d3] = qkv.shape, T = BT / B, d = d3 / 3, hd = d / H, scale = 1 / Math.sqrt(hd);
    const probs: tf.Tensor2D[] = [];
    const rows = Array.from({ length: B }, (_, b) => tf.tidy(() => tf.concat(Array.from({ length: H }, (_, h) => {
      const q = block(qkv, b, T, h * hd, hd), k = block(qkv, b, T, d + h * hd, hd), v = block(qkv, b, T, 2 * d + h * hd, hd);
      // Scale q ([T, hd]) rather than the scores ([T, T]): the same product, fewer multiplies.
      const p = tf.keep(tf.softmax(tf.matMul(tf.mul(q, scale), tr(k))) as tf.Tensor2D);
      probs.push(p);
      return tf.matMul(p, v);
    }), 1))); // [T, d]
    save([qkv, ...probs]);
    const out = tf.concat(rows, 0) as tf.Tensor2D;
    tf.dispose([...rows, ...probs]); // saved copies are kept by the engine
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sqkv, ...sp] = saved as tf.Tensor2D[];
        const g2 = dy as tf.Tensor2D;
        const grows = Array.from({ length: B }, (_, b) => tf.tidy(() => {
          const dq: tf.Tensor[] = [], dk: tf.Tensor[] = [], dv: tf.Tensor[] = [];
          for (let h = 0; h < H; h++) {
            const q = block(sqkv, b, T, h * hd, hd), k = block(sqkv, b, T, d + h * hd, hd), v = block(sqkv, b, T, 2 * d + h * hd, hd);
            const g = block(g2, b, T, h * hd, hd), p = sp[b * H + h];
            const dp = tf.matMul(g, tr(v)); // [T, T]
            dv.push(tf.matMul(tr(p), g));
            const ds = tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true))) as tf.Tensor2D; // d(scores), scores = (q scale) k^T
            dq.push(tf.mul(tf.matMul(ds, k), scale));
            dk.push(tf.mul(tf.matMul(tr(ds), q), scale));
          }
          return tf.concat([...dq, ...dk, ...dv], 1); // [T, 3d], laid out as qkv
        }));
        const g = tf.concat(grows, 0);
        tf.dispose(grows);
        return g;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (qkv: tf.Tensor2D) => tf.Tensor2D;
}

/** The per-head form with its written-out gradient (what wasm runs). */
export const headwiseAttention: Attention = perShape(makeHeadwise);

/**
 * Whether the per-head form pays: on wasm, when each head's product is large
 * enough (T^2 hd >= 1M multiply-adds) for XNNPACK to outrun the cost of the
 * extra kernel calls. ViT-Ti/16 at 224 (T = 207, hd = 64: 2.7M) gains; the
 * tiny 32-pixel demo model (T = 65, hd = 16: 68K) ran 2x slower per head.
 */
export function headwisePays(backend: string, tokens: number, headDim: number): boolean {
  return backend === 'wasm' && tokens * tokens * headDim >= 1e6;
}

let fusedAttentionOn = true;

/**
 * Run attention on tfjs ops even where the other fused kernels run (the GPU
 * bench compares both; the fused products are not yet timed on a real GPU).
 * Returns the previous setting.
 */
export function setFusedAttention(on: boolean): boolean {
  const was = fusedAttentionOn;
  fusedAttentionOn = on;
  return was;
}

/** Attention from [B*T, 3d] to [B*T, d]: fused kernels on webgpu, per-head 2-D products where those are faster. */
export function attention(qkv: tf.Tensor2D, B: number, H: number): tf.Tensor2D {
  if (fusedAttentionOn && fusedKernels() && B * H <= MAX_FUSED_HEADS) return fusedAttention(qkv, B, H);
  const T = qkv.shape[0] / B, hd = qkv.shape[1] / 3 / H;
  return headwisePays(tf.getBackend(), T, hd) ? headwiseAttention(qkv, B, H) : batchedAttention(qkv, B, H);
}
