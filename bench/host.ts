// The host side of a webgpu training step: the JavaScript and WebGPU-call time it costs the CPU,
// which bounds small models' steps on a real GPU (on the H200, 50-60 us per dispatch against about
// 10 us of GPU work for ViT-Ti/16 batch 8). Measurable without a GPU:
// - in Node on Dawn's null adapter, which makes and validates every call and computes nothing, so
//   a step's whole time is host time (ViT-Ti/16 at 224, batch 2: the null adapter holds about half a GiB);
// - in Chromium on SwiftShader, as the time to issue a step (WebGPU calls there only queue work for
//   the GPU process), on ViT-Ti/16's 12 layers at 32 px so that SwiftShader keeps up.
// Five ways, interleaved in blocks so that a change in the machine's speed falls on all of them: as
// the studio runs it (steps replayed from a captured one, src/core/train/replay.ts), every step through
// tfjs, with each op of a frozen block a node of the tape (src/core/vit/fused-block.ts
// off), without reusing bind groups and uniform buffers (src/core/vit/webgpu-reuse.ts), and on
// tfjs's plain ops instead of our fused kernels.
import * as tf from '@tensorflow/tfjs';
import { forwardOf, optimizerStep } from '../src/core/train/step';
import { Stepper } from '../src/core/train/replay';
import { vptDeep } from '../src/core/tuning/prompt';
import type { ViTConfig } from '../src/core/vit/config';
import { setFusedBlocks } from '../src/core/vit/fused-block';
import { setFusedKernels } from '../src/core/vit/webgpu-kernels';
import { reuseStats, setReuse } from '../src/core/vit/webgpu-reuse';
import { vptDeepCase } from './step';

export const HOST_MODES = ['as the studio runs it', 'no replay', 'blocks on the tape', 'no bind-group or uniform reuse', 'plain tfjs ops'] as const;
export type HostMode = typeof HOST_MODES[number];
/** Medians over the timed steps: `issueMs` until the step's last call returned, `stepMs` until its loss was read. */
export interface HostRow { mode: HostMode; issueMs: number; stepMs: number; dispatches: number; usPerDispatch: number }
export interface HostResult { where: string; model: string; imageSize: number; prompts: number; batch: number; steps: number; rows: HostRow[] }

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** VPT-deep p = 10 steps on the current (webgpu) backend, `rounds` x `block` per mode; the first round is not timed. */
export async function hostSteps(where: string, model: string, c: ViTConfig, batch: number, rounds: number, block = 5): Promise<HostResult> {
  const p = 10, S = c.imageSize, B = batch;
  const { model: vit, vars, opt, images, labels, dispose } = vptDeepCase(c, p, B);
  const train = forwardOf(vit, vptDeep, vars);
  // The studio's steps: replayed from a captured one once they settle (each block's first step captures
  // again, since the other modes' steps move the variables to other buffers).
  const stepper = new Stepper(train, vars, opt, B);
  const hostBatch = { inputs: images, rowShape: [S, S, 3], labels, weights: new Float32Array(B).fill(1), size: B };
  const backend = tf.backend();
  const calls = () => { const s = reuseStats(backend); return s ? s.created + s.reused : NaN; };
  const issue = new Map<HostMode, number[]>(HOST_MODES.map((m) => [m, []]));
  const total = new Map<HostMode, number[]>(HOST_MODES.map((m) => [m, []]));
  const dispatches = new Map<HostMode, number>();
  for (let round = 0; round < rounds; round++) {
    for (const mode of HOST_MODES) {
      const wasFused = setFusedKernels(mode !== 'plain tfjs ops'), wasReuse = setReuse(mode !== 'no bind-group or uniform reuse' && mode !== 'plain tfjs ops');
      const wasBlocks = setFusedBlocks(mode === 'as the studio runs it' || mode === 'no replay' || mode === 'no bind-group or uniform reuse');
      try {
        for (let i = 0; i < block; i++) {
          const n0 = calls(), t0 = performance.now();
          const r = mode === 'as the studio runs it' ? stepper.step(hostBatch, 0.01) : optimizerStep(train, vars, opt, hostBatch, 0.01, B);
          const t1 = performance.now();
          await r.loss.data();
          const t2 = performance.now();
          tf.dispose([r.loss, r.correct]);
          // Every dispatch makes one bind group, reused or not (the readback makes none); a replay makes none.
          dispatches.set(mode, mode === 'as the studio runs it' && stepper.stats.replayed ? stepper.stats.dispatches : calls() - n0);
          if (round > 0) { issue.get(mode)!.push(t1 - t0); total.get(mode)!.push(t2 - t0); }
        }
      } finally {
        setFusedKernels(wasFused);
        setReuse(wasReuse);
        setFusedBlocks(wasBlocks);
      }
    }
  }
  stepper.dispose();
  dispose();
  const rows = HOST_MODES.map((mode) => {
    const issueMs = median(issue.get(mode)!), stepMs = median(total.get(mode)!), n = dispatches.get(mode) ?? NaN;
    return { mode, issueMs, stepMs, dispatches: n, usPerDispatch: (1000 * issueMs) / n };
  });
  return { where, model, imageSize: S, prompts: p, batch: B, steps: (rounds - 1) * block, rows };
}

export function formatHost(r: HostResult): string {
  const lines = [`${r.where}: ${r.model} at ${r.imageSize} px, VPT-deep p=${r.prompts} batch ${r.batch}, median of ${r.steps} steps each`,
    'mode                              issue ms  step ms  dispatches  host us/dispatch'];
  for (const x of r.rows) lines.push(`${x.mode.padEnd(32)} ${x.issueMs.toFixed(1).padStart(9)} ${x.stepMs.toFixed(1).padStart(8)} ${String(x.dispatches).padStart(11)} ${x.usPerDispatch.toFixed(0).padStart(17)}`);
  return lines.join('\n');
}
