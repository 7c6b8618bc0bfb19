// Where one VPT-deep training step (or inference pass) spends its time, by kernel (tf.profile;
// on webgpu each kernel's GPU time from timestamp queries), for bench/profile.ts and bench/gpu.ts.
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_OPTIMIZER, Optimizer } from '../src/core/train/optimizer';
import { Rng } from '../src/core/train/rng';
import { forwardOf, optimizerStep, paramGroups } from '../src/core/train/step';
import { disposeVars, initState, makeVars } from '../src/core/tuning/params';
import { vptDeep } from '../src/core/tuning/prompt';
import type { ViTConfig } from '../src/core/vit/config';
import { FrozenViT } from '../src/core/vit/model';
import { randomWeights } from './step';

export interface StepProfile {
  wallMs: number; kernelMs: number; peakBytes: number; kernels: number;
  byName: { name: string; ms: number; n: number }[];
  byShape: { key: string; ms: number; n: number }[];
}

export async function profileStep(c: ViTConfig, p: number, B: number, o: { recompute?: boolean; forward?: boolean } = {}): Promise<StepProfile> {
  const S = c.imageSize;
  const w = randomWeights(c);
  const model = new FrozenViT(w);
  model.prepareBackward();
  const vars = makeVars(vptDeep, initState(vptDeep, w, { name: 'vpt-deep', n: p }, 10, new Rng(2)), c);
  const opt = new Optimizer(DEFAULT_OPTIMIZER, paramGroups(vars, 1e-4));
  const fwd = forwardOf(model, vptDeep, vars, { recompute: o.recompute });
  const batch = { inputs: Float32Array.from({ length: B * S * S * 3 }, (_, i) => Math.sin(i)), rowShape: [S, S, 3], labels: Int32Array.from({ length: B }, (_, i) => i % 10), weights: new Float32Array(B).fill(1), size: B };
  const x = tf.tensor4d(batch.inputs, [B, S, S, 3]);
  const step = o.forward
    ? async () => { const y = tf.tidy(() => fwd(x)); await y.data(); y.dispose(); }
    : async () => { const r = optimizerStep(fwd, vars, opt, batch, 0.01, B); await r.loss.data(); tf.dispose([r.loss, r.correct]); };
  await step(); // warm-up: shaders, buffer pools
  const t0 = performance.now();
  const info = await tf.profile(step);
  const wallMs = performance.now() - t0;
  const shapes = new Map<string, { ms: number; n: number }>();
  const names = new Map<string, { ms: number; n: number }>();
  for (const k of info.kernels) {
    const t = await k.kernelTimeMs;
    const ms = typeof t === 'number' ? t : 0;
    for (const [m, key] of [[shapes, `${k.name} ${JSON.stringify(k.inputShapes)}`], [names, k.name]] as const) {
      const e = m.get(key) ?? { ms: 0, n: 0 };
      m.set(key, { ms: e.ms + ms, n: e.n + 1 });
    }
  }
  tf.dispose(x); disposeVars(vars); opt.dispose(); model.dispose();
  const sorted = <K extends string>(m: Map<string, { ms: number; n: number }>, k: K) =>
    [...m].sort((a, b) => b[1].ms - a[1].ms).map(([key, e]) => ({ [k]: key, ...e }) as { ms: number; n: number } & Record<K, string>);
  return {
    wallMs, peakBytes: info.peakBytes, kernels: info.kernels.length,
    kernelMs: [...names.values()].reduce((s, e) => s + e.ms, 0),
    byName: sorted(names, 'name'), byShape: sorted(shapes, 'key'),
  };
}

/** The profile as text: totals, then the largest kernels by name and by name and input shapes. */
export function formatProfile(title: string, r: StepProfile, names = 30, shapes = 45): string {
  const lines = [`${title}: ${r.wallMs.toFixed(0)} ms under the profiler, ${r.kernels} kernels taking ${r.kernelMs.toFixed(0)} ms, peak ${(r.peakBytes / 2 ** 20).toFixed(0)} MB`, '', 'by kernel:'];
  for (const e of r.byName.slice(0, names)) lines.push(`  ${e.name.padEnd(24)} ${e.ms.toFixed(1).padStart(8)} ms  x${String(e.n).padEnd(5)} ${(100 * e.ms / r.kernelMs).toFixed(1)}%`);
  lines.push('', 'by kernel and shape:');
  for (const e of r.byShape.slice(0, shapes)) lines.push(`  ${e.ms.toFixed(1).padStart(8)} ms  x${String(e.n).padEnd(5)} ${e.key.slice(0, 110)}`);
  return lines.join('\n');
}
