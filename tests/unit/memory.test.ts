import { describe, expect, it } from 'vitest';
import { activationBytesPerImage, chooseMicroBatch, choosePasses, largestActivationBytes, residentModelBytes, stepInputBytes } from '../../src/core/train/memory';
import { PRESETS } from '../../src/core/vit/config';

const vitB = PRESETS.find((p) => p.name === 'ViT-B/16')!.config;

describe('micro-batch from device limits', () => {
  it('ViT-B/16 VPT-deep p=50: no tensor over the binding limit, activations within 2 GiB', () => {
    const mb = chooseMicroBatch(vitB, 50, 64, 128 * 1024 ** 2);
    expect(mb).toBeGreaterThanOrEqual(1);
    expect(mb).toBeLessThan(64);
    expect(mb * largestActivationBytes(vitB, 50)).toBeLessThanOrEqual(128 * 1024 ** 2);
    expect(mb * activationBytesPerImage(vitB, 50)).toBeLessThanOrEqual(2 * 1024 ** 3);
    expect((mb + 1) * activationBytesPerImage(vitB, 50)).toBeGreaterThan(2 * 1024 ** 3);
  });

  it('small models keep the whole batch; a tiny binding limit still gives at least 1', () => {
    const tiny = { imageSize: 32, patchSize: 4, hiddenSize: 64, numLayers: 4, numHeads: 4, mlpDim: 256, layerNormEps: 1e-6 };
    expect(chooseMicroBatch(tiny, 10, 16, 128 * 1024 ** 2)).toBe(16);
    expect(chooseMicroBatch(vitB, 10, 64, 1024)).toBe(1);
  });

  it('recomputation: a ViT-B/16 VPT-deep p=10 batch-64 step in 2 GiB, backbone included, with far larger passes', () => {
    // 86 M parameters, the block matrices twice (transposed copies for backward): about 0.67 GiB resident.
    expect(residentModelBytes(vitB) / 2 ** 30).toBeCloseTo(0.67, 1);
    // The batch's 64 images stay on the device through the step (the webgpu stepper's input buffers): 38.5 MB.
    expect(stepInputBytes(vitB, 64) / 1e6).toBeCloseTo(38.5, 1);
    const left = 2 * 1024 ** 3 - residentModelBytes(vitB) - stepInputBytes(vitB, 64);
    const plain = chooseMicroBatch(vitB, 10, 64, 2 * 1024 ** 3, left);
    const plan = choosePasses(vitB, 10, 64, 2 * 1024 ** 3);
    expect(plan.recompute).toBe(true);
    expect(plan.microBatch).toBeGreaterThan(4 * plain);
    expect(plan.microBatch * activationBytesPerImage(vitB, 10, true)).toBeLessThanOrEqual(left);
    expect((plan.microBatch + 1) * activationBytesPerImage(vitB, 10, true)).toBeGreaterThan(left);
    // Measured on cpu: 807 MB per image plain, 139 MB recomputed (the estimate: 774 and 164).
    expect(activationBytesPerImage(vitB, 10, true) * 4).toBeLessThan(activationBytesPerImage(vitB, 10));
    // Small enough already: no recomputation.
    const tiny = { imageSize: 32, patchSize: 4, hiddenSize: 64, numLayers: 4, numHeads: 4, mlpDim: 256, layerNormEps: 1e-6 };
    expect(choosePasses(tiny, 10, 16, 128 * 1024 ** 2)).toEqual({ microBatch: 16, recompute: false });
  });
});

describe('webgpu\'s fused kernels (a smaller footprint, measured in node-webgpu.test.ts)', () => {
  it('plan larger passes for frozen blocks, still within 2 GiB by their own estimate, and leave other protocols alone', async () => {
    const { planPasses } = await import('../../src/core/train/memory');
    const { resolveTrainConfig } = await import('../../src/core/train/config');
    expect(activationBytesPerImage(vitB, 10, false, 'fused')).toBeLessThan(activationBytesPerImage(vitB, 10));
    expect(activationBytesPerImage(vitB, 10, true, 'fused')).toBeLessThan(activationBytesPerImage(vitB, 10, true));
    const plain = choosePasses(vitB, 10, 64, 2 * 1024 ** 3);
    const fused = choosePasses(vitB, 10, 64, 2 * 1024 ** 3, undefined, 'fused');
    expect(fused.recompute).toBe(true);
    expect(fused.microBatch).toBeGreaterThan(plain.microBatch);
    expect(residentModelBytes(vitB) + fused.microBatch * activationBytesPerImage(vitB, 10, true, 'fused')).toBeLessThanOrEqual(2 * 1024 ** 3);
    expect(residentModelBytes(vitB) + (fused.microBatch + 1) * activationBytesPerImage(vitB, 10, true, 'fused')).toBeGreaterThan(2 * 1024 ** 3);
    const vpt = resolveTrainConfig({ batch: 64, protocol: { name: 'vpt-deep', n: 10 } });
    expect(planPasses(vitB, vpt, { fused: true }).microBatch).toBe(fused.microBatch);
    const lora = resolveTrainConfig({ batch: 64, protocol: { name: 'lora', n: 8 } });
    expect(planPasses(vitB, lora, { fused: true })).toEqual(planPasses(vitB, lora));
  });
});

describe('the attention form a plan counts (attentionForm)', () => {
  it('fused on webgpu, per head on wasm where that pays, batched elsewhere and for block-changing protocols; wasm plans larger passes', async () => {
    const { planPasses, attentionForm } = await import('../../src/core/train/memory');
    const { resolveTrainConfig } = await import('../../src/core/train/config');
    const demo = { imageSize: 32, patchSize: 4, hiddenSize: 64, numLayers: 4, numHeads: 4, mlpDim: 256, layerNormEps: 1e-6 };
    const tiny = { ...demo, imageSize: 16 }; // T = 27: 12K multiply-adds a head, the batched form is faster
    expect(attentionForm(vitB, 10, 'vpt-deep', { backend: 'webgpu', fused: true })).toBe('fused');
    expect(attentionForm(vitB, 10, 'vpt-deep', { backend: 'wasm' })).toBe('headwise');
    expect(attentionForm(demo, 10, 'vpt-shallow', { backend: 'wasm' })).toBe('headwise');
    expect(attentionForm(tiny, 10, 'vpt-deep', { backend: 'wasm' })).toBe('batched');
    expect(attentionForm(vitB, 10, 'vpt-deep', { backend: 'webgl' })).toBe('batched');
    expect(attentionForm(vitB, 10, 'vpt-deep', {})).toBe('batched');
    expect(attentionForm(vitB, 8, 'lora', { backend: 'wasm' })).toBe('batched');
    for (const recompute of [false, true]) {
      expect(activationBytesPerImage(vitB, 10, recompute, 'headwise')).toBeLessThan(activationBytesPerImage(vitB, 10, recompute));
    }
    const vpt = resolveTrainConfig({ batch: 64, protocol: { name: 'vpt-deep', n: 10 } });
    // wasm's forms keep less; on the CPU plain passes of 2 or more beat recomputed ones (CPU_MIN_PLAIN_PASS).
    expect(attentionForm(vitB, 10, 'vpt-deep', { backend: 'wasm', simd: true })).toBe('simd');
    expect(attentionForm({ ...vitB, hiddenSize: 6 * 12 }, 10, 'vpt-deep', { backend: 'wasm', simd: true })).toBe('headwise'); // hd 6
    for (const [form, o] of [['headwise', { backend: 'wasm' }], ['simd', { backend: 'wasm', simd: true }]] as const) {
      expect(activationBytesPerImage(vitB, 10, false, form)).toBeLessThan(activationBytesPerImage(vitB, 10));
      const onWasm = planPasses(vitB, vpt, o);
      expect(onWasm.recompute, form).toBe(false);
      expect(onWasm.microBatch!).toBeGreaterThanOrEqual(2);
      // wasm makes one pass's input tensors at a time: only webgpu's stepper keeps the whole batch's.
      const left = 2 * 1024 ** 3 - residentModelBytes(vitB);
      expect(onWasm.microBatch! * activationBytesPerImage(vitB, 10, false, form)).toBeLessThanOrEqual(left);
      expect((onWasm.microBatch! + 1) * activationBytesPerImage(vitB, 10, false, form)).toBeGreaterThan(left);
    }
    // Where plain passes would be single images, wasm recomputes too.
    const tight = planPasses(vitB, vpt, { backend: 'wasm', simd: true, budgetBytes: residentModelBytes(vitB) + 1.5 * activationBytesPerImage(vitB, 10, false, 'simd') });
    expect(tight.recompute).toBe(true);
    expect(tight.microBatch!).toBeGreaterThan(1);
  });
});

describe('planPasses (the studio and the CLI)', () => {
  it('plans VPT with recomputation, block-changing protocols without, and keeps an explicit micro-batch', async () => {
    const { planPasses, residentModelBytes } = await import('../../src/core/train/memory');
    const { resolveTrainConfig } = await import('../../src/core/train/config');
    const vpt = planPasses(vitB, resolveTrainConfig({ batch: 64, protocol: { name: 'vpt-deep', n: 10 } }));
    expect([vpt.microBatch, vpt.recompute]).toEqual([8, true]); // 8 passes of 8 images
    const lora = planPasses(vitB, resolveTrainConfig({ batch: 64, protocol: { name: 'lora', n: 8 } }));
    expect(lora.recompute).toBe(false);
    expect(residentModelBytes(vitB) + lora.microBatch * activationBytesPerImage(vitB, 0)).toBeLessThanOrEqual(2 * 1024 ** 3);
    const mine = resolveTrainConfig({ batch: 64, microBatch: 16, protocol: { name: 'vpt-deep', n: 10 } });
    expect(planPasses(vitB, mine)).toBe(mine);
    const tiny = { imageSize: 32, patchSize: 4, hiddenSize: 64, numLayers: 4, numHeads: 4, mlpDim: 256, layerNormEps: 1e-6 };
    expect(planPasses(tiny, resolveTrainConfig({ batch: 16 })).microBatch).toBe(16);
  });
});

describe('the memory budget (the studio\'s field, the CLI\'s --memory)', () => {
  it('a larger budget buys larger passes and, at last, the whole batch without recomputation; the plan says so', async () => {
    const { planPasses, describePlan, formatBudget, residentModelBytes } = await import('../../src/core/train/memory');
    const { resolveTrainConfig } = await import('../../src/core/train/config');
    const cfg = resolveTrainConfig({ batch: 64, protocol: { name: 'vpt-deep', n: 10 } });
    const at = (gib: number) => planPasses(vitB, cfg, { budgetBytes: gib * 1024 ** 3 });
    const sizes = [1, 2, 4, 8, 16, 64].map((g) => at(g).microBatch);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]).toBeGreaterThanOrEqual(sizes[i - 1]);
    expect(at(1).microBatch).toBeLessThan(at(8).microBatch);
    // Every plan fits its own budget by the planner's estimate.
    for (const g of [1, 2, 4, 8, 16]) {
      const p = at(g);
      expect(residentModelBytes(vitB) + stepInputBytes(vitB, 64) + p.microBatch * activationBytesPerImage(vitB, 10, p.recompute)).toBeLessThanOrEqual(g * 1024 ** 3);
    }
    // On webgpu (and an engine not named) the batch's inputs count too (stepInputBytes); on webgl, which
    // makes one pass's input tensors at a time, they do not.
    for (const [form, o] of [['fused', { backend: 'webgpu', fused: true }], ['batched', { backend: 'webgl' }]] as const) {
      const per = activationBytesPerImage(vitB, 10, true, form);
      const inputs = o.backend === 'webgpu' ? stepInputBytes(vitB, 64) : 0;
      const exact = residentModelBytes(vitB) + inputs + 9 * per;
      expect(planPasses(vitB, cfg, { ...o, budgetBytes: exact }).microBatch, form).toBe(9);
      expect(planPasses(vitB, cfg, { ...o, budgetBytes: exact - 1 }).microBatch, form).toBe(8);
    }
    expect(planPasses(vitB, cfg, { fused: true, budgetBytes: residentModelBytes(vitB) + 9 * activationBytesPerImage(vitB, 10, true, 'fused') }).microBatch).toBe(8);
    const big = at(64);
    expect([big.microBatch, big.recompute]).toEqual([64, false]);
    expect(describePlan(big, cfg)).toBe('one pass of 64 images');
    expect(describePlan(at(2), cfg)).toBe('passes of 8 images, recomputing blocks in the backward pass');
    expect(formatBudget(2 * 1024 ** 3)).toBe('2 GiB');
    expect(formatBudget(1.5 * 1024 ** 3)).toBe('1.5 GiB');
    expect(formatBudget(0.5 * 1024 ** 3)).toBe('512 MiB');
  });
});

