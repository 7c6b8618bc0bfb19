// `npx tsx bench/profile.ts [wasm|cpu] [prompts] [batch] [--recompute] [--forward] [--vit-b]`: where one VPT-deep
// training step (or, with --forward, one inference pass) of ViT-Ti/16 (or ViT-B/16) at 224 spends its time,
// by kernel (tf.profile), largest first.
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/cli/backend';
import { DEFAULT_OPTIMIZER, Optimizer } from '../src/core/train/optimizer';
import { Rng } from '../src/core/train/rng';
import { forwardOf, optimizerStep, paramGroups } from '../src/core/train/step';
import { initState, makeVars } from '../src/core/tuning/params';
import { vptDeep } from '../src/core/tuning/prompt';
import { PRESETS } from '../src/core/vit/config';
import { FrozenViT } from '../src/core/vit/model';
import { randomWeights } from './step';

const [backend = 'wasm', ps = '10', bs = '8'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
await useBackend(backend as 'wasm');
const modelName = process.argv.includes('--vit-b') ? 'ViT-B/16' : 'ViT-Ti/16';
const c = PRESETS.find((p) => p.name === modelName)!.config;
const p = Number(ps), B = Number(bs), S = c.imageSize;
const w = randomWeights(c);
const model = new FrozenViT(w);
model.prepareBackward();
const vars = makeVars(vptDeep, initState(vptDeep, w, { name: 'vpt-deep', n: p }, 10, new Rng(2)), c);
const opt = new Optimizer(DEFAULT_OPTIMIZER, paramGroups(vars, 1e-4));
const fwd = forwardOf(model, vptDeep, vars, { recompute: process.argv.includes('--recompute') });
const batch = { inputs: Float32Array.from({ length: B * S * S * 3 }, (_, i) => Math.sin(i)), rowShape: [S, S, 3], labels: Int32Array.from({ length: B }, (_, i) => i % 10), weights: new Float32Array(B).fill(1), size: B };
const x = tf.tensor4d(batch.inputs, [B, S, S, 3]);
const step = process.argv.includes('--forward')
  ? async () => { const y = tf.tidy(() => fwd(x)); await y.data(); y.dispose(); }
  : async () => { const r = optimizerStep(fwd, vars, opt, batch, 0.01, B); await r.loss.data(); tf.dispose([r.loss, r.correct]); };
await step(); // warm-up
const t0 = performance.now();
const info = await tf.profile(step);
const wall = performance.now() - t0;
const by = new Map<string, { ms: number; n: number }>();
for (const k of info.kernels) {
  const ms = await k.kernelTimeMs;
  const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
  const e = by.get(key) ?? { ms: 0, n: 0 };
  by.set(key, { ms: e.ms + (typeof ms === 'number' ? ms : 0), n: e.n + 1 });
}
const total = [...by.values()].reduce((s, e) => s + e.ms, 0);
const byName = new Map<string, number>();
for (const [k, e] of by) byName.set(k.split(' ')[0], (byName.get(k.split(' ')[0]) ?? 0) + e.ms);
console.log(`${backend}, ${modelName} p=${p} batch ${B}: ${process.argv.includes('--forward') ? 'forward' : 'step'} ${wall.toFixed(0)} ms under the profiler, kernels ${total.toFixed(0)} ms, peak ${(info.peakBytes / 2 ** 20).toFixed(0)} MB`);
console.log('\nby kernel:');
for (const [k, ms] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${k.padEnd(24)} ${ms.toFixed(0).padStart(7)} ms  ${(100 * ms / total).toFixed(1)}%`);
console.log('\nby kernel and shape:');
for (const [k, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 45)) console.log(`  ${e.ms.toFixed(0).padStart(6)} ms  x${String(e.n).padEnd(4)} ${k.slice(0, 110)}`);
