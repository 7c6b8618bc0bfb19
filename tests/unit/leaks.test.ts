/** Every public tensor operation leaves tf.memory().numTensors where it found it. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Optimizer, DEFAULT_OPTIMIZER } from '../../src/core/train/optimizer';
import { evaluateState } from '../../src/core/train/loop';
import { inferTensor } from '../../src/core/train/evaluate';
import { Rng } from '../../src/core/train/rng';
import { fromVptState, vptDeep } from '../../src/core/tuning/prompt';
import { disposeVars, dropoutMasks, fromVars, head, initVpt, toVars, vptFeatures } from '../../src/core/tuning/vpt';
import { FrozenViT } from '../../src/core/vit/model';
import { fixtureBackbone, useCpu } from './helpers';
import type { Backbone } from '../../src/core/vit/load';

let b: Backbone;
beforeAll(async () => { await useCpu(); b = await fixtureBackbone('npz'); });

const leakFree = async (f: () => Promise<unknown> | unknown) => {
  const before = tf.memory().numTensors;
  await f();
  expect(tf.memory().numTensors).toBe(before);
};

describe('no tensor leaks', () => {
  it('model construction, backward preparation and disposal', () => leakFree(() => {
    const m = new FrozenViT(b.weights);
    m.prepareBackward();
    m.dispose();
  }));

  it('features, VPT features with dropout masks, head, inferTensor, evaluateState', () => leakFree(async () => {
    const m = new FrozenViT(b.weights);
    const s = initVpt(m.config, 'deep', 3, 4, new Rng(1));
    const v = toVars(s);
    const x = tf.zeros([2, 32, 32, 3]) as tf.Tensor4D;
    const f = m.features(x);
    const masks = dropoutMasks(new Rng(2), 3, 2, 3, 48, 0.5);
    const y = tf.tidy(() => head(vptFeatures(m, v, x, masks), v.headW, v.headB));
    await fromVars(v, s);
    const tuned = { proto: vptDeep, vars: new Map([['prompts', v.prompts], ['head.weight', v.headW], ['head.bias', v.headB]]) };
    await inferTensor(m, tuned, new Float32Array(2 * 32 * 32 * 3), 2);
    await evaluateState(m, fromVptState(s), [{ image: { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) }, label: 1, name: 'z' }], ['a', 'b', 'c', 'd'], { ...b.preprocessing, resize: 'direct' }, 2);
    tf.dispose([x, f, y, ...masks]);
    disposeVars(v);
    m.dispose();
  }));

  it('optimizer state export and import', () => leakFree(async () => {
    const v = toVars(initVpt(b.weights.config, 'shallow', 2, 3, new Rng(1)));
    for (const name of ['sgd', 'adamw'] as const) {
      const opt = new Optimizer({ ...DEFAULT_OPTIMIZER, name }, [{ name: 'p', variable: v.prompts, weightDecay: 0.1 }]);
      const g = tf.onesLike(v.prompts);
      opt.apply(new Map([['p', g]]), 0.1);
      opt.apply(new Map([['p', g]]), 0.1);
      const st = await opt.exportState();
      const o2 = new Optimizer({ ...DEFAULT_OPTIMIZER, name }, [{ name: 'p', variable: v.prompts, weightDecay: 0.1 }]);
      o2.importState(st);
      expect((await o2.exportState()).slots.p.length).toBe(name === 'sgd' ? 1 : 2);
      tf.dispose(g); opt.dispose(); o2.dispose();
    }
    disposeVars(v);
  }));
});
