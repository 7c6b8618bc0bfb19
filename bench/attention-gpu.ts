// Attention's products one kernel at a time on webgpu (for `npm run bench -- --gpu --attention`): our
// fused kernels (src/core/vit/webgpu-attention.ts) with their tiles' loads direct and staged
// (setAttentionLoads), the three-gradient one also part by part, against
// tfjs's batched matmul on the same products with q, k, v, dO already split into [B H, T, hd]. Each
// is timed alone, 20 in a row and one readback, so the figures do not depend on a profiler's clock.
import * as tf from '@tensorflow/tfjs';
import { ATTENTION_DP, ATTENTION_DQKV, ATTENTION_PV, ATTENTION_SCORES, setAttentionLoads } from '../src/core/vit/webgpu-attention';
import { runFused } from '../src/core/vit/webgpu-kernels';
import { kernelMs } from './step';

export interface AttentionKernelRow { shape: string; kernel: string; ms: number; gflops: number }

/** Rows for one shape [B, H, T, hd]; each product counts 2 B H T^2 hd FLOPs (the three gradients three times that). */
export async function attentionKernels(B: number, H: number, T: number, hd: number, reps = 7): Promise<AttentionKernelRow[]> {
  const d = H * hd, z = B * H, flops = 2 * z * T * T * hd, shape = `[${B}, ${H}, ${T}, ${hd}]`;
  const qkv = tf.randomNormal([B * T, 3 * d]), dO = tf.randomNormal([B * T, d]);
  const p = tf.randomUniform([B, H, T, T]), ds = tf.randomNormal([B, H, T, T]);
  // tfjs's operands: [z, T, hd] per head (what the batched path makes with its split and transposes).
  const heads = (x: tf.Tensor, i: number) => tf.tidy(() =>
    tf.reshape(tf.transpose(tf.reshape(tf.slice(tf.reshape(x, [B * T, -1]), [0, i * d], [B * T, d]), [B, T, H, hd]), [0, 2, 1, 3]), [z, T, hd]));
  const [q, k, v] = [0, 1, 2].map((i) => heads(qkv, i)), o = heads(dO, 0);
  const p3 = tf.reshape(p, [z, T, T]), ds3 = tf.reshape(ds, [z, T, T]);
  const attrs = { B, H };
  const ours = (label: string, f: number, name: string, inputs: Record<string, tf.Tensor>, part?: number): [string, number, () => tf.Tensor][] =>
    (['direct', 'staged'] as const).map((loads) => [`ours ${loads}: ${label}`, f, () => {
      const was = setAttentionLoads(loads);
      try { return runFused(name, inputs, part === undefined ? attrs : { ...attrs, part }); } finally { setAttentionLoads(was); }
    }]);
  const grads = { dsIn: ds, pIn: p, qkvIn: qkv, doIn: dO };
  const cases: [string, number, () => tf.Tensor][] = [
    ...ours('scores Q K^T', flops, ATTENTION_SCORES, { qkvIn: qkv }),
    ...ours('P V', flops, ATTENTION_PV, { pIn: p, qkvIn: qkv }),
    ...ours('dP = dO V^T', flops, ATTENTION_DP, { doIn: dO, qkvIn: qkv }),
    ...ours('dQ | dK | dV', 3 * flops, ATTENTION_DQKV, grads),
    ...['dQ = dS K', 'dK = dS^T Q', 'dV = P^T dO'].flatMap((label, part) => ours(`${label} alone`, flops, ATTENTION_DQKV, grads, part)),
    ['tfjs: scores Q K^T', flops, () => tf.matMul(q, k, false, true)],
    ['tfjs: P V', flops, () => tf.matMul(p3, v)],
    ['tfjs: dP = dO V^T', flops, () => tf.matMul(o, v, false, true)],
    ['tfjs: dQ = dS K', flops, () => tf.matMul(ds3, k)],
    ['tfjs: dK = dS^T Q', flops, () => tf.matMul(ds3, q, true, false)],
    ['tfjs: dV = P^T dO', flops, () => tf.matMul(p3, o, true, false)],
  ];
  const rows: AttentionKernelRow[] = [];
  try {
    for (const [kernel, f, run] of cases) {
      const ms = await kernelMs(run, reps);
      rows.push({ shape, kernel, ms, gflops: f / (ms * 1e6) });
    }
  } finally {
    tf.dispose([qkv, dO, p, ds, q, k, v, o, p3, ds3]);
  }
  return rows;
}

export function formatAttentionKernels(rows: AttentionKernelRow[]): string {
  return ['shape              kernel                               ms     GFLOP/s',
    ...rows.map((r) => `${r.shape.padEnd(18)} ${r.kernel.padEnd(33)} ${r.ms.toFixed(3).padStart(8)} ${r.gflops.toFixed(0).padStart(10)}`)].join('\n');
}
