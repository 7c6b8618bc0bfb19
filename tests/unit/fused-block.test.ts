/**
 * Frozen blocks written out as one gradient node (src/core/vit/fused-block.ts) on wasm, with its SIMD
 * kernels and without them (the per-head parts, for engines without WebAssembly SIMD): the tape's
 * answer to the bit, a lower peak, no leaks; protocols that change a block keep the tape. (webgpu's
 * set of parts is checked on Dawn in node-webgpu.test.ts.)
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/train/rng';
import { batchGradients, forwardOf } from '../../src/core/train/step';
import { disposeVars, initState, makeVars } from '../../src/core/tuning/params';
import { parseSpec, protocolOf } from '../../src/core/tuning/registry';
import { setFusedBlocks } from '../../src/core/vit/fused-block';
import type { Backbone } from '../../src/core/vit/load';
import { FrozenViT } from '../../src/core/vit/model';
import { setWasmSimd } from '../../src/core/vit/wasm-simd';
import { useBackend } from '../../src/cli/backend';
import { tinyBackbone } from './helpers';

let b: Backbone, model: FrozenViT;
beforeAll(async () => {
  await useBackend('wasm');
  b = await tinyBackbone(); // each describe builds its model under its own setting
});

async function gradients(name: string, written: boolean) {
  const spec = parseSpec(name), proto = protocolOf(spec.name), B = 8, S = model.config.imageSize;
  const vars = makeVars(proto, initState(proto, b.weights, spec, 3, new Rng(1)), model.config);
  const rng = new Rng(5);
  const batch = {
    inputs: Float32Array.from({ length: B * S * S * 3 }, () => rng.next() * 2 - 1), rowShape: [S, S, 3],
    labels: Int32Array.from({ length: B }, (_, i) => i % 3), weights: new Float32Array(B).fill(1), size: B,
  };
  const was = setFusedBlocks(written);
  try {
    const before = tf.memory().numTensors;
    let out!: ReturnType<typeof batchGradients>;
    const prof = await tf.profile(() => { out = batchGradients(forwardOf(model, proto, vars), vars, batch, B); return [out.loss, out.correct, ...out.grads.values()]; });
    const grads = new Map(await Promise.all([...out.grads].map(async ([k, g]) => [k, Array.from(await g.data())] as const)));
    const loss = (await out.loss.data())[0];
    tf.dispose([out.loss, out.correct, ...out.grads.values()]);
    const leaked = tf.memory().numTensors - before;
    return { grads, loss, peak: prof.peakBytes, leaked };
  } finally {
    setFusedBlocks(was);
    disposeVars(vars);
  }
}

describe.each([true, false])('frozen blocks as one gradient node (wasm, SIMD kernels: %s)', (simd) => {
  let was: boolean;
  beforeAll(() => {
    was = setWasmSimd(simd);
    // Built under the setting: a linear layer keeps its weights in that path's layout.
    model = new FrozenViT(b.weights);
    model.prepareBackward();
  });
  afterAll(() => { model.dispose(); setWasmSimd(was); });

  it.each(['vpt-deep-5', 'vpt-shallow-5'])('%s: the same loss and gradients as the tape, a lower peak, no leaks', async (name) => {
    expect(tf.getBackend()).toBe('wasm');
    const tape = await gradients(name, false), written = await gradients(name, true);
    expect(written.loss).toBe(tape.loss);
    for (const [k, g] of tape.grads) expect(written.grads.get(k), k).toEqual(g);
    // The tape holds every intermediate gradient to the end of the backward pass; one node a block frees them as it goes.
    expect(written.peak).toBeLessThan(tape.peak * 0.8);
    expect(written.leaked).toBe(0);
    expect(tape.leaked).toBe(0);
  });

  it('leaves a protocol that changes the blocks (LoRA) on the tape', async () => {
    const tape = await gradients('lora-4', false), written = await gradients('lora-4', true);
    expect(written.loss).toBe(tape.loss);
    for (const [k, g] of tape.grads) expect(written.grads.get(k), k).toEqual(g);
    expect(written.peak).toBe(tape.peak);
    expect(written.leaked).toBe(0);
  });
});
