// `npm run bench [-- --json] [-- --cpu] [-- --no-browser] [-- --quick] [-- --soak] [-- --gpu] [-- --host] [-- --simd]`: training-step speed
// and memory of VPT-deep on Node's backends (wasm on every core and on one; ViT-Ti/16 at 224, p = 1, 10, 50;
// with and without activation recomputation), ViT-B/16 memory accounting, the
// browser's webgpu and webgl through Playwright, decode-and-resize throughput, and the same
// step in PyTorch when python3-torch is installed. Each speed is printed beside
// the backend's own matmul throughput. Prints ratios; asserts nothing.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { describeBackend, useBackend } from '../src/cli/backend';
import { activationBytesPerImage, attentionForm, choosePasses, DEFAULT_STEP_BUDGET } from '../src/core/train/memory';
import { simdSummary, wasmSimdKernels } from '../src/core/vit/wasm-simd';
import { PRESETS } from '../src/core/vit/config';
import { runBrowser, soakBrowser } from './browser';
import { runSoak, soakSummary } from './soak';
import { benchDecode } from './decode';
import { forwardFlops, runCase, useBestReference, type BenchCase, type BenchResult } from './step';

const args = new Set(process.argv.slice(2));
const log = (s: string) => process.stderr.write(s + '\n');

// `--gpu`: only a real GPU, on Node's webgpu backend (Dawn; bench/gpu.ts).
if (args.has('--gpu')) {
  const { runGpuBench } = await import('./gpu');
  await runGpuBench();
  process.exit(0);
}

// `--host`: only the host side of a webgpu step, in Node on Dawn's null adapter and in Chromium (bench/host.ts).
if (args.has('--host')) {
  const { hostSteps, formatHost } = await import('./host');
  const { hostBrowser } = await import('./browser');
  const rounds = args.has('--quick') ? 3 : 6;
  process.env.VPT_DAWN_FLAGS = 'backend=null';
  await useBackend('webgpu');
  const results = [await hostSteps('Node, Dawn\'s null adapter', 'ViT-Ti/16', PRESETS.find((p) => p.name === 'ViT-Ti/16')!.config, 2, rounds)];
  log(formatHost(results[0]));
  if (!args.has('--no-browser')) { results.push(await hostBrowser(args.has('--quick') ? 2 : 3, 3)); log(formatHost(results[1])); }
  if (args.has('--json')) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else console.log(results.map(formatHost).join('\n\n'));
  process.exit(0);
}

// `--simd`: only wasm's SIMD kernels against tfjs's ops, alternated in one process (bench/simd.ts).
if (args.has('--simd')) {
  const { simdSteps, formatSimd } = await import('./simd');
  const r = await simdSteps();
  if (args.has('--json')) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else console.log(formatSimd(r));
  process.exit(0);
}

// `--soak`: only the 500-step soak, on wasm and in the browser on webgpu.
if (args.has('--soak')) {
  await useBackend('wasm');
  const results = [await runSoak()];
  if (!args.has('--no-browser')) results.push(await soakBrowser('webgpu'));
  if (args.has('--json')) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else for (const r of results) console.log(soakSummary(r));
  process.exit(0);
}
const quick = args.has('--quick');
const ti = PRESETS.find((p) => p.name === 'ViT-Ti/16')!.config;
const vitB = PRESETS.find((p) => p.name === 'ViT-B/16')!.config;
type Row = BenchResult & { backend: string; model: string; prompts: number; batch: number; recompute: boolean; note?: string };
const rows: Row[] = [];
/** What wasm's own kernels ran with in Node (wasm-simd.ts), for the table's heading and the JSON. */
let wasmKernels: string | null = null;

async function run(model: string, bc: BenchCase) {
  const r = await runCase(bc);
  const backend = describeBackend();
  if (backend.startsWith('wasm (') && backend !== 'wasm (1 thread)') wasmKernels = simdSummary() ?? 'tfjs ops (no SIMD kernels)';
  rows.push({ backend, model, prompts: bc.prompts, batch: bc.batch, recompute: !!bc.recompute, ...r, ...(bc.embedded ? { note: 'from cached patch embeddings' } : {}) });
  log(`${backend} ${model} p=${bc.prompts} batch ${bc.batch}${bc.recompute ? ' recompute' : ''}${bc.embedded ? ' embedded' : ''}: ${r.stepMs.toFixed(0)} ms/step, peak ${((r.peakBytes ?? 0) / 2 ** 20).toFixed(0)} MB`);
}

for (const backend of ['wasm', ...(args.has('--cpu') ? ['cpu' as const] : [])] as const) {
  await useBackend(backend);
  const steps = backend === 'cpu' ? 1 : 3;
  for (const p of quick || backend === 'cpu' ? [10] : [1, 10, 50]) await run('ViT-Ti/16', { config: ti, prompts: p, batch: 8, steps });
  // Other batch sizes for p = 10 (batch 16 without recomputation needs ~5 GB, past wasm's 4 GB heap).
  if (!quick && backend === 'wasm') for (const batch of [2, 4]) await run('ViT-Ti/16', { config: ti, prompts: 10, batch, steps });
  if (backend === 'wasm') {
    await run('ViT-Ti/16', { config: ti, prompts: 10, batch: 8, steps, recompute: true });
    await run('ViT-Ti/16', { config: ti, prompts: 10, batch: 8, steps, embedded: true });
    // ViT-B/16 for the memory accounting: one small pass, plain and recomputed.
    if (!quick) for (const recompute of [false, true]) await run('ViT-B/16', { config: vitB, prompts: 10, batch: 2, steps: 1, recompute });
    // The same p = 10 step on one core: what the threads buy (tfjs's own build, as stock tfjs runs in Node).
    if (cpus().length > 1) {
      await useBackend('wasm', 1);
      await run('ViT-Ti/16', { config: ti, prompts: 10, batch: 8, steps });
      await useBackend('wasm');
    }
  }
}

if (!args.has('--no-browser')) {
  // SwiftShader runs WebGPU and WebGL on the CPU, very slowly: batch 2 keeps this to a few minutes.
  const batch = Number(process.env.BENCH_BROWSER_BATCH ?? 2);
  // wasm in the page is what the studio runs on a machine without a usable GPU (on every core where the
  // page is cross-origin isolated, as the dev server makes it): the Node p = 10 batch-8 step, in Chromium.
  for (const backend of ['wasm', 'webgpu', 'webgl'] as const) {
    const b = backend === 'wasm' ? 8 : batch;
    try {
      const r = await runBrowser(backend, { config: ti, prompts: 10, batch: b, steps: backend === 'wasm' ? 3 : 1 });
      rows.push({ backend: `${backend} (${r.adapter})`, model: 'ViT-Ti/16', prompts: 10, batch: b, recompute: false, ...r.result });
      log(`${backend}: ${r.result.stepMs.toFixed(0)} ms/step`);
    } catch (e) {
      rows.push({ backend, model: 'ViT-Ti/16', prompts: 10, batch: b, recompute: false, forwardMs: NaN, stepMs: NaN, imagesPerSecond: NaN, stepGflops: NaN, matmulGflops: NaN, efficiency: NaN, peakBytes: null, note: `not run: ${(e as Error).message}` });
    }
  }
}

// ViT-B/16 VPT-deep p=10 batch 64 within a 2 GiB budget for the whole step: the plan the studio
// makes, one of its passes measured (tf.profile peak, backbone included), and the per-image
// activation growth from the batch-2 rows.
// wasm's SIMD kernels keep less than the batched ops: the planner counts the form wasm runs here.
await useBackend('wasm');
const form = attentionForm(vitB, 10, 'vpt-deep', { backend: 'wasm', simd: wasmSimdKernels() });
const plan = choosePasses(vitB, 10, 64, undefined, DEFAULT_STEP_BUDGET, form);
let planPass: Row | null = null;
if (!quick && !args.has('--no-plan')) {
  await useBackend('wasm');
  await run('ViT-B/16', { config: vitB, prompts: 10, batch: plan.microBatch, steps: 1, recompute: plan.recompute, once: true });
  planPass = rows.at(-1)!;
  planPass.note = `one pass of the batch-64 plan (${Math.ceil(64 / plan.microBatch)} passes)`;
}
const b2 = rows.filter((r) => r.model === 'ViT-B/16' && r.batch === 2);
const backboneBytes = 4 * 86_000_000 * 2; // weights + pre-transposed copies for backward
const perImage = (re: boolean) => { const r = b2.find((x) => x.recompute === re); return r?.peakBytes ? (r.peakBytes - backboneBytes) / 2 : null; };
const vitb64 = {
  plan, estimatePerImageBytes: { plain: activationBytesPerImage(vitB, 10, false, form), recompute: activationBytesPerImage(vitB, 10, true, form) },
  measuredPerImageBytes: { plain: perImage(false), recompute: perImage(true) },
  peakPerPassBytes: perImage(plan.recompute) === null ? null : plan.microBatch * perImage(plan.recompute)!,
  measuredStepPeakBytes: planPass?.peakBytes ?? null,
};

const decode = await benchDecode(quick ? 4 : 12);
log(`decode + resize: ${decode.imagesPerSecond.toFixed(1)} images/s on one thread, ${decode.poolImagesPerSecond.toFixed(1)} on ${decode.threads} (${decode.width}x${decode.height} JPEG)`);

type TorchRun = { torch: string; threads: number; forwardMs: number; stepMs: number; matmulGflops: number };
// PyTorch with every core and with one torch thread. Here one thread was the faster (2 torch
// threads contend with OpenBLAS's own), so the baseline is whichever is faster, and both are printed.
const torchRuns: TorchRun[] = [];
let torchNote = '';
// Debian's python3-torch lives in /usr/bin/python3, which a pyenv or venv python3 on PATH may hide.
const pythons = ['python3', '/usr/bin/python3'].filter((x) => spawnSync(x, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);
for (const threads of [cpus().length, 1].filter((t, i, a) => a.indexOf(t) === i)) {
  const py = spawnSync(pythons[0] ?? 'python3', ['bench/torch_step.py', '10', '8', String(threads)], { encoding: 'utf8', timeout: 600_000 });
  if (py.status === 0) torchRuns.push(JSON.parse(py.stdout.trim().split('\n').at(-1)!));
  else { torchNote = `PyTorch baseline skipped: ${(py.stderr || py.error?.message || 'python3 failed').trim().split('\n').at(-1)} (install python3-torch)`; break; }
}
const torch = torchRuns.length ? torchRuns.reduce((a, b) => (b.stepMs < a.stepMs ? b : a)) : null;
// The same step as PyTorch's: from images, batch 8, no recomputation; the faster of wasm's thread counts.
// The goal is Node's fastest backend: the browser's rows are reported beside it, not as it.
const ours = rows.filter((r) => r.backend.startsWith('wasm') && !r.backend.includes('Chromium') && r.model === 'ViT-Ti/16' && r.prompts === 10 && r.batch === 8 && !r.recompute && !r.note)
  .reduce<Row | undefined>((a, b) => (a === undefined || b.stepMs < a.stepMs ? b : a), undefined);
const tf10 = forwardFlops(ti, 10);
const ratio = torch && ours ? {
  ours: ours.backend,
  stepOursOverTorch: ours.stepMs / torch.stepMs, forwardOursOverTorch: ours.forwardMs / torch.forwardMs,
  // The same FLOP count as ours: PyTorch's step against PyTorch's own matmul.
  torchEfficiency: (8 * (2 * tf10.total - tf10.patch)) / 1e9 / (torch.stepMs / 1000) / torch.matmulGflops,
} : null;

// One matmul reference per backend and model (a CPU's throughput hardly depends on the batch).
useBestReference(rows, (a, b) => a.backend === b.backend && a.model === b.model);

const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
if (args.has('--json')) {
  process.stdout.write(JSON.stringify({ machine, wasmKernels, rows, vitb64, decode, torch, torchRuns, torchNote: torchNote || undefined, ratio }, null, 2) + '\n');
} else {
  console.log(`VPT-deep training step (${machine}; wasm's own kernels: ${wasmKernels ?? '-'})`);
  console.log('backend                          model      p  batch  recomp  fwd ms  step ms  img/s  step GFLOP  matmul GFLOP/s  step/matmul  peak MB');
  for (const r of rows) {
    console.log([r.backend.padEnd(32), r.model.padEnd(10), String(r.prompts).padStart(2), String(r.batch).padStart(6), (r.recompute ? 'yes' : 'no').padStart(7), r.forwardMs.toFixed(0).padStart(7), r.stepMs.toFixed(0).padStart(8),
      r.imagesPerSecond.toFixed(2).padStart(6), r.stepGflops.toFixed(1).padStart(11), r.matmulGflops.toFixed(2).padStart(15),
      `${(100 * r.efficiency).toFixed(0)}%`.padStart(12), (r.peakBytes === null ? '-' : (r.peakBytes / 2 ** 20).toFixed(0)).padStart(8), r.note ?? ''].join(' '));
  }
  const mb = (v: number | null) => (v === null ? '-' : `${(v / 2 ** 20).toFixed(0)} MB`);
  console.log(`\nViT-B/16 VPT-deep p=10 batch 64, 2 GiB for the whole step: passes of ${plan.microBatch} images${plan.recompute ? ' with recomputation' : ''}; activations per image estimated ${mb(vitb64.estimatePerImageBytes.plain)} plain / ${mb(vitb64.estimatePerImageBytes.recompute)} recomputed, measured ${mb(vitb64.measuredPerImageBytes.plain)} / ${mb(vitb64.measuredPerImageBytes.recompute)}; one pass measured: peak ${mb(vitb64.measuredStepPeakBytes)} with the backbone (${vitb64.measuredStepPeakBytes === null ? '-' : (vitb64.measuredStepPeakBytes / 2 ** 31).toFixed(2)} of 2 GiB)`);
  console.log(`decode + resize to 224: ${decode.imagesPerSecond.toFixed(1)} images/s on one thread, ${decode.poolImagesPerSecond.toFixed(1)} on ${decode.threads} decode threads (${decode.width}x${decode.height} JPEG, ${(decode.meanBytes / 1024).toFixed(0)} KB each)`);
  for (const t of torchRuns) console.log(`PyTorch ${t.torch} (${t.threads} thread${t.threads > 1 ? 's' : ''}): step ${t.stepMs.toFixed(0)} ms, forward ${t.forwardMs.toFixed(0)} ms, matmul ${t.matmulGflops.toFixed(1)} GFLOP/s${t === torch ? ' (the faster: the baseline)' : ''}`);
  if (torch && ratio) console.log(`PyTorch's step reaches ${(100 * ratio.torchEfficiency).toFixed(0)}% of its matmul; ours (${ours!.backend}) / PyTorch: step ${ratio.stepOursOverTorch.toFixed(2)}x, forward ${ratio.forwardOursOverTorch.toFixed(2)}x`);
  else console.log(torchNote);
}
