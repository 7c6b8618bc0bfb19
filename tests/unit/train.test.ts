/** The training loop on the fixture backbone with a synthetic separable task (CPU backend). */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepare } from '../../src/core/image/preprocess';
import type { RgbImage } from '../../src/core/image/resize';
import { readCheckpoint, writeCheckpoint, type Checkpoint } from '../../src/core/train/checkpoint';
import { resolveTrainConfig } from '../../src/core/train/config';
import { inferRows, type Example } from '../../src/core/train/evaluate';
import { evaluateState, train as trainVpt } from '../../src/core/train/loop';
import { Rng } from '../../src/core/train/rng';
import { vptGradients, type HostBatch } from '../../src/core/train/step';
import { disposeVars, initVpt, toVars } from '../../src/core/tuning/vpt';
import type { TunedState } from '../../src/core/tuning/types';
import type { Preprocessing } from '../../src/core/vit/config';
import type { Backbone } from '../../src/core/vit/load';
import { FrozenViT } from '../../src/core/vit/model';
import { fixtureBackbone, useCpu } from './helpers';

/** Class 0: bright left half; class 1: bright right half; plus noise. */
function synthetic(n: number, seed: number): Example[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const data = new Uint8Array(32 * 32 * 3);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) {
      const bright = (x < 16) === (label === 0);
      data[(y * 32 + x) * 3 + c] = Math.max(0, Math.min(255, (bright ? 180 : 60) + rng.normal() * 40));
    }
    return { image: { width: 32, height: 32, data } as RgbImage, label, name: `s${i}` };
  });
}

const P = (s: TunedState) => s.params.get('prompts')!.data;
const W = (s: TunedState) => s.params.get('head.weight')!.data;

let b: Backbone;
let model: FrozenViT;
let pre: Preprocessing;
const classes = ['left', 'right'];
const data = () => ({ train: synthetic(24, 1), val: synthetic(8, 2), classes });

beforeAll(async () => {
  await useCpu();
  b = await fixtureBackbone('npz');
  model = new FrozenViT(b.weights);
  model.prepareBackward();
  pre = { ...b.preprocessing, resize: 'direct' };
});

describe('training', () => {
  it('prompt gradients agree with finite differences', async () => {
    const s = initVpt(b.weights.config, 'deep', 2, 2, new Rng(5));
    const ex = synthetic(4, 9);
    const images = new Float32Array(4 * 32 * 32 * 3);
    const { fillBatch } = await import('../../src/core/train/evaluate');
    images.set(fillBatch(ex.map((e) => e.image), pre, 4));
    const batch: HostBatch = { inputs: images, rowShape: [32, 32, 3], labels: Int32Array.from(ex.map((e) => e.label)), weights: new Float32Array(4).fill(1), size: 4 };
    const opts = { microBatch: 4, promptDropout: 0, rng: new Rng(0) };
    const vars = toVars(s);
    const { loss, correct, grads } = vptGradients(model, vars, batch, opts);
    const g = (await grads.get('prompts')!.data()) as Float32Array;
    tf.dispose([loss, correct, ...grads.values()]);
    disposeVars(vars);
    const lossAt = async (prompts: Float32Array) => {
      const v = toVars({ ...s, prompts });
      const r = vptGradients(model, v, batch, opts);
      const l = (await r.loss.data())[0];
      tf.dispose([r.loss, r.correct, ...r.grads.values()]);
      disposeVars(v);
      return l;
    };
    const gmax = Math.max(...g.map(Math.abs));
    // The largest few coordinates in each prompt layer (layer 0 and a deep layer).
    const idx = [...g.keys()].sort((a, z) => Math.abs(g[z]) - Math.abs(g[a])).slice(0, 4).concat([96 + 5, 2 * 96 + 40]);
    const eps = 1e-2;
    for (const i of idx) {
      const plus = Float32Array.from(s.prompts); plus[i] += eps;
      const minus = Float32Array.from(s.prompts); minus[i] -= eps;
      const fd = ((await lossAt(plus)) - (await lossAt(minus))) / (2 * eps);
      expect(Math.abs(fd - g[i])).toBeLessThan(2e-2 * gmax + 1e-4);
    }
  });

  it('lowers the loss, leaks no tensors, leaves the backbone bit-identical, and is deterministic', async () => {
    const x = tf.tensor4d(new Float32Array(2 * 32 * 32 * 3).map((_, i) => Math.sin(i)), [2, 32, 32, 3]);
    const f0 = await model.features(x).data();
    const weightsBefore = b.weights.blocks.map((blk) => Float32Array.from(blk.qkvW));
    const before = tf.memory().numTensors;
    const cfg = resolveTrainConfig({ epochs: 6, batch: 8, lr: 0.25, protocol: { name: 'vpt-deep', n: 2 }, valSplit: 0, seed: 3 });
    const r1 = await trainVpt(model, pre, data(), cfg, b.fingerprint);
    expect(tf.memory().numTensors).toBe(before);
    const r2 = await trainVpt(model, pre, data(), cfg, b.fingerprint);
    expect(Array.from(P(r2.state))).toEqual(Array.from(P(r1.state)));
    expect(r1.history.length).toBe(6);
    // The fixture backbone is random (its features barely depend on the image), so
    // only the fitted loss is checked here; tests/unit/learning.test.ts checks accuracy on real data.
    expect(r1.history[5].loss).toBeLessThan(r1.history[0].loss);
    const f1 = model.features(x);
    expect(Array.from(await f1.data())).toEqual(Array.from(f0)); // bit-identical forward
    b.weights.blocks.forEach((blk, i) => expect(Buffer.from(blk.qkvW.buffer).equals(Buffer.from(weightsBefore[i].buffer))).toBe(true));
    tf.dispose([x, f1]);
  });

  it('resuming from a checkpoint gives the same result as an uninterrupted run', async () => {
    const cfg = resolveTrainConfig({ epochs: 3, batch: 8, lr: 10, protocol: { name: 'vpt-deep', n: 2 }, seed: 11, valSplit: 0, optimizer: 'sgd', promptDropout: 0.1, augment: true });
    const cps: Checkpoint[] = [];
    const full = await trainVpt(model, pre, data(), cfg, b.fingerprint, { onCheckpoint: (c) => { cps.push(c); } });
    const saved = readCheckpoint(writeCheckpoint(cps[0]), 'ck.safetensors');
    expect(saved.epoch).toBe(1);
    const resumed = await trainVpt(model, pre, data(), cfg, b.fingerprint, {}, saved);
    expect(Array.from(P(resumed.state))).toEqual(Array.from(P(full.state)));
    expect(Array.from(W(resumed.state))).toEqual(Array.from(W(full.state)));
    expect(resumed.history.map((h) => h.loss)).toEqual(full.history.map((h) => h.loss));
  });

  it('AdamW and VPT-shallow train too; the best validation epoch is kept', async () => {
    const cfg = resolveTrainConfig({ epochs: 4, batch: 8, protocol: { name: 'vpt-shallow', n: 3 }, optimizer: 'adamw', lr: 0.5, seed: 1 });
    const r = await trainVpt(model, pre, data(), cfg, b.fingerprint);
    const bestAcc = Math.max(...r.history.map((h) => h.valAccuracy!));
    expect(r.bestValAccuracy).toBe(bestAcc);
    expect(r.history[r.bestEpoch - 1].valAccuracy).toBe(bestAcc);
    expect(P(r.state).length).toBe(3 * 48);
    const ev = await evaluateState(model, r.state, data().val, classes, pre, 8);
    expect(ev.accuracy).toBe(bestAcc);
  });

  it('stops on request and refuses NaN losses with advice', async () => {
    let calls = 0;
    const r = await trainVpt(model, pre, data(), resolveTrainConfig({ epochs: 5, batch: 8, protocol: { name: 'vpt-deep', n: 1 }, valSplit: 0 }), b.fingerprint, { shouldStop: () => ++calls >= 2 });
    expect(r.stopped).toBe(true);
    expect(r.history.length).toBe(1);
    await expect(trainVpt(model, pre, data(), resolveTrainConfig({ epochs: 2, batch: 8, protocol: { name: 'vpt-deep', n: 1 }, lr: 1e30, valSplit: 0 }), b.fingerprint)).rejects.toThrow(/lower learning rate/);
  });

  it('a run that turns NaN mid-way stops, keeps the last good epoch, writes no bad checkpoint and suggests a rate', async () => {
    // From epoch 3 on, a zero std makes the inputs Inf: the loss turns NaN at that epoch's first step.
    // (Images are prepared every step for this: cached patch embeddings would never see the change.)
    const p = { ...pre, std: [...pre.std] as [number, number, number] };
    const cps: Checkpoint[] = [];
    const before = tf.memory().numTensors;
    const cfg = resolveTrainConfig({ epochs: 5, batch: 8, lr: 0.5, protocol: { name: 'vpt-deep', n: 2 }, seed: 4, valSplit: 0, optimizer: 'sgd', cacheFeatures: false });
    const r = await trainVpt(model, p, data(), cfg, b.fingerprint, {
      onEpoch: (e) => { if (e.epoch === 2) p.std[0] = 0; },
      onCheckpoint: (c) => { cps.push(c); },
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(cps.map((c) => c.epoch)).toEqual([1, 2]);
    // The kept state is the last good checkpoint's best epoch (validation picks it, as in any run).
    const kept = cps[1].best!;
    expect(r.diverged).toBe(`loss became NaN at step 7 (epoch 3): rolled back to epoch ${kept.epoch}, the best before it; try a lower learning rate, e.g. 0.05 (--lr; now 0.5)`);
    expect(r.bestEpoch).toBe(kept.epoch);
    expect(Array.from(P(r.state))).toEqual(Array.from(P(kept.state)));
    expect(P(r.state).every(Number.isFinite)).toBe(true);
    // Diverging before any epoch finished leaves nothing to keep: an error with the same advice.
    await expect(trainVpt(model, { ...pre, std: [0, 1, 1] }, data(), cfg, b.fingerprint)).rejects.toThrow(/^training: loss became NaN at step 1 \(epoch 1\): nothing to roll back to .* try a lower learning rate, e.g. 0\.05/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('inference pads the last batch and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const imgs = synthetic(5, 4).map((e) => prepare(e.image as RgbImage, pre));
    const plain = await inferRows(model, null, imgs, pre, 4);
    const one = await inferRows(model, null, imgs.slice(4), pre, 4);
    expect(plain.cols).toBe(48);
    expect(Array.from(plain.values.subarray(4 * 48))).toEqual(Array.from(one.values));
    expect(tf.memory().numTensors).toBe(before);
  });
});
