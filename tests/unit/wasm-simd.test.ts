// wasm's SIMD kernels (src/core/vit/wasm-simd.ts): each against the tfjs ops it replaces, to 1e-5 of the
// reference's scale, on shapes with every kind of tail; split across helper threads to the byte; the binary
// rebuilt from its source; the weights a linear layer keeps packed given back exactly.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BINARY, buildSimdSource } from '../../scripts/build-simd';
import { useBackend } from '../../src/cli/backend';
import { batchedAttention, simdAttentionBackward, simdAttentionForward } from '../../src/core/vit/attention';
import { FrozenLinear, plainGeluBackward, plainGeluForward, plainLayerNormBackward, plainLayerNormForward } from '../../src/core/vit/ops';
import { SIMD_ATTENTION, setWasmSimd, simdSummary, wasmSimdKernels } from '../../src/core/vit/wasm-simd';
import { setSimdHelpers } from '../../src/core/vit/wasm-simd-pool';
import { spawnHelper } from '../../src/cli/wasm-threads';
import { SIMD_PLAIN, SIMD_SHARED } from '../../src/core/vit/simd/binary';
import { GELU, GELU_GRAD, LAYER_NORM, LAYER_NORM_GRAD, LAYER_NORM_GRAD_ADD, runFused } from '../../src/core/vit/webgpu-kernels';
import { relErr } from './helpers';

const rand = (shape: number[], seed: number, sd = 1) => tf.randomNormal(shape, 0, sd, 'float32', seed);
const close = (a: tf.Tensor, b: tf.Tensor) => expect(relErr(a.dataSync(), b.dataSync())).toBeLessThan(1e-5);
/** Runs f with `n` helper threads (0: the calling thread alone). */
function withHelpers<T>(n: number, f: () => T): T {
  setSimdHelpers(n, n ? spawnHelper : null);
  try { return f(); } finally { setSimdHelpers(1, spawnHelper); }
}

describe('wasm SIMD kernels', () => {
  beforeAll(async () => { await useBackend('wasm', 2); });

  it('run here, with relaxed SIMD and a helper thread', () => {
    expect(wasmSimdKernels()).toBe(true);
    expect(simdSummary()).toBe('SIMD kernels with fused multiply-add, 1 helper thread');
  });

  it('the committed binary is the build of the .as.ts sources', async () => {
    expect(readFileSync(BINARY, 'utf8')).toBe(await buildSimdSource());
  }, 60_000);

  it('GELU and its gradient match the tfjs ops, any length', () => {
    const before = tf.memory().numTensors;
    for (const n of [1, 3, 4, 7, 1000, 4099]) {
      tf.tidy(() => {
        const x = rand([n], n, 3), dy = rand([n], n + 1);
        const ref = plainGeluForward(x);
        close(runFused(GELU, { xIn: x }), ref.y);
        close(runFused(GELU_GRAD, { xIn: x, dyIn: dy }), plainGeluBackward(x, ref.cdf, dy));
      });
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('LayerNorm and its gradient (with and without the residual) match the tfjs ops, any width', () => {
    for (const [rows, d] of [[1, 1], [5, 7], [13, 192], [3, 768]]) {
      tf.tidy(() => {
        const x = rand([rows, d], d, 2), g = rand([d], d + 1) as tf.Tensor1D, b = rand([d], d + 2) as tf.Tensor1D;
        const dy = rand([rows, d], d + 3), res = rand([rows, d], d + 4);
        const ref = plainLayerNormForward(x, g, b, 1e-6);
        close(runFused(LAYER_NORM, { xIn: x, gamma: g, beta: b }, { eps: 1e-6 }), ref.y);
        const grad = plainLayerNormBackward(g, ref.xh, ref.r, dy);
        close(runFused(LAYER_NORM_GRAD, { xIn: x, gamma: g, dyIn: dy }, { eps: 1e-6 }), grad);
        close(runFused(LAYER_NORM_GRAD_ADD, { xIn: x, gamma: g, dyIn: dy, resIn: res }, { eps: 1e-6 }), tf.add(grad, res));
      });
    }
  });

  it('attention and its gradient match the batched tfjs ops, on one thread and split', () => {
    const before = tf.memory().numTensors;
    for (const [B, H, T, hd] of [[1, 1, 1, 4], [2, 3, 7, 8], [3, 2, 5, 4], [2, 3, 33, 64]]) {
      const qkv = rand([B * T, 3 * H * hd], T, 1.5) as tf.Tensor2D, g = rand([B * T, H * hd], T + 1);
      const ref = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(batchedAttention(x as tf.Tensor2D, B, H), g)))(qkv));
      const refOut = tf.tidy(() => batchedAttention(qkv, B, H));
      const run = () => {
        const { out, p } = simdAttentionForward(qkv, B, H);
        const dqkv = simdAttentionBackward(qkv, p, g, B, H);
        const r = { out: out.dataSync().slice(), dqkv: dqkv.dataSync().slice() };
        tf.dispose([out, p, dqkv]);
        return r;
      };
      const one = withHelpers(0, run), split = withHelpers(1, run);
      expect(relErr(one.out, refOut.dataSync())).toBeLessThan(1e-5);
      expect(relErr(one.dqkv, ref.dataSync())).toBeLessThan(1e-5);
      // Threads split the (image, head) pairs, never a sum: the same bytes.
      expect(Buffer.from(split.out.buffer).equals(Buffer.from(one.out.buffer))).toBe(true);
      expect(Buffer.from(split.dqkv.buffer).equals(Buffer.from(one.dqkv.buffer))).toBe(true);
      tf.dispose([qkv, g, ref, refOut]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a linear layer keeps W packed, multiplies (forward and input gradient) as tfjs does, and gives W back exactly', () => {
    for (const [M, K, N] of [[1, 1, 4], [5, 3, 12], [37, 19, 20], [70, 192, 576]]) {
      const [wData, bData] = tf.tidy(() => [rand([K, N], K).dataSync(), rand([N], N).dataSync()]);
      const x = rand([M, K], M) as tf.Tensor2D, dy = rand([M, N], M + 1) as tf.Tensor2D;
      const before = tf.memory().numTensors;
      const lin = new FrozenLinear(tf.tensor2d(wData, [K, N]), tf.tensor1d(bData));
      const w = tf.tensor2d(wData, [K, N]), b = tf.tensor1d(bData);
      const run = () => { const y = lin.forward(x), dx = lin.backward(dy); const r = [y.dataSync().slice(), dx.dataSync().slice()]; tf.dispose([y, dx]); return r; };
      const [y1, dx1] = withHelpers(0, run), [y2, dx2] = withHelpers(1, run);
      const [yRef, dxRef] = tf.tidy(() => [tf.add(tf.matMul(x, w), b), tf.matMul(dy, w, false, true)]);
      expect(relErr(y1, yRef.dataSync())).toBeLessThan(1e-5);
      expect(relErr(dx1, dxRef.dataSync())).toBeLessThan(1e-5);
      expect(Buffer.from(y2.buffer).equals(Buffer.from(y1.buffer))).toBe(true);
      expect(Buffer.from(dx2.buffer).equals(Buffer.from(dx1.buffer))).toBe(true);
      // Another path (the kernels off) gets W back from the panels, to the byte.
      const was = setWasmSimd(false);
      expect(Array.from(lin.w.dataSync())).toEqual(Array.from(wData));
      setWasmSimd(was);
      tf.dispose([w, b, yRef, dxRef]);
      lin.dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, dy]);
    }
  });

  it('the plain-SIMD build (engines without relaxed SIMD) computes what the relaxed one does', () => {
    // Its own instance on the backend's memory, called directly on tensors' bytes.
    const be = tf.backend() as unknown as { getMemoryOffset(id: unknown): number; wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } } };
    const memory = (be.wasm.wasmMemory ?? be.wasm.asm?.memory)!;
    const shared = memory.buffer instanceof SharedArrayBuffer;
    const k = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(shared ? SIMD_SHARED : SIMD_PLAIN, 'base64')), { env: { memory } }).exports as Record<string, (...a: number[]) => number>;
    const at = (t: tf.Tensor) => be.getMemoryOffset(t.dataId);
    const [M, K, N, B, H, T, hd] = [37, 19, 20, 2, 3, 13, 8];
    const x = rand([M, K], 1), w = rand([K, N], 2), bias = rand([N], 3), packed = tf.zeros([Math.ceil(N / 8), K, 8]), y = tf.zeros([M, N]);
    k.packPanels(at(w), at(packed), K, N, 0, Math.ceil(N / 8));
    k.matmulPacked(at(x), at(packed), at(bias), at(y), K, N, 0, M);
    const lin = new FrozenLinear(tf.clone(w) as tf.Tensor2D, tf.clone(bias) as tf.Tensor1D);
    const yRelaxed = lin.forward(x);
    close(y, yRelaxed);
    const g = rand([5000], 4, 3), gy = tf.zeros([5000]);
    k.gelu(at(g), at(gy), 0, 5000);
    const gRelaxed = runFused(GELU, { xIn: g });
    close(gy, gRelaxed);
    const qkv = rand([B * T, 3 * H * hd], 5) as tf.Tensor2D, Tp = (T + 3) & ~3;
    const out = tf.zeros([B * T, H * hd]), probs = tf.zeros([B * H, T, Tp]), scratch = tf.zeros([k.attentionScratch(T, hd)]);
    k.attentionForward(at(qkv), at(out), at(probs), at(scratch), H, T, hd, 1 / Math.sqrt(hd), 0, B * H);
    const relaxed = simdAttentionForward(qkv, B, H);
    close(out, relaxed.out);
    tf.dispose([x, w, bias, packed, y, yRelaxed, g, gy, gRelaxed, qkv, out, probs, scratch, relaxed.out, relaxed.p]);
    lin.dispose();
  });

  it('the kernels can be switched off, and then the tfjs ops run', async () => {
    const was = setWasmSimd(false);
    try {
      expect(wasmSimdKernels()).toBe(false);
      const x = rand([6, 8], 1);
      const r = await tf.profile(() => tf.tidy(() => new FrozenLinear(tf.ones([8, 4]), tf.zeros([4])).forward(x)));
      expect(r.kernelNames).toContain('_FusedMatMul');
      expect(r.kernelNames).not.toContain('VptSimdLinear');
      tf.dispose([x, r.result as tf.Tensor]);
    } finally {
      setWasmSimd(was);
    }
  });

  it('attention with a head width its products cannot take is refused by name', () => {
    const qkv = tf.zeros([6, 18]);
    expect(() => tf.engine().runKernel(SIMD_ATTENTION, { qkv }, { B: 2, H: 2 })).toThrow(/VptSimdAttention: \[6,18\] is not B = 2 images of H = 2 heads with a head width divisible by 4/);
    qkv.dispose();
  });
});
