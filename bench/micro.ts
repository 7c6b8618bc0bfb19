import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/cli/backend';
await useBackend((process.argv[2] ?? 'wasm') as 'wasm');
async function time(name: string, f: () => tf.Tensor, n = 10) {
  let y = f(); await y.data(); y.dispose();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) { y = f(); await y.data(); y.dispose(); }
  console.log(name.padEnd(40), ((performance.now() - t0) / n).toFixed(2), 'ms');
}
const x5 = tf.randomNormal([32, 75, 3, 4, 16]);
const x4 = tf.randomNormal([32, 75, 4, 16]);
const x3 = tf.randomNormal([128, 75, 16]);
const s3 = tf.randomNormal([128, 75, 75]);
const a2 = tf.randomNormal([2400, 64]); const w = tf.randomNormal([64, 256]); const wt = tf.randomNormal([256, 64]);
await time('transpose5 [2,0,3,1,4]', () => tf.transpose(x5, [2, 0, 3, 1, 4]));
await time('transpose4 [0,2,1,3]', () => tf.transpose(x4, [0, 2, 1, 3]));
await time('transpose3 [0,2,1]', () => tf.transpose(x3, [0, 2, 1]));
await time('transpose3 scores [0,2,1]', () => tf.transpose(s3, [0, 2, 1]));
await time('bmm q kT (transposeB)', () => tf.matMul(x3, x3, false, true));
const kT = tf.transpose(x3, [0, 2, 1]);
await time('bmm q kT (pre-transposed)', () => tf.matMul(x3, kT));
await time('bmm P v', () => tf.matMul(s3, x3));
await time('bmm P^T v (transposeA)', () => tf.matMul(s3, x3, true, false));
await time('mm x W', () => tf.matMul(a2, w));
await time('mm x W^T (transposeB)', () => tf.matMul(a2, wt, false, true));
const b2 = tf.randomNormal([2400, 256]);
await time('mm dy W^T (pre-transposed)', () => tf.matMul(b2, wt));
await time('softmax', () => tf.softmax(s3));
await time('erf', () => tf.erf(b2));
const img = tf.randomNormal([32, 8, 4, 8, 4, 3]);
await time('transpose6 patches', () => tf.transpose(img, [0, 1, 3, 2, 4, 5]));
