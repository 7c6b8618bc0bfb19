// `npx tsx bench/attention.ts [B] [H] [T] [hd]`: the attention products with their
// gradient on wasm, batched (tfjs's BatchMatMul) against per-head 2-D (src/core/vit/attention.ts).
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/cli/backend';
import { batchedAttention, headwiseAttention } from '../src/core/vit/attention';

const [B, H, T, hd] = process.argv.slice(2).map(Number).concat([8, 3, 207, 64].slice(process.argv.length - 2));
await useBackend('wasm');
const qkv = tf.randomNormal([B * T, 3 * H * hd]) as tf.Tensor2D;
const r = tf.randomNormal([B * T, H * hd]);
async function time(f: typeof batchedAttention): Promise<{ ms: number; grads: Float32Array[] }> {
  const g = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor2D, B, H), r)));
  const run = async () => { const gs = g([qkv]); const out = await Promise.all(gs.map((x) => x.data() as Promise<Float32Array>)); tf.dispose(gs); return out; };
  await run();
  const t0 = performance.now();
  let grads: Float32Array[] = [];
  for (let i = 0; i < 3; i++) grads = await run();
  return { ms: (performance.now() - t0) / 3, grads };
}
const a = await time(batchedAttention), b = await time(headwiseAttention);
let m = 0, n = 0;
a.grads[0].forEach((y, j) => { m = Math.max(m, Math.abs(y - b.grads[0][j])); n = Math.max(n, Math.abs(y)); });
console.log(`[${B}, ${H}, ${T}, ${hd}] forward+backward: batched ${a.ms.toFixed(0)} ms, per-head ${b.ms.toFixed(0)} ms (${(a.ms / b.ms).toFixed(2)}x); gradient rel. difference ${(m / n).toExponential(1)}`);
