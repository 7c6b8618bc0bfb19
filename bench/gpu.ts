// `npm run bench -- --gpu [--json] [--quick | --attention | --matmul]`: VPT-deep on a real GPU from Node, through tfjs's webgpu
// backend on Dawn (the optional `webgpu` package; src/cli/webgpu.ts), the same shaders the studio runs
// in Chrome. ViT-Ti/16 and ViT-B/16 at 224 over prompts and batch sizes, each step beside the same
// card's tfjs matmul throughput, the first step (shader compilation), peak tensor memory and the GPU
// memory tfjs's buffer pool holds; a by-kernel profile (timestamp queries); and the same steps in
// PyTorch on CUDA (float32, TF32 off) when a python3 with torch sees a GPU. BENCH_OUT=FILE also
// writes the JSON after every row, so a run cut short keeps what it measured. `--attention`: only the fused
// attention: each product alone against tfjs's batched matmul (bench/attention-gpu.ts), with the tiles'
// loads direct and staged (setAttentionLoads), then steps as the studio runs them (staged loads), with direct loads and
// with attention on tfjs's ops, alternated, on four configurations, and the profiles (a few minutes).
// `--replay`: only steps replayed from a captured one (src/core/train/replay.ts) against steps through
// tfjs, alternated, three rounds on ViT-Ti/16 batch 8 and 64 and ViT-B/16 batch 8 (and ViT-Ti/16 batch 8
// with AdamW and prompt dropout 0.1), then the host table.
// `--matmul`: only the linear layers' products, our tiled kernel (src/core/vit/webgpu-matmul.ts, both
// tiles) against tfjs's on the shapes of a step, then whole steps with it and without, alternated.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, useBackend } from '../src/cli/backend';
import { choosePasses } from '../src/core/train/memory';
import { PRESETS, type ViTConfig } from '../src/core/vit/config';
import { setFusedAttention } from '../src/core/vit/attention';
import { setFusedBlocks } from '../src/core/vit/fused-block';
import { setAttentionLoads } from '../src/core/vit/webgpu-attention';
import { fusedKernels, runFused, setFusedKernels } from '../src/core/vit/webgpu-kernels';
import { setReuse } from '../src/core/vit/webgpu-reuse';
import { setReplay } from '../src/core/train/replay';
import { MATMUL, matmulTiling, setMatmulTiling } from '../src/core/vit/webgpu-matmul';
import { attentionKernels, formatAttentionKernels, type AttentionKernelRow } from './attention-gpu';
import { formatHost, hostSteps, type HostResult } from './host';
import { formatProfile, profileStep, type StepProfile } from './profile-step';
import { matmulGflops, runCase, useBestReference, type BenchCase, type BenchResult } from './step';

interface GpuRow extends BenchResult {
  model: string; prompts: number; batch: number; recompute: boolean; note?: string; gpuPoolBytes?: number;
  torch?: { stepMs: number; forwardMs: number; matmulGflops: number; peakBytes?: number } | null;
}

type Mode = 'fused' | 'plain' | 'tfjs attention' | 'no reuse' | 'tfjs matmul' | 'blocks on the tape' | 'no replay' | 'direct loads';
const MODE_NOTES: Record<Exclude<Mode, 'fused'>, string> = {
  plain: 'plain tfjs ops, no fused kernels', 'tfjs attention': 'fused kernels on the tape, attention on tfjs ops', 'no reuse': 'no bind-group or uniform reuse',
  'tfjs matmul': 'fused kernels, linear layers on tfjs matmul', 'blocks on the tape': 'fused kernels, each op of a block a tape node',
  'no replay': 'every step through tfjs, none replayed', 'direct loads': 'attention\'s tiles loaded element by element, not staged through registers',
};
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const attentionOnly = args.has('--attention');
const matmulOnly = args.has('--matmul');
const replayOnly = args.has('--replay');
const preset = (n: string) => PRESETS.find((p) => p.name === n)!.config;
const log = (s: string) => process.stderr.write(s + '\n');

export async function runGpuBench(): Promise<void> {
  const adapter = await useBackend('webgpu');
  const backend = describeBackend();
  const dev = (tf.backend() as unknown as { device: { limits: Record<string, number>; features: Set<string> } }).device;
  log(`${backend}: maxBufferSize ${(dev.limits.maxBufferSize / 2 ** 30).toFixed(1)} GiB, maxStorageBufferBindingSize ${(dev.limits.maxStorageBufferBindingSize / 2 ** 30).toFixed(1)} GiB, timestamp-query ${dev.features.has('timestamp-query')}`);
  const rows: GpuRow[] = [];
  const profiles: { title: string; profile: StepProfile }[] = [];
  const squares: { n: number; gflops: number }[] = [];
  let host: HostResult | null = null;
  const attention: AttentionKernelRow[] = [];
  const matmuls: { label: string; M: number; K: number; N: number; tfjs: number; tile64: number; tile128: number; auto: number | null }[] = [];
  const save = () => { if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify({ backend, adapter, squares, matmuls, attention, rows, host, profiles }, null, 2)); };
  const torchPython = ['python3', '/usr/bin/python3'].find((x) => spawnSync(x, ['-c', 'import torch; assert torch.cuda.is_available()']).status === 0);

  // The card's tfjs matmul on large squares: the ceiling the FC1-shaped products are read against.
  for (const n of quick ? [256] : [2048, 4096]) {
    squares.push({ n, gflops: await matmulGflops(n, n, n, 15) });
    log(`matmul ${n}^3: ${squares.at(-1)!.gflops.toFixed(0)} GFLOP/s`);
  }
  save();

  // 'plain': the same step on tfjs's own ops instead of the fused WGSL kernels (src/core/vit/webgpu-kernels.ts);
  // 'tfjs attention': the fused kernels but attention on tfjs ops (src/core/vit/webgpu-attention.ts off);
  // 'no reuse': a fresh bind group and uniform buffer for every dispatch, as tfjs does (src/core/vit/webgpu-reuse.ts off).
  const run = async (model: string, c: ViTConfig, bc: Omit<BenchCase, 'config'>, note?: string, mode: Mode = 'fused') => {
    const plain = mode === 'plain';
    if (mode !== 'fused') note = note ? `${note}; ${MODE_NOTES[mode]}` : MODE_NOTES[mode];
    const was = setFusedKernels(!plain), wasAttention = setFusedAttention(mode !== 'tfjs attention'), wasReuse = setReuse(mode !== 'no reuse');
    const wasTiling = setMatmulTiling(mode === 'tfjs matmul' ? 'off' : 'auto'), wasBlocks = setFusedBlocks(mode !== 'blocks on the tape');
    const wasReplay = setReplay(mode !== 'no replay'), wasLoads = mode === 'direct loads' ? setAttentionLoads('direct') : undefined;
    try {
      const r = await runCase({ config: c, ...bc });
      const pool = (tf.memory() as { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU;
      let torch: GpuRow['torch'] = null;
      if (torchPython && !attentionOnly && !matmulOnly && !replayOnly && !bc.embedded && !bc.recompute && !bc.once && mode === 'fused') {
        const py = spawnSync(torchPython, ['bench/torch_step.py', String(bc.prompts), String(bc.batch), '1', 'cuda', model === 'ViT-B/16' ? 'b' : 'ti'], { encoding: 'utf8', timeout: 300_000 });
        if (py.status === 0) torch = JSON.parse(py.stdout.trim().split('\n').at(-1)!);
        else log(`PyTorch: ${(py.stderr || py.error?.message || '').trim().split('\n').at(-1)}`);
      }
      rows.push({ model, prompts: bc.prompts, batch: bc.batch, recompute: !!bc.recompute, ...r, gpuPoolBytes: pool, torch, ...(note ? { note } : bc.embedded ? { note: 'from cached patch embeddings' } : {}) });
      log(`${model} p=${bc.prompts} b=${bc.batch}${bc.recompute ? ' recompute' : ''}${bc.embedded ? ' embedded' : ''}${mode === 'fused' ? '' : ` ${mode}`}: step ${r.stepMs.toFixed(1)} ms (first ${r.firstStepMs?.toFixed(0) ?? '-'} ms), forward ${r.forwardMs.toFixed(1)} ms, ${(100 * r.efficiency).toFixed(0)}% of ${r.matmulGflops.toFixed(0)} GFLOP/s, peak ${((r.peakBytes ?? 0) / 2 ** 20).toFixed(0)} MB, ${r.replayed ? 'replayed' : 'through tfjs'}${torch ? `; PyTorch ${torch.stepMs.toFixed(1)} ms (ours ${(r.stepMs / torch.stepMs).toFixed(2)}x)` : ''}`);
    } catch (e) {
      log(`${model} p=${bc.prompts} b=${bc.batch}: failed: ${(e as Error).message.split('\n')[0]}`);
      rows.push({ model, prompts: bc.prompts, batch: bc.batch, recompute: !!bc.recompute, forwardMs: NaN, stepMs: NaN, imagesPerSecond: NaN, stepGflops: NaN, matmulGflops: NaN, efficiency: NaN, peakBytes: null, note: `failed: ${(e as Error).message.split('\n')[0]}` });
    } finally {
      setFusedKernels(was);
      setFusedAttention(wasAttention);
      setReuse(wasReuse);
      setMatmulTiling(wasTiling);
      setFusedBlocks(wasBlocks);
      setReplay(wasReplay);
      if (wasLoads) setAttentionLoads(wasLoads);
    }
    save();
  };

  const ti = preset('ViT-Ti/16'), vitB = preset('ViT-B/16'), steps = attentionOnly || matmulOnly || replayOnly ? 10 : 5;
  // A card idles at a low clock: the first row of a run would otherwise be timed while it ramps up.
  if (!quick) { await run('ViT-Ti/16', ti, { prompts: 10, batch: 8, steps }, 'warm-up, not for comparison'); rows.pop(); }
  if (quick) {
    await run('ViT-Ti/16', ti, { prompts: 10, batch: 2, steps: 1 });
    await run('ViT-Ti/16', ti, { prompts: 10, batch: 2, steps: 1 }, undefined, 'plain');
    await run('ViT-Ti/16', ti, { prompts: 10, batch: 2, steps: 1 }, undefined, 'tfjs attention');
    await run('ViT-Ti/16', ti, { prompts: 10, batch: 2, steps: 1 }, undefined, 'no reuse');
    await run('ViT-Ti/16', ti, { prompts: 10, batch: 2, steps: 1 }, undefined, 'no replay');
  } else if (matmulOnly) {
    // [M, K, N] of the linear layers: ViT-B/16 batch 8 and 32, ViT-Ti/16 batch 8 and 64 (T = 207), forward
    // (qkv, out, fc1, fc2) and the backward's dx = dy W^T (the same with K and N swapped).
    const shapes: [string, number, number, number][] = [];
    for (const [m, d, mlp, batches] of [['ViT-B/16', 768, 3072, [8, 32]], ['ViT-Ti/16', 192, 768, [8, 64]]] as [string, number, number, number[]][]) {
      for (const B of batches) for (const [K, N] of [[d, 3 * d], [d, d], [d, mlp], [mlp, d], [3 * d, d]]) shapes.push([`${m} b${B}`, B * 207, K, N]);
    }
    const ours = (tile: 64 | 128) => (a: tf.Tensor2D, b: tf.Tensor2D) => runFused(MATMUL, { a, b }, { tile });
    for (const [label, M, K, N] of shapes) {
      const r = { label, M, K, N, tfjs: await matmulGflops(M, K, N, 7), tile64: await matmulGflops(M, K, N, 7, ours(64)), tile128: await matmulGflops(M, K, N, 7, ours(128)), auto: matmulTiling(M, K, N) };
      matmuls.push(r);
      log(`matmul ${label} [${M}, ${K}] x [${K}, ${N}]: tfjs ${r.tfjs.toFixed(0)}, tile 64 ${r.tile64.toFixed(0)}, tile 128 ${r.tile128.toFixed(0)} GFLOP/s (auto: ${r.auto ?? 'tfjs'})`);
      save();
    }
    for (let round = 0; round < 2; round++) {
      for (const [model, c, batch] of [['ViT-Ti/16', ti, 8], ['ViT-Ti/16', ti, 64], ['ViT-B/16', vitB, 8], ['ViT-B/16', vitB, 32]] as [string, ViTConfig, number][]) {
        for (const mode of ['fused', 'tfjs matmul'] as const) await run(model, c, { prompts: 10, batch, steps }, undefined, mode);
      }
    }
  } else if (replayOnly) {
    // Steps replayed from a captured one against every step through tfjs, alternated.
    for (let round = 0; round < 3; round++) {
      for (const [model, c, batch] of [['ViT-Ti/16', ti, 8], ['ViT-Ti/16', ti, 64], ['ViT-B/16', vitB, 8]] as [string, ViTConfig, number][]) {
        for (const mode of ['fused', 'no replay'] as const) await run(model, c, { prompts: 10, batch, steps }, undefined, mode);
      }
      // AdamW with prompt dropout 0.1: their per-step numbers and masks are step inputs of the replay.
      for (const mode of ['fused', 'no replay'] as const) await run('ViT-Ti/16', ti, { prompts: 10, batch: 8, steps, adamwDropout: 0.1 }, 'AdamW, prompt dropout 0.1', mode);
    }
  } else if (attentionOnly) {
    // Each product alone first (clean GFLOP/s per kernel), then whole steps.
    for (const [B, H] of [[32, 12], [8, 12], [64, 3], [8, 3]]) {
      try {
        attention.push(...await attentionKernels(B, H, 207, 64));
      } catch (e) {
        log(`attention kernels [${B}, ${H}]: failed: ${(e as Error).message.split('\n')[0]}`);
      }
      save();
    }
    log(formatAttentionKernels(attention));
    for (let round = 0; round < 2; round++) {
      for (const [model, c, batch] of [['ViT-Ti/16', ti, 8], ['ViT-Ti/16', ti, 64], ['ViT-B/16', vitB, 8], ['ViT-B/16', vitB, 32]] as [string, ViTConfig, number][]) {
        for (const mode of ['fused', 'direct loads', 'tfjs attention'] as const) await run(model, c, { prompts: 10, batch, steps }, undefined, mode);
      }
    }
  } else {
    // What is least often measured first, so a run cut short by its time limit still has it: the small
    // step against its modes, the 2 GiB plan's pass, then ViT-B/16 against its modes, then the sweeps.
    for (const mode of ['fused', 'no replay', 'blocks on the tape', 'no reuse', 'tfjs attention', 'plain'] as const) await run('ViT-Ti/16', ti, { prompts: 10, batch: 8, steps }, undefined, mode);
    // The plan the CLI and the studio make on this engine (the fused kernels' smaller footprint included).
    const plan = choosePasses(vitB, 10, 64, undefined, undefined, fusedKernels() ? 'fused' : 'batched');
    await run('ViT-B/16', vitB, { prompts: 10, batch: plan.microBatch, steps: 1, recompute: plan.recompute, once: true }, `one pass of the 2 GiB batch-64 plan (${Math.ceil(64 / plan.microBatch)} passes)`);
    for (const batch of [8, 32]) for (const mode of ['fused', 'no replay', 'blocks on the tape', 'tfjs attention', 'plain'] as const) await run('ViT-B/16', vitB, { prompts: 10, batch, steps }, undefined, mode);
    for (const p of [1, 50]) await run('ViT-Ti/16', ti, { prompts: p, batch: 8, steps });
    for (const batch of [32, 64, 128]) await run('ViT-Ti/16', ti, { prompts: 10, batch, steps });
    for (const mode of ['no replay', 'plain', 'tfjs attention', 'direct loads'] as const) await run('ViT-Ti/16', ti, { prompts: 10, batch: 64, steps }, undefined, mode);
    await run('ViT-Ti/16', ti, { prompts: 10, batch: 64, steps, recompute: true });
    await run('ViT-Ti/16', ti, { prompts: 10, batch: 64, steps, embedded: true });
    await run('ViT-B/16', vitB, { prompts: 10, batch: 64, steps });
    await run('ViT-B/16', vitB, { prompts: 10, batch: 64, steps, recompute: true });
  }
  // Host time per dispatch on this machine (the time to issue a step: the GPU runs behind it), reuse on and off.
  if (!attentionOnly && !matmulOnly) try {
    host = await hostSteps(backend, 'ViT-Ti/16', ti, quick ? 2 : 8, quick ? 2 : 4);
    log(formatHost(host));
  } catch (e) {
    log(`host steps: failed: ${(e as Error).message.split('\n')[0]}`);
  }
  // By-kernel profiles; with --attention each also with direct loads and with attention on tfjs's ops, to read the products side by side.
  for (const [model, c, b] of (quick ? [['ViT-Ti/16', ti, 2]] : replayOnly ? [] : [['ViT-Ti/16', ti, 64], ['ViT-B/16', vitB, 32]]) as [string, ViTConfig, number][]) {
    for (const form of attentionOnly ? ['staged', 'direct', 'tfjs'] as const : ['staged'] as const) {
      const was = setFusedAttention(form !== 'tfjs'), wasLoads = setAttentionLoads(form === 'staged' ? 'staged' : 'direct');
      try {
        const title = `${backend}, ${model} p=10 batch ${b}${{ staged: '', direct: ', attention\'s loads direct', tfjs: ', attention on tfjs ops' }[form]}: step`;
        profiles.push({ title, profile: await profileStep(c, 10, b) });
        log(formatProfile(title, profiles.at(-1)!.profile, 25, 30));
      } catch (e) {
        log(`profile ${model}: failed: ${(e as Error).message.split('\n')[0]}`);
      } finally {
        setFusedAttention(was);
        setAttentionLoads(wasLoads);
      }
      save();
    }
  }

  // One matmul reference per FC1 shape (model, prompts, batch): a GPU's throughput grows with the rows.
  useBestReference(rows, (a, b) => a.model === b.model && a.prompts === b.prompts && a.batch === b.batch);
  save();
  if (args.has('--json')) { process.stdout.write(JSON.stringify({ backend, adapter, squares, matmuls, attention, rows, host, profiles }, null, 2) + '\n'); return; }
  if (attention.length) console.log(`\nAttention's products one at a time on ${backend}\n${formatAttentionKernels(attention)}`);
  if (matmuls.length) {
    console.log(`\nLinear layers' products on ${backend}, GFLOP/s (20 in a row, one readback)`);
    console.log('shape                  M      K      N     tfjs  tile 64  tile 128  auto');
    for (const m of matmuls) console.log([m.label.padEnd(16), ...[m.M, m.K, m.N].map((x) => String(x).padStart(6)), ...[m.tfjs, m.tile64, m.tile128].map((x) => x.toFixed(0).padStart(8)), String(m.auto ?? 'tfjs').padStart(5)].join(' '));
  }
  console.log(`\nVPT-deep training step on ${backend} (Node, Dawn); tfjs matmul ${squares.map((s) => `${s.n}^3 ${s.gflops.toFixed(0)} GFLOP/s`).join(', ')}`);
  console.log('model      p  batch  recomp  replay  fwd ms  step ms  first ms   img/s  matmul GFLOP/s  step/matmul  peak MB  pool MB  PyTorch step ms  ours/PyTorch');
  for (const r of rows) {
    console.log([r.model.padEnd(10), String(r.prompts).padStart(2), String(r.batch).padStart(6), (r.recompute ? 'yes' : 'no').padStart(7), (r.replayed ? 'yes' : 'no').padStart(7), r.forwardMs.toFixed(1).padStart(7), r.stepMs.toFixed(1).padStart(8),
      (r.firstStepMs?.toFixed(0) ?? '-').padStart(9), r.imagesPerSecond.toFixed(1).padStart(7), r.matmulGflops.toFixed(0).padStart(15), `${(100 * r.efficiency).toFixed(0)}%`.padStart(12),
      (r.peakBytes === null ? '-' : (r.peakBytes / 2 ** 20).toFixed(0)).padStart(8), (r.gpuPoolBytes === undefined ? '-' : (r.gpuPoolBytes / 2 ** 20).toFixed(0)).padStart(8),
      (r.torch ? r.torch.stepMs.toFixed(1) : '-').padStart(16), (r.torch ? `${(r.stepMs / r.torch.stepMs).toFixed(2)}x` : '-').padStart(13), r.note ?? ''].join(' '));
  }
  if (host) console.log(`\n${formatHost(host)}`);
}
