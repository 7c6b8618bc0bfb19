// `npx tsx bench/attention.ts [B] [H] [T] [hd]`: the attention products with their
// gradient on wasm, batched (tfjs's BatchMatMul) against per-head 2-D (src/core/vit/attention.ts).
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/cli/backend';
import { batchedAttention, headwiseAttention } from '../src/core/vit/attention';

const [B, H, T, hd] = process.argv.slice(2).map(Number).concat([8, 3, 207, 64].slice(process.argv.length - 2));
await useBackend('wasm');
const q = tf.randomNormal([B, H, T, hd]) as tf.Tensor4D, k = tf.randomNormal([B, H, T, hd]) as tf.Tensor4D, v = tf.randomNormal([B, H, T, hd]) as tf.Tensor4D;
const r = tf.randomNormal([B, H, T, hd]);
async function time(f: typeof batchedAttention): Promise<{ ms: number; grads: Float32Array[] }> {
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D), r)));
  const run = async () => { const gs = g([q, k, v]); const out = await Promise.all(gs.map((x) => x.data() as Promise<Float32Array>)); tf.dispose(gs); return out; };
  await run();
  const t0 = performance.now();
  let grads: Float32Array[] = [];
  for (let i = 0; i < 3; i++) grads = await run();
  return { ms: (performance.now() - t0) / 3, grads };
}
const a = await time(batchedAttention), b = await time(headwiseAttention);
const rel = a.grads.map((x, i) => { let m = 0, n = 0; x.forEach((y, j) => { m = Math.max(m, Math.abs(y - b.grads[i][j])); n = Math.max(n, Math.abs(y)); }); return m / n; });
console.log(`[${B}, ${H}, ${T}, ${hd}] forward+backward: batched ${a.ms.toFixed(0)} ms, per-head ${b.ms.toFixed(0)} ms (${(a.ms / b.ms).toFixed(2)}x); gradient rel. difference q ${rel[0].toExponential(1)}, k ${rel[1].toExponential(1)}, v ${rel[2].toExponential(1)}`);
