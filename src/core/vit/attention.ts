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
 * instead of 16; and where wasm has SIMD, all of a layer's attention is one
 * kernel each way (wasm-simd.ts), the per-head form staying for engines
 * without SIMD. Other backends keep the batched form, which their kernels
 * handle well. All agree to float rounding (tests/unit/attention.test.ts,
 * tests/unit/node-webgpu.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { scaledSoftmax } from './ops';
import { ATTENTION_DP, ATTENTION_DQKV, ATTENTION_PV, ATTENTION_SCORES, MAX_FUSED_HEADS } from './webgpu-attention';
import { headwisePays } from './attention-form';
import { headBlocksOf, placeBlocksOf, softmaxGradOf, type Block, type Place } from './wasm-attention';
import { fusedKernels, runFused, SCALED_SOFTMAX, SCALED_SOFTMAX_GRAD } from './webgpu-kernels';
import { SIMD_ATTENTION, SIMD_ATTENTION_GRAD, wasmSimdKernels } from './wasm-simd';

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
 * The fused WebGPU form's forward: scores, softmax, P V. Returns the output
 * and the probabilities, which the backward needs with the projection.
 */
export function fusedAttentionForward(qkv: tf.Tensor2D, B: number, H: number): { out: tf.Tensor2D; p: tf.Tensor } {
  const scale = 1 / Math.sqrt(qkv.shape[1] / 3 / H), attrs = { B, H };
  const scores = runFused(ATTENTION_SCORES, { qkvIn: qkv }, attrs);
  const p = runFused(SCALED_SOFTMAX, { zIn: scores }, { scale });
  scores.dispose();
  return { out: runFused(ATTENTION_PV, { pIn: p, qkvIn: qkv }, attrs) as tf.Tensor2D, p };
}

/** Its backward: dP, the softmax's gradient, then dQ | dK | dV in one dispatch, as [B*T, 3d]. */
export function fusedAttentionBackward(qkv: tf.Tensor2D, p: tf.Tensor, dOut: tf.Tensor, B: number, H: number): tf.Tensor2D {
  const scale = 1 / Math.sqrt(qkv.shape[1] / 3 / H), attrs = { B, H };
  const dp = runFused(ATTENTION_DP, { doIn: dOut, qkvIn: qkv }, attrs);
  const ds = runFused(SCALED_SOFTMAX_GRAD, { pIn: p, dpIn: dp }, { scale });
  dp.dispose();
  const dqkv = runFused(ATTENTION_DQKV, { dsIn: ds, pIn: p, qkvIn: qkv, doIn: dOut }, attrs) as tf.Tensor2D;
  ds.dispose();
  return dqkv;
}

type Forward = (qkv: tf.Tensor2D, B: number, H: number) => { out: tf.Tensor2D; p: tf.Tensor };
type Backward = (qkv: tf.Tensor2D, p: tf.Tensor, dOut: tf.Tensor, B: number, H: number) => tf.Tensor2D;

/**
 * A forward and backward that keep the probabilities as one gradient function (per shape: perShape below).
 * Saves the projection and the probabilities, as the batched form's products do.
 */
const withGradient = (forward: Forward, backward: Backward) => (B: number, H: number) =>
  tf.customGrad(((qkv: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const { out, p } = forward(qkv, B, H);
    save([qkv, p]);
    p.dispose(); // the saved copy is the engine's
    return { value: out, gradFunc: (dy: tf.Tensor, [sqkv, sp]: tf.Tensor[]) => backward(sqkv as tf.Tensor2D, sp, dy, B, H) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (qkv: tf.Tensor2D) => tf.Tensor2D;

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
export const fusedAttention: Attention = perShape(withGradient(fusedAttentionForward, fusedAttentionBackward));

/**
 * The per-head form (what wasm runs where it pays), forward: the output and
 * every (image, head)'s probabilities, which the backward needs. Each
 * image's operands come out of the [B*T, 3d] projection in one kernel
 * (wasm-attention.ts), already in the layout each product needs,
 * so that no product takes a transposed operand and tfjs transposes nothing:
 * forward, s = q (k^T scale), out = p v; backward, dp = g v^T,
 * ds' = scale * softmax'(p, dp) (with its transpose), dq = ds' k,
 * dk = ds'^T q, dv = p^T g. The [T, T] matrices are always the first operand:
 * XNNPACK repacks the second one on every call (tfjs-wasm caches the packing
 * by tensor, and these tensors are new each time), which cost about 100 us
 * for a [207, 64] operand and 245 us for a [207, 207] one here, more than
 * transposing the [207, 207] one in JavaScript (about 70 us).
 */
export function headwiseForward(qkv: tf.Tensor2D, B: number, H: number): { out: tf.Tensor2D; probs: tf.Tensor2D[] } {
  const [BT, d3] = qkv.shape, T = BT / B, d = d3 / 3, hd = d / H, scale = 1 / Math.sqrt(hd);
  const probs: tf.Tensor2D[] = [], outs: tf.Tensor2D[] = [], places: Place[] = [];
  for (let b = 0; b < B; b++) {
    // Per head: q, k^T scaled (the transposing copy multiplies anyway; q stays a plain memory copy), v.
    const ops = headBlocksOf(qkv, b * T, T, Array.from({ length: H }, (_, h): Block[] => [
      { col: h * hd, width: hd, transposed: false },
      { col: d + h * hd, width: hd, transposed: true, scale },
      { col: 2 * d + h * hd, width: hd, transposed: false },
    ]).flat());
    for (let h = 0; h < H; h++) {
      const p = tf.tidy(() => tf.softmax(tf.matMul(ops[3 * h], ops[3 * h + 1])) as tf.Tensor2D);
      probs.push(p);
      outs.push(tf.matMul(p, ops[3 * h + 2]));
      places.push({ row: b * T, col: h * hd, transposed: false });
    }
    tf.dispose(ops);
  }
  const out = placeBlocksOf(outs, places, [BT, d]);
  tf.dispose(outs);
  return { out, probs };
}

/** Its backward: dQ | dK | dV as [B*T, 3d], from the projection, every (image, head)'s probabilities and the output's gradient. */
export function headwiseBackward(qkv: tf.Tensor2D, probs: tf.Tensor[], dy: tf.Tensor, B: number, H: number): tf.Tensor2D {
  const [BT, d3] = qkv.shape, T = BT / B, d = d3 / 3, hd = d / H, scale = 1 / Math.sqrt(hd);
  const blocks: tf.Tensor2D[] = [], to: Place[] = [];
  for (let b = 0; b < B; b++) {
    blocks.push(...tf.tidy(() => {
      const ops = headBlocksOf(qkv, b * T, T, Array.from({ length: H }, (_, h): Block[] => [
        { col: h * hd, width: hd, transposed: false }, // q
        { col: d + h * hd, width: hd, transposed: false }, // k
        { col: 2 * d + h * hd, width: hd, transposed: true }, // v^T
      ]).flat());
      const gs = headBlocksOf(dy as tf.Tensor2D, b * T, T, Array.from({ length: H }, (_, h): Block => ({ col: h * hd, width: hd, transposed: false })));
      const out: tf.Tensor2D[] = [];
      for (let h = 0; h < H; h++) {
        const [q, k, vT] = ops.slice(3 * h, 3 * h + 3), g = gs[h], p = probs[b * H + h] as tf.Tensor2D;
        const [ds, dsT] = softmaxGradOf(p, tf.matMul(g, vT), scale, true); // d(scores) times scale, and its transpose
        const [pT] = headBlocksOf(p, 0, T, [{ col: 0, width: T, transposed: true }]);
        out.push(tf.matMul(ds, k), tf.matMul(dsT, q), tf.matMul(pT, g)); // dq, dk, dv
        for (let j = 0; j < 3; j++) to.push({ row: b * T, col: j * d + h * hd, transposed: false });
      }
      return out;
    }));
  }
  const g = placeBlocksOf(blocks, to, [BT, d3]);
  tf.dispose(blocks);
  return g;
}

/** The two as one gradient function (perShape caches one per shape). */
function makeHeadwise(B: number, H: number) {
  return tf.customGrad(((qkv: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const { out, probs } = headwiseForward(qkv, B, H);
    save([qkv, ...probs]);
    tf.dispose(probs); // saved copies are kept by the engine
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => headwiseBackward(saved[0] as tf.Tensor2D, saved.slice(1), dy, B, H),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (qkv: tf.Tensor2D) => tf.Tensor2D;
}

/** The per-head form with its written-out gradient (what wasm without SIMD runs where it pays). */
export const headwiseAttention: Attention = perShape(makeHeadwise);

/**
 * wasm's SIMD form (wasm-simd.ts), forward: one kernel a layer does every
 * (image, head)'s products and softmax on the heap, reading the projection
 * and writing the output in place; returns the output and the probabilities.
 */
export function simdAttentionForward(qkv: tf.Tensor2D, B: number, H: number): { out: tf.Tensor2D; p: tf.Tensor } {
  const [out, p] = tf.engine().runKernel(SIMD_ATTENTION, { qkv }, { B, H }) as unknown as [tf.Tensor2D, tf.Tensor];
  return { out, p };
}

/** Its backward: dQ | dK | dV as [B*T, 3d], in one kernel. */
export function simdAttentionBackward(qkv: tf.Tensor2D, probs: tf.Tensor, dOut: tf.Tensor, B: number, H: number): tf.Tensor2D {
  return tf.engine().runKernel(SIMD_ATTENTION_GRAD, { qkv, probs, dOut }, { B, H }) as tf.Tensor2D;
}

/** wasm's SIMD form with its gradient. */
export const simdAttention: Attention = perShape(withGradient(simdAttentionForward, simdAttentionBackward));

/** Whether attention with heads hd wide runs in wasm's SIMD kernels: on wasm with SIMD, for any shape its products take (hd a multiple of 4). */
export const simdAttentionRuns = (hd: number): boolean => wasmSimdKernels() && hd % 4 === 0;

let fusedAttentionOn = true;

/**
 * Run attention on tfjs ops even where the other fused kernels run (the GPU
 * bench compares both). Returns the previous setting.
 */
export function setFusedAttention(on: boolean): boolean {
  const was = fusedAttentionOn;
  fusedAttentionOn = on;
  return was;
}

/** Whether attention over B images of H heads runs on the fused WebGPU kernels. */
export const fusedAttentionRuns = (B: number, H: number): boolean => fusedAttentionOn && fusedKernels() && B * H <= MAX_FUSED_HEADS;

/** Attention from [B*T, 3d] to [B*T, d]: fused kernels on webgpu, per-head 2-D products where those are faster. */
export function attention(qkv: tf.Tensor2D, B: number, H: number): tf.Tensor2D {
  if (fusedAttentionRuns(B, H)) return fusedAttention(qkv, B, H);
  const T = qkv.shape[0] / B, hd = qkv.shape[1] / 3 / H;
  if (simdAttentionRuns(hd)) return simdAttention(qkv, B, H);
  return headwisePays(tf.getBackend(), T, hd) ? headwiseAttention(qkv, B, H) : batchedAttention(qkv, B, H);
}
