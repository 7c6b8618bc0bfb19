import * as tf from '@tensorflow/tfjs';
import { useBackend } from '/work/main/src/cli/backend';
await useBackend('wasm');
async function time(name: string, f: () => tf.Tensor | tf.Tensor[], n = 5) {
  let y = f(); const arr = () => (Array.isArray(y) ? y : [y]);
  await Promise.all(arr().map((t) => t.data())); tf.dispose(y);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) { y = f(); await Promise.all(arr().map((t) => t.data())); tf.dispose(y); }
  console.log(name.padEnd(44), ((performance.now() - t0) / n).toFixed(2), 'ms');
}
// ViT-Ti/16 p=10, batch 8: B*H = 24, T = 207, hd = 64
const BH = 24, T = 207, hd = 64;
const q = tf.randomNormal([BH, T, hd]), kT = tf.randomNormal([BH, hd, T]), p = tf.randomNormal([BH, T, T]), v = tf.randomNormal([BH, T, hd]);
await time('batched q kT [24,207,64]x[24,64,207]', () => tf.matMul(q, kT));
await time('24 x 2-D q kT (unstack/stack)', () => tf.tidy(() => { const qs = tf.unstack(q), ks = tf.unstack(kT); return tf.stack(qs.map((a, i) => tf.matMul(a as tf.Tensor2D, ks[i] as tf.Tensor2D))); }));
await time('batched P v [24,207,207]x[24,207,64]', () => tf.matMul(p, v));
await time('24 x 2-D P v', () => tf.tidy(() => { const ps = tf.unstack(p), vs = tf.unstack(v); return tf.stack(ps.map((a, i) => tf.matMul(a as tf.Tensor2D, vs[i] as tf.Tensor2D))); }));
await time('2-D matmul [4968,192]x[192,768]', () => tf.matMul(tf.randomNormal([4968, 192]), tf.randomNormal([192, 768])));
