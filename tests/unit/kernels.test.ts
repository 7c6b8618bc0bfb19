/**
 * The hand-written pieces of the fast path against the plain ones: wasm's
 * replacement Slice and Identity kernels, and the written-out gradients of GELU and the
 * frozen LayerNorm, on wasm and cpu. Values and gradients to 1e-5, no leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/cli/backend';
import { frozenLayerNorm, layerNorm, gelu } from '../../src/core/vit/ops';
import { relErr } from './helpers';

afterAll(async () => { await useBackend('wasm'); });

/** The tape's GELU, differentiated through erf: the reference for the written-out one. */
const tapeGelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));

async function valueAndGrad(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, r: tf.Tensor): Promise<Float32Array[]> {
  const y = tf.tidy(() => f(x));
  const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), r)))(x);
  const out = [await y.data(), await g.data()] as Float32Array[];
  tf.dispose([y, g]);
  return out;
}

describe.each(['wasm', 'cpu'] as const)('on %s', (backend) => {
  it('GELU with the written-out gradient equals the tape\'s', async () => {
    await useBackend(backend);
    const x = tf.mul(tf.randomNormal([37, 50], 0, 1, 'float32', 7), 3); // well into both tails
    const r = tf.randomNormal([37, 50], 0, 1, 'float32', 8);
    const before = tf.memory().numTensors;
    const [want, got] = [await valueAndGrad(tapeGelu, x, r), await valueAndGrad(gelu, x, r)];
    expect(tf.memory().numTensors).toBe(before);
    expect(relErr(got[0], want[0])).toBeLessThan(1e-5);
    expect(relErr(got[1], want[1])).toBeLessThan(1e-5);
    tf.dispose([x, r]);
  });

  it('the frozen LayerNorm equals the differentiable one in value and input gradient', async () => {
    await useBackend(backend);
    const x = tf.add(tf.mul(tf.randomNormal([3, 11, 24], 0, 1, 'float32', 1), 4), 2) as tf.Tensor3D;
    const g = tf.randomNormal([24], 1, 0.3, 'float32', 2) as tf.Tensor1D, b = tf.randomNormal([24], 0, 1, 'float32', 3) as tf.Tensor1D;
    const r = tf.randomNormal([3, 11, 24], 0, 1, 'float32', 4);
    const before = tf.memory().numTensors;
    const want = await valueAndGrad((a) => layerNorm(a, g, b, 1e-6), x, r);
    const got = await valueAndGrad((a) => frozenLayerNorm(a, g, b, 1e-6), x, r);
    expect(tf.memory().numTensors).toBe(before);
    expect(relErr(got[0], want[0])).toBeLessThan(1e-5);
    expect(relErr(got[1], want[1])).toBeLessThan(1e-5);
    expect(Math.max(...want[1].map(Math.abs))).toBeGreaterThan(1e-3);
    tf.dispose([x, g, b, r]);
  });
});

describe('GELU\'s gradient on wasm', () => {
  it('takes exp(-x^2/2) as elu + 1 (XNNPACK\'s kernel), within 1e-7 of the Exp kernel over the whole range', async () => {
    await useBackend('wasm');
    // a = -x^2 / 2 <= 0 always (tf.linspace drifts past 0 in float32, so the points are made here).
    const a = tf.tensor1d(Float32Array.from({ length: 200_001 }, (_, i) => -60 + (60 * i) / 200_000));
    const [viaElu, viaExp] = tf.tidy(() => [tf.add(tf.elu(a), 1), tf.exp(a)]);
    const [e, x] = [await viaElu.data(), await viaExp.data()];
    let worst = 0;
    for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(e[i] - x[i]));
    expect(worst).toBeLessThan(1e-7);
    expect(x[x.length - 1]).toBe(1); // the range reaches a = 0
    tf.dispose([a, viaElu, viaExp]);
  });
});

describe('wasm Slice (reads its input in place)', () => {
  it('gives the same elements as the cpu kernel: contiguous, strided, every rank, int32, empty', async () => {
    const cases: [number[], number[], number[]][] = [
      [[24, 7, 5], [3, 0, 0], [1, 7, 5]],          // one contiguous block (a head)
      [[10, 12], [2, 3], [5, 4]],                   // 2-D strided (a head's columns)
      [[4, 5, 6], [1, 2, 3], [2, 3, 2]],            // 3-D strided
      [[2, 3, 4, 5], [0, 1, 0, 2], [2, 2, 4, 3]],   // 4-D strided
      [[2, 2, 3, 2, 3], [1, 0, 1, 0, 1], [1, 2, 2, 2, 2]], // rank 5
      [[9], [4], [3]],
      [[4, 5], [1, 0], [0, 5]],                     // empty
    ];
    const run = async (backend: 'wasm' | 'cpu') => {
      await useBackend(backend);
      const out: number[][] = [];
      for (const [shape, begin, size] of cases) {
        for (const dtype of ['float32', 'int32'] as const) {
          const n = shape.reduce((a, s) => a * s, 1);
          const x = tf.tensor(Array.from({ length: n }, (_, i) => i * 1.5 - 7), shape, dtype);
          const y = tf.slice(x, begin, size);
          expect(y.shape).toEqual(size);
          out.push(Array.from(await y.data()));
          tf.dispose([x, y]);
        }
      }
      return out;
    };
    const cpu = await run('cpu');
    expect(tf.getKernel('Slice', 'wasm')?.kernelFunc.name).toBe('sliceInPlace');
    const before = tf.memory().numTensors;
    const wasm = await run('wasm');
    expect(tf.memory().numTensors).toBe(before);
    expect(wasm).toEqual(cpu);
    expect(cpu[0].length).toBe(35);
  });
});

describe('wasm SplitV (pieces taken with the in-place slice)', () => {
  it('gives the cpu kernel\'s pieces on every axis, sizes given or even, -1 inferred, and the concat gradient', async () => {
    const x = () => tf.tensor(Array.from({ length: 2 * 9 * 4 }, (_, i) => i * 0.5 - 3), [2, 9, 4]);
    const run = async (backend: 'wasm' | 'cpu') => {
      await useBackend(backend);
      const a = x();
      const before = tf.memory().numTensors;
      const pieces = [tf.split(a, [1, 5, 3], 1), tf.split(a, 2, 0), tf.split(a, [1, -1], 2), tf.split(a, 3, 1)];
      const out = await Promise.all(pieces.flat().map(async (t) => [t.shape, Array.from(await t.data())]));
      tf.dispose(pieces.flat());
      // concat's gradient is a SplitV of dy: VPT-deep's prompt slots.
      const parts = [tf.ones([2, 1, 4]), tf.fill([2, 5, 4], 2), tf.fill([2, 3, 4], 3)];
      const grads = tf.grads((p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) => tf.sum(tf.mul(tf.concat([p, q, r], 1), a)))(parts);
      out.push(...await Promise.all(grads.map(async (t) => [t.shape, Array.from(await t.data())])));
      tf.dispose([...grads, ...parts]);
      expect(tf.memory().numTensors).toBe(before);
      a.dispose();
      return out;
    };
    const cpu = await run('cpu');
    expect(tf.getKernel('SplitV', 'wasm')?.kernelFunc.name).toBe('splitInPlace');
    expect(await run('wasm')).toEqual(cpu);
  });
});

describe('wasm Identity (shares the data, counts references)', () => {
  it('a clone outlives its source, a variable snapshot stays put, nothing leaks', async () => {
    await useBackend('wasm');
    expect(tf.getKernel('Identity', 'wasm')?.kernelFunc.name).toBe('identityShared');
    const before = tf.memory().numTensors;
    const a = tf.tensor1d([1, 2, 3]);
    const c = tf.clone(a);
    a.dispose();
    expect(Array.from(await c.data())).toEqual([1, 2, 3]);
    const init = tf.tensor1d([4, 5]), next = tf.tensor1d([6, 7]);
    const v = tf.variable(init);
    const snap = tf.clone(v);
    v.assign(next);
    expect(Array.from(await snap.data())).toEqual([4, 5]);
    expect(Array.from(await v.data())).toEqual([6, 7]);
    tf.dispose([c, v, snap, init, next]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
