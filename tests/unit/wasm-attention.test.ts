/**
 * The per-head attention's wasm kernels (src/core/vit/wasm-attention.ts)
 * against tfjs's own slice, transpose and arithmetic: the same elements, the
 * softmax's gradient to float rounding, clear errors, no leaks, and right
 * answers when allocating the outputs grows the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/cli/backend';
import { headBlocksOf, placeBlocksOf, softmaxGradOf } from '../../src/core/vit/wasm-attention';
import { relErr } from './helpers';

beforeAll(async () => { await useBackend('wasm'); });

const arr = async (t: tf.Tensor) => Array.from(await t.data());

describe('wasm attention kernels', () => {
  it('copy column blocks of a row range as they are, transposed and scaled, as slice/transpose/mul do', async () => {
    const x = tf.randomNormal([23, 17], 0, 1, 'float32', 3) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    // 7 rows (an odd count: the transposed copy goes four rows at a time, then one by one).
    const got = headBlocksOf(x, 5, 7, [
      { col: 0, width: 6, transposed: false },
      { col: 4, width: 9, transposed: true },
      { col: 11, width: 6, transposed: false, scale: 0.375 },
      { col: 2, width: 5, transposed: true, scale: -1.5 },
    ]);
    const want = tf.tidy(() => [
      tf.slice(x, [5, 0], [7, 6]),
      tf.transpose(tf.slice(x, [5, 4], [7, 9])),
      tf.mul(tf.slice(x, [5, 11], [7, 6]), 0.375),
      tf.mul(tf.transpose(tf.slice(x, [5, 2], [7, 5])), -1.5),
    ]);
    for (let i = 0; i < 4; i++) {
      expect(got[i].shape, `block ${i}`).toEqual(want[i].shape);
      expect(await arr(got[i]), `block ${i}`).toEqual(await arr(want[i])); // float32 products round alike
    }
    tf.dispose([...got, ...want]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('place blocks, transposed or not, so that they tile a new tensor', async () => {
    const a = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);       // [3, 2] at rows 0-2, columns 0-1
    const b = tf.tensor2d([[7, 8, 9], [10, 11, 12]]);       // transposed: [3, 2] at rows 0-2, columns 2-3
    const c = tf.tensor2d([[13, 14, 15, 16]]);              // [1, 4] at row 3
    const before = tf.memory().numTensors;
    const out = placeBlocksOf([a, b, c], [
      { row: 0, col: 0, transposed: false }, { row: 0, col: 2, transposed: true }, { row: 3, col: 0, transposed: false },
    ], [4, 4]);
    expect(out.shape).toEqual([4, 4]);
    expect(await out.array()).toEqual([[1, 2, 7, 10], [3, 4, 8, 11], [5, 6, 9, 12], [13, 14, 15, 16]]);
    out.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b, c]);
  });

  it('the softmax gradient, scaled, and its transpose, as the formula gives it', async () => {
    const p = tf.softmax(tf.randomNormal([31, 31], 0, 2, 'float32', 5)) as tf.Tensor2D;
    const dp = tf.randomNormal([31, 31], 0, 1, 'float32', 6) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const [ds, dsT] = softmaxGradOf(p, dp, 0.125, true);
    const want = tf.tidy(() => tf.mul(tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true))), 0.125));
    const wantT = tf.transpose(ds);
    expect(relErr(await ds.data() as Float32Array, await want.data() as Float32Array)).toBeLessThan(1e-6);
    expect(await arr(dsT)).toEqual(await arr(wantT));
    const only = softmaxGradOf(p, dp, 0.125);
    expect(only).toHaveLength(1);
    expect(await arr(only[0])).toEqual(await arr(ds));
    tf.dispose([ds, dsT, want, wantT, ...only]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([p, dp]);
  });

  it('say what is wrong with a bad call, and leave no tensor behind', () => {
    const x = tf.zeros([4, 6]) as tf.Tensor2D, i = tf.zeros([4, 6], 'int32') as tf.Tensor2D;
    const before = tf.memory().numTensors;
    expect(() => headBlocksOf(x, 2, 3, [{ col: 0, width: 2, transposed: false }])).toThrow(/rows 2\.\.5 outside \[4,6\]/);
    expect(() => headBlocksOf(x, 0, 4, [{ col: 5, width: 2, transposed: true }])).toThrow(/columns 5\.\.7 outside \[4,6\]/);
    expect(() => headBlocksOf(i, 0, 4, [{ col: 0, width: 2, transposed: false }])).toThrow(/float32 tensors, got int32/);
    expect(() => placeBlocksOf([x], [{ row: 0, col: 0, transposed: false }], [4, 7])).toThrow(/cover 24 of 28 elements/);
    expect(() => placeBlocksOf([x], [{ row: 1, col: 0, transposed: false }], [4, 6])).toThrow(/\[4,6\] block at \(1, 0\) is outside \[4,6\]/);
    expect(() => softmaxGradOf(x, x, 1)).toThrow(/not square/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, i]);
  });

  it('stay right when allocating their outputs grows the wasm heap (views are taken after allocation)', async () => {
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
    const x = tf.randomNormal([64, 64], 0, 1, 'float32', 9) as tf.Tensor2D;
    const size = heap();
    // More output than the heap now holds: the allocations inside the kernel must grow it.
    const n = Math.ceil(size / (64 * 64 * 4)) + 16;
    const got = headBlocksOf(x, 0, 64, Array.from({ length: n }, () => ({ col: 0, width: 64, transposed: true })));
    expect(heap()).toBeGreaterThan(size);
    const want = tf.transpose(x);
    const w = await arr(want);
    expect(await arr(got[0])).toEqual(w);
    expect(await arr(got[n - 1])).toEqual(w);
    tf.dispose([...got, want, x]);
  });
});
