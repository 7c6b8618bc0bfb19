import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/cli/backend';
import { loadBackboneFromPath } from '../src/cli/node-io';
import { FrozenViT } from '../src/core/vit/model';
import { initVpt, toVars, vptFeatures, head } from '../src/core/tuning/vpt';
import { Rng } from '../src/core/train/rng';
import { Optimizer, DEFAULT_OPTIMIZER } from '../src/core/train/optimizer';
import { vptStep, vptParamGroups } from '../src/core/train/step';

const be = process.argv[2] ?? 'wasm';
await useBackend(be as 'wasm');
const b = await loadBackboneFromPath('../shared/models/tiny-vit-mnist');
const m = new FrozenViT(b.weights); m.prepareBackward();
const B = 32;
const st = initVpt(m.config, 'deep', 10, 10, new Rng(1));
const vars = toVars(st);
const opt = new Optimizer(DEFAULT_OPTIMIZER, vptParamGroups(vars, 1e-4));
const images = new Float32Array(B * 32 * 32 * 3).map(() => Math.random());
const x = tf.tensor4d(images, [B, 32, 32, 3]);
async function time(name: string, f: () => Promise<void>, n = 5) {
  await f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await f();
  console.log(name, ((performance.now() - t0) / n).toFixed(1), 'ms');
}
await time('forward', async () => { const y = tf.tidy(() => head(vptFeatures(m, vars, x), vars.headW, vars.headB)); await y.data(); y.dispose(); });
await time('step', async () => { const r = vptStep(m, vars, opt, { images, labels: new Int32Array(B), weights: new Float32Array(B).fill(1), size: B }, 0.1, { microBatch: B, promptDropout: 0, rng: new Rng(1) }); await r.loss.data(); r.loss.dispose(); r.correct.dispose(); });
const prof = await tf.profile(async () => { const r = vptStep(m, vars, opt, { images, labels: new Int32Array(B), weights: new Float32Array(B).fill(1), size: B }, 0.1, { microBatch: B, promptDropout: 0, rng: new Rng(1) }); await r.loss.data(); r.loss.dispose(); r.correct.dispose(); });
const agg = new Map<string, { ms: number; n: number }>();
for (const k of prof.kernels) { const a = agg.get(k.name) ?? { ms: 0, n: 0 }; a.ms += k.kernelTimeMs as number; a.n++; agg.set(k.name, a); }
console.log([...agg].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15).map(([k, v]) => `${k} ${v.ms.toFixed(1)}ms x${v.n}`).join('\n'));
