/** Gradients, the 3-step SGD trajectory and the schedule against the official code. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { nchwToNhwc } from '../../src/core/image/layout';
import { lrMultiplier, warmupCosine } from '../../src/core/train/schedule';
import { Optimizer, DEFAULT_OPTIMIZER } from '../../src/core/train/optimizer';
import { Rng } from '../../src/core/train/rng';
import { vptGradients, vptParamGroups, vptStep, type HostBatch } from '../../src/core/train/step';
import { disposeVars, toVars, type Variant, type VptState } from '../../src/core/tuning/vpt';
import { FrozenViT } from '../../src/core/vit/model';
import { caseTensor, fixtureBackbone, readCase, relErr, useCpu } from './helpers';

const c = readCase();
const get = (n: string) => caseTensor(c, n).data as Float32Array;

function batchFromCase(): HostBatch {
  const t = caseTensor(c, 'input.images_nchw');
  const [B, C, H, W] = t.shape;
  return { inputs: nchwToNhwc(t.data as Float32Array, B, C, H, W), rowShape: [H, W, C], labels: Int32Array.from(caseTensor(c, 'input.labels').data), weights: new Float32Array(B).fill(1), size: B };
}

function state(variant: Variant): VptState {
  return {
    variant, numPrompts: 4, numClasses: 5, hiddenSize: 48,
    prompts: Float32Array.from(variant === 'deep' ? get('deep.prompts') : get('shallow.prompt')),
    headW: Float32Array.from(get('head.weight')), headB: Float32Array.from(get('head.bias')),
  };
}

describe.each(['safetensors', 'npz'] as const)('gradients from backbone.%s', (kind) => {
  let model: FrozenViT;
  const batch = batchFromCase();
  beforeAll(async () => { await useCpu(); model = new FrozenViT((await fixtureBackbone(kind)).weights); model.prepareBackward(); });

  it.each(['shallow', 'deep'] as const)('%s: loss and gradients of prompts and head', async (variant) => {
    const vars = toVars(state(variant));
    const before = tf.memory().numTensors;
    const { loss, correct, grads } = vptGradients(model, vars, batch, { microBatch: 3, promptDropout: 0, rng: new Rng(0) });
    correct.dispose();
    expect(relErr(await loss.data(), get(`${variant}.loss`))).toBeLessThan(1e-4);
    const gp = variant === 'deep' ? 'deep.grad.prompts' : 'shallow.grad.prompt';
    expect(relErr(await grads.get('prompts')!.data(), get(gp))).toBeLessThan(1e-3);
    expect(relErr(await grads.get('head.weight')!.data(), get(`${variant}.grad.head.weight`))).toBeLessThan(1e-3);
    expect(relErr(await grads.get('head.bias')!.data(), get(`${variant}.grad.head.bias`))).toBeLessThan(1e-3);
    loss.dispose(); grads.forEach((g) => g.dispose());
    expect(tf.memory().numTensors).toBe(before);
    disposeVars(vars);
  });

  it('gradient accumulation over micro-batches equals the whole batch', async () => {
    const vars = toVars(state('deep'));
    const whole = vptGradients(model, vars, batch, { microBatch: 3, promptDropout: 0, rng: new Rng(0) });
    const parts = vptGradients(model, vars, batch, { microBatch: 1, promptDropout: 0, rng: new Rng(0) });
    expect(relErr(await parts.loss.data(), await whole.loss.data())).toBeLessThan(1e-6);
    for (const k of whole.grads.keys()) expect(relErr(await parts.grads.get(k)!.data(), await whole.grads.get(k)!.data())).toBeLessThan(1e-5);
    [whole, parts].forEach((r) => { r.loss.dispose(); r.correct.dispose(); r.grads.forEach((g) => g.dispose()); });
    disposeVars(vars);
  });

  it('3 SGD steps (lr 0.1, momentum 0.9, wd 1e-3, no decay on head bias) follow the official trajectory', async () => {
    const vars = toVars(state('deep'));
    const opt = new Optimizer({ ...DEFAULT_OPTIMIZER, name: 'sgd', momentum: 0.9 }, vptParamGroups(vars, 1e-3));
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const l = vptStep(model, vars, opt, batch, 0.1, { microBatch: 3, promptDropout: 0, rng: new Rng(0) });
      losses.push((await l.loss.data())[0]);
      l.loss.dispose(); l.correct.dispose();
    }
    expect(relErr(losses, get('deep.sgd.losses'))).toBeLessThan(1e-3);
    expect(relErr(await vars.prompts.data(), get('deep.sgd.prompts'))).toBeLessThan(1e-3);
    expect(relErr(await vars.headW.data(), get('deep.sgd.head.weight'))).toBeLessThan(1e-3);
    expect(relErr(await vars.headB.data(), get('deep.sgd.head.bias'))).toBeLessThan(1e-3);
    opt.dispose(); disposeVars(vars);
  });
});

describe('schedule', () => {
  it('WarmupCosineSchedule(10, 100) matches the official multipliers', () => {
    const ref = get('schedule.warmup10_total100.lr');
    const ours = Array.from({ length: 100 }, (_, s) => warmupCosine(s, 10, 100));
    expect(relErr(ours, ref)).toBeLessThan(1e-6);
  });
  it('per-epoch mode runs the first epoch at lr 0 and steps once per epoch', () => {
    expect(lrMultiplier('epoch', 0, 5, 2, 10)).toBe(0);
    expect(lrMultiplier('epoch', 4, 5, 2, 10)).toBe(0);
    expect(lrMultiplier('epoch', 5, 5, 2, 10)).toBe(0.5);
    expect(lrMultiplier('step', 5, 5, 2, 10)).toBe(0.5);
    expect(lrMultiplier('step', 6, 5, 2, 10)).toBeCloseTo(0.6);
  });
});
