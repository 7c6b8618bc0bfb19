/** The per-head attention (wasm's fast path) against the batched form: values, gradients, leaks. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/cli/backend';
import { batchedAttention, headwiseAttention } from '../../src/core/vit/attention';
import { headwisePays } from '../../src/core/vit/attention-form';
import { relErr } from './helpers';

beforeAll(async () => { await useBackend('wasm'); });

describe('attention', () => {
  it('per-head products with the written-out gradient equal the batched form (1e-5), leak nothing', async () => {
    const [B, H, T, hd] = [2, 3, 21, 8];
    const d = H * hd;
    const qkv = tf.randomNormal([B * T, 3 * d], 0, 1, 'float32', 1) as tf.Tensor2D;
    const r = tf.randomNormal([B * T, d], 0, 1, 'float32', 4);
    const before = tf.memory().numTensors;
    const run = async (f: typeof batchedAttention) => {
      const y = tf.tidy(() => f(qkv, B, H));
      const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor2D, B, H), r)))(qkv);
      const out = [await y.data(), await g.data()] as Float32Array[];
      tf.dispose([y, g]);
      return out;
    };
    const want = await run(batchedAttention);
    const got = await run(headwiseAttention);
    expect(tf.memory().numTensors).toBe(before);
    expect(relErr(got[0], want[0]), 'value').toBeLessThan(1e-5);
    // The gradient's q, k and v columns separately: a mix-up of the layout would show in one of them.
    const cols = (x: Float32Array, j: number) => Float32Array.from({ length: B * T * d }, (_, i) => x[Math.floor(i / d) * 3 * d + j * d + (i % d)]);
    ['dq', 'dk', 'dv'].forEach((name, j) => {
      expect(relErr(cols(got[1], j), cols(want[1], j)), name).toBeLessThan(1e-5);
      expect(Math.max(...cols(want[1], j).map(Math.abs)), name).toBeGreaterThan(1e-3); // not trivially zero
    });
    tf.dispose([qkv, r]);
  });

  it('a VPT-deep step through the whole model: wasm (SIMD kernels, and per head without them) and cpu (batched) give the same gradients', async () => {
    const { randomWeights } = await import('../../bench/step');
    const { FrozenViT } = await import('../../src/core/vit/model');
    const { vptDeep } = await import('../../src/core/tuning/prompt');
    const { initState, makeVars, disposeVars } = await import('../../src/core/tuning/params');
    const { batchGradients, forwardOf } = await import('../../src/core/train/step');
    const { Rng } = await import('../../src/core/train/rng');
    // 64 px / patch 4: T = 257 + 2 prompts, hd = 16, so T^2 hd > 1M and wasm goes per head.
    const config = { imageSize: 64, patchSize: 4, hiddenSize: 32, numLayers: 2, numHeads: 2, mlpDim: 64, layerNormEps: 1e-6 };
    expect(headwisePays('wasm', 259, 16)).toBe(true);
    const w = randomWeights(config, 4);
    const state = initState(vptDeep, w, { name: 'vpt-deep', n: 2 }, 3, new Rng(5));
    const batch = { inputs: Float32Array.from({ length: 2 * 64 * 64 * 3 }, (_, i) => Math.sin(i * 0.37)), rowShape: [64, 64, 3], labels: new Int32Array([0, 2]), weights: new Float32Array([1, 1]), size: 2 };
    const { setWasmSimd } = await import('../../src/core/vit/wasm-simd');
    const grads = async (backend: 'wasm' | 'cpu', simd = true) => {
      await useBackend(backend);
      const was = setWasmSimd(simd);
      const model = new FrozenViT(w);
      model.prepareBackward();
      const vars = makeVars(vptDeep, state, config);
      const outs: Float32Array[] = [];
      for (const recompute of [false, true]) {
        const g = batchGradients(forwardOf(model, vptDeep, vars, { recompute }), vars, batch, 2);
        outs.push(await g.grads.get('prompts')!.data() as Float32Array);
        tf.dispose([g.loss, g.correct, ...g.grads.values()]);
      }
      disposeVars(vars); model.dispose();
      setWasmSimd(was);
      expect(relErr(outs[1], outs[0])).toBeLessThan(1e-6); // recomputation reruns the same attention
      return outs[0];
    };
    const cpu = await grads('cpu');
    expect(Math.max(...cpu.map(Math.abs))).toBeGreaterThan(0);
    expect(relErr(await grads('wasm'), cpu)).toBeLessThan(1e-4);
    expect(relErr(await grads('wasm', false), cpu)).toBeLessThan(1e-4);
  });

  it('runs per head only on wasm and only where the products are large enough to pay', () => {
    expect(headwisePays('wasm', 207, 64)).toBe(true);   // ViT-Ti/16 and ViT-B/16 at 224, p = 10
    expect(headwisePays('wasm', 65, 16)).toBe(true);    // the 32-pixel demo model
    expect(headwisePays('wasm', 30, 16)).toBe(false);   // 14K multiply-adds a head: the batched form is 3x faster
    expect(headwisePays('webgpu', 207, 64)).toBe(false);
    expect(headwisePays('cpu', 577, 64)).toBe(false);
  });
});
