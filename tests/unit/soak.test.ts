/**
 * A soak: 500 training steps (VPT-deep, SGD with momentum, a checkpoint every
 * epoch) on the fixture backbone. The tensor count and the backend's bytes
 * must be flat from one epoch to the next and back where they started after
 * the run: a leak of one tensor per step would show as 500.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/cli/backend';
import type { RgbImage } from '../../src/core/image/resize';
import { writeCheckpoint } from '../../src/core/train/checkpoint';
import { resolveTrainConfig } from '../../src/core/train/config';
import type { Example } from '../../src/core/train/evaluate';
import { train } from '../../src/core/train/loop';
import { Rng } from '../../src/core/train/rng';
import { FrozenViT } from '../../src/core/vit/model';
import { fixtureBackbone } from './helpers';

function images(n: number): Example[] {
  const rng = new Rng(7);
  return Array.from({ length: n }, (_, i) => ({
    image: { width: 32, height: 32, data: Uint8Array.from({ length: 32 * 32 * 3 }, () => rng.uniform(0, 255)) } as RgbImage,
    label: i % 2, name: `x${i}`,
  }));
}

beforeAll(async () => { await useBackend('wasm'); });

describe('soak', () => {
  it('500 steps: tensor count and bytes flat across epochs, all released after', async () => {
    const b = await fixtureBackbone('npz');
    const empty = tf.memory().numTensors;
    const model = new FrozenViT(b.weights);
    model.prepareBackward(); // the backward's transposed weight copies belong to the model
    const pre = { ...b.preprocessing, resize: 'direct' as const };
    const start = tf.memory();
    const perEpoch: { tensors: number; bytes: number }[] = [];
    let steps = 0, checkpointBytes = 0;
    const cfg = resolveTrainConfig({ epochs: 125, batch: 2, lr: 0.1, protocol: { name: 'vpt-deep', n: 2 }, valSplit: 0, seed: 5, optimizer: 'sgd', promptDropout: 0.1 });
    const r = await train(model, pre, { train: images(8), val: images(2), classes: ['a', 'b'] }, cfg, b.fingerprint, {
      onStep: (s) => { steps = s; },
      onEpoch: () => { const m = tf.memory(); perEpoch.push({ tensors: m.numTensors, bytes: m.numBytes }); },
      onCheckpoint: (c) => { checkpointBytes = writeCheckpoint(c).byteLength; },
    });
    expect(steps).toBe(500);
    expect(r.history).toHaveLength(125);
    expect(r.diverged).toBeNull();
    expect(checkpointBytes).toBeGreaterThan(0);
    // Epoch 1 creates the momentum slots; from then on nothing may grow.
    const settled = perEpoch.slice(1);
    expect(new Set(settled.map((m) => m.tensors)).size, JSON.stringify(perEpoch.slice(0, 4))).toBe(1);
    expect(new Set(settled.map((m) => m.bytes)).size).toBe(1);
    expect(tf.memory().numTensors).toBe(start.numTensors);
    expect(tf.memory().numBytes).toBe(start.numBytes);
    model.dispose();
    expect(tf.memory().numTensors).toBe(empty);
    console.log(`soak: 500 steps, ${settled[0].tensors} tensors / ${(settled[0].bytes / 1e6).toFixed(2)} MB at every epoch end (start ${start.numTensors})`);
  }, 300_000);
});
