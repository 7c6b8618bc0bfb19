// `npm run bench [-- --json] [-- --cpu] [-- --no-browser]`: training-step speed of
// ViT-Ti/16 at 224, VPT-deep p=10, batch 8, on Node's backends and on the
// browser's webgpu through Playwright, each beside the backend's own matmul
// throughput. Prints ratios; asserts nothing.
import { cpus } from 'node:os';
import { useBackend } from '../src/cli/backend';
import { PRESETS } from '../src/core/vit/config';
import { runCase, type BenchResult } from './step';
import { runBrowser } from './browser';

const args = new Set(process.argv.slice(2));
const ti = PRESETS.find((p) => p.name === 'ViT-Ti/16')!.config;
const rows: (BenchResult & { backend: string; batch: number; note?: string })[] = [];

for (const backend of ['wasm', ...(args.has('--cpu') ? ['cpu' as const] : [])] as const) {
  await useBackend(backend);
  const r = await runCase({ config: ti, prompts: 10, batch: 8, steps: backend === 'cpu' ? 1 : 3 });
  rows.push({ backend, batch: 8, ...r });
  process.stderr.write(`${backend}: ${r.stepMs.toFixed(0)} ms/step\n`);
}
if (!args.has('--no-browser')) {
  // SwiftShader runs WebGPU on the CPU, very slowly: batch 2 keeps this to a few minutes.
  const batch = Number(process.env.BENCH_WEBGPU_BATCH ?? 2);
  try {
    const r = await runBrowser({ config: ti, prompts: 10, batch, steps: 1 });
    rows.push({ backend: `webgpu (${r.adapter})`, batch, ...r.result });
  } catch (e) {
    rows.push({ backend: 'webgpu', batch, forwardMs: NaN, stepMs: NaN, imagesPerSecond: NaN, stepGflops: NaN, matmulGflops: NaN, efficiency: NaN, peakBytes: null, note: `not run: ${(e as Error).message}` });
  }
}

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
if (args.has('--json')) {
  process.stdout.write(JSON.stringify({ machine, model: 'ViT-Ti/16 224, VPT-deep p=10', rows }, null, 2) + '\n');
} else {
  console.log(`ViT-Ti/16 at 224, VPT-deep p=10 (${machine})`);
  console.log('backend                          batch  fwd ms  step ms  img/s  step GFLOP  matmul GFLOP/s  step/matmul  peak MB');
  for (const r of rows) {
    console.log([r.backend.padEnd(32), String(r.batch).padStart(5), r.forwardMs.toFixed(0).padStart(7), r.stepMs.toFixed(0).padStart(8),
      r.imagesPerSecond.toFixed(2).padStart(6), r.stepGflops.toFixed(1).padStart(11), r.matmulGflops.toFixed(2).padStart(15),
      `${(100 * r.efficiency).toFixed(0)}%`.padStart(12), (r.peakBytes === null ? '-' : (r.peakBytes / 2 ** 20).toFixed(0)).padStart(8), r.note ?? ''].join(' '));
  }
}
