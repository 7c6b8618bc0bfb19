// `npm run bench -- --simd`: what wasm's SIMD kernels (src/core/vit/wasm-simd.ts) buy, in one process: the
// same ViT-Ti/16 VPT-deep p = 10 step alternated between tfjs's ops (the kernels off), the kernels on the
// calling thread only, and the kernels with their helper threads, with each mode's time in the kernels that
// differ. Run it again with VPT_WASM_FMA=0 in the environment for the build without relaxed SIMD.
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/cli/backend';
import { spawnHelper, wasmThreads } from '../src/cli/wasm-threads';
import { forwardOf, optimizerStep } from '../src/core/train/step';
import { vptDeep } from '../src/core/tuning/prompt';
import { PRESETS } from '../src/core/vit/config';
import { setWasmSimd, simdSummary } from '../src/core/vit/wasm-simd';
import { setSimdHelpers } from '../src/core/vit/wasm-simd-pool';
import { vptDeepCase } from './step';

/** The kernels whose time each mode reports: the products, attention, and GELU. */
const WATCHED = ['_FusedMatMul', 'BatchMatMul', 'VptSimdLinear', 'VptSimdAttention', 'VptSimdAttentionGrad', 'VptGelu', 'VptGeluGrad'];

export interface SimdRow { mode: string; stepMs: number[]; medianMs: number; kernelMs: Record<string, number>; peakBytes: number }

export async function simdSteps(batch = 8, rounds = 7): Promise<{ summary: string; rows: SimdRow[] }> {
  await useBackend('wasm');
  const helpers = wasmThreads() - 1;
  const summary = simdSummary() ?? 'SIMD kernels not available here';
  const c = PRESETS.find((p) => p.name === 'ViT-Ti/16')!.config;
  // Each mode builds its own model: a linear layer keeps its weights in the layout of the path it was made on.
  const modes: [string, () => void][] = [
    ['tfjs ops', () => { setWasmSimd(false); }],
    ['SIMD kernels, 1 thread', () => { setWasmSimd(true); setSimdHelpers(0, null); }],
    [`SIMD kernels + ${helpers} helper${helpers === 1 ? '' : 's'}`, () => { setWasmSimd(true); setSimdHelpers(helpers, spawnHelper); }],
  ];
  const acc: Record<string, number> = {};
  const restore: (() => void)[] = [];
  for (const name of WATCHED) {
    const k = tf.getKernel(name, 'wasm') as unknown as { kernelFunc: (a: unknown) => unknown } | undefined;
    if (!k) continue;
    const f = k.kernelFunc;
    k.kernelFunc = (a: unknown) => { const t0 = performance.now(); try { return f(a); } finally { acc[name] = (acc[name] ?? 0) + performance.now() - t0; } };
    restore.push(() => { k.kernelFunc = f; });
  }
  const cases = modes.map(([mode, set]) => {
    set();
    const bc = vptDeepCase(c, 10, batch);
    const train = forwardOf(bc.model, vptDeep, bc.vars, {});
    const data = { inputs: bc.images, rowShape: [c.imageSize, c.imageSize, 3], labels: bc.labels, weights: new Float32Array(batch).fill(1), size: batch };
    const step = async () => { const r = optimizerStep(train, bc.vars, bc.opt, data, 0.01, batch); await r.loss.data(); tf.dispose([r.loss, r.correct]); };
    return { mode, set, step, dispose: bc.dispose, ms: [] as number[], kernels: {} as Record<string, number> };
  });
  try {
    // Alternated, the first round a warm-up: this machine's speed drifts by tens of percent over minutes.
    for (let r = 0; r < rounds; r++) {
      for (const m of cases) {
        m.set();
        for (const k of Object.keys(acc)) acc[k] = 0;
        const t0 = performance.now();
        await m.step();
        if (r === 0) continue;
        m.ms.push(performance.now() - t0);
        for (const [k, v] of Object.entries(acc)) m.kernels[k] = (m.kernels[k] ?? 0) + v / (rounds - 1);
      }
    }
    const rows: SimdRow[] = [];
    for (const m of cases) {
      m.set();
      // Above what is resident (every mode's model is): the step's own peak.
      const resident = tf.memory().numBytes;
      const peak = (await tf.profile(m.step)).peakBytes - resident;
      const sorted = [...m.ms].sort((a, b) => a - b);
      rows.push({ mode: m.mode, stepMs: m.ms, medianMs: sorted[sorted.length >> 1], kernelMs: m.kernels, peakBytes: peak });
    }
    return { summary, rows };
  } finally {
    for (const r of restore) r();
    for (const m of cases) m.dispose();
    setWasmSimd(true);
    setSimdHelpers(helpers, spawnHelper);
  }
}

export function formatSimd(r: { summary: string; rows: SimdRow[] }): string {
  const lines = [`wasm (${wasmThreads()} threads), ${r.summary}; ViT-Ti/16 VPT-deep p = 10, batch 8, steps alternated:`];
  for (const x of r.rows) {
    const k = Object.entries(x.kernelMs).filter(([, v]) => v > 0.5).map(([n, v]) => `${n} ${v.toFixed(0)}`).join(', ');
    lines.push(`  ${x.mode.padEnd(26)} median ${x.medianMs.toFixed(0).padStart(5)} ms (${x.stepMs.map((v) => v.toFixed(0)).join(' ')}), step's peak ${(x.peakBytes / 2 ** 20).toFixed(0)} MB; ms a step in: ${k}`);
  }
  return lines.join('\n');
}
