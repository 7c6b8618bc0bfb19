// The soak, for Node and the browser: 500 real training steps (the studio's
// train(), VPT-deep, SGD with momentum, a checkpoint written every epoch) on a
// small random ViT, with the engine's memory read at every epoch end. Flat
// tensor counts and bytes mean nothing leaks per step; tests/unit/soak.test.ts
// asserts the same in Node, this measures it on any backend (webgpu too).
import * as tf from '@tensorflow/tfjs';
import { writeCheckpoint } from '../src/core/train/checkpoint';
import { resolveTrainConfig } from '../src/core/train/config';
import { train } from '../src/core/train/loop';
import { Rng } from '../src/core/train/rng';
import { FrozenViT } from '../src/core/vit/model';
import { randomWeights } from './step';

export interface SoakSample { epoch: number; step: number; tensors: number; bytes: number; gpuBytes: number | null; seconds: number }
export interface SoakResult { backend: string; steps: number; samples: SoakSample[]; before: number; after: number; secondsPerStep: number }

export async function runSoak(steps = 500): Promise<SoakResult> {
  const config = { imageSize: 32, patchSize: 8, hiddenSize: 48, numLayers: 3, numHeads: 4, mlpDim: 96, layerNormEps: 1e-6 };
  const w = randomWeights(config, 3);
  const model = new FrozenViT(w);
  model.prepareBackward();
  const rng = new Rng(1);
  const ex = Array.from({ length: 8 }, (_, i) => ({ image: { width: 32, height: 32, data: Uint8Array.from({ length: 32 * 32 * 3 }, () => rng.uniform(0, 255)) }, label: i % 2, name: `x${i}` }));
  const before = tf.memory().numTensors;
  const samples: SoakSample[] = [];
  let step = 0;
  const t0 = performance.now();
  const pre = { size: 32, mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number], resize: 'direct' as const, source: 'default' as const };
  const cfg = resolveTrainConfig({ epochs: Math.ceil(steps / 4), batch: 2, lr: 0.1, protocol: { name: 'vpt-deep', n: 2 }, valSplit: 0, seed: 5, optimizer: 'sgd', promptDropout: 0.1 });
  await train(model, pre, { train: ex, val: ex.slice(0, 2), classes: ['a', 'b'] }, cfg, 'soak', {
    onStep: (s) => { step = s; },
    onEpoch: (e) => {
      const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
      samples.push({ epoch: e.epoch, step, tensors: m.numTensors, bytes: m.numBytes, gpuBytes: m.numBytesInGPU ?? null, seconds: (performance.now() - t0) / 1000 });
    },
    onCheckpoint: (c) => { writeCheckpoint(c); },
  });
  const after = tf.memory().numTensors;
  model.dispose();
  return { backend: tf.getBackend(), steps: step, samples, before, after, secondsPerStep: (performance.now() - t0) / 1000 / step };
}

/** One line: tensors and bytes at the second epoch and the last, and the spread in between. */
export function soakSummary(r: SoakResult): string {
  const s = r.samples.slice(1);
  const span = (f: (x: SoakSample) => number) => `${Math.min(...s.map(f))}..${Math.max(...s.map(f))}`;
  const gpu = s[0]?.gpuBytes === null ? '' : `, GPU bytes ${span((x) => x.gpuBytes!)}`;
  return `${r.backend}: ${r.steps} steps (${(1000 * r.secondsPerStep).toFixed(0)} ms each); after epoch 2..${r.samples.length}: tensors ${span((x) => x.tensors)}, bytes ${span((x) => x.bytes)}${gpu}; tensors before ${r.before}, after ${r.after}`;
}
