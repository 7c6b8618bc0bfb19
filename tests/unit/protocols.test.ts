/**
 * Every tuning protocol on the real tiny backbone (wasm): gradients reach
 * exactly its own tensors, the backbone stays bit-identical, export/import
 * reproduces the logits, and it learns a synthetic task. Linear's cached and
 * uncached paths agree.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkTaskAgainstBackbone, readTask, writeTask } from '../../src/core/io/task-file';
import { resolveTrainConfig } from '../../src/core/train/config';
import { fillBatch, inferRows, type Example } from '../../src/core/train/evaluate';
import { train } from '../../src/core/train/loop';
import { DEFAULT_OPTIMIZER, Optimizer } from '../../src/core/train/optimizer';
import { Rng } from '../../src/core/train/rng';
import { batchGradients, forwardOf, optimizerStep, paramGroups, type HostBatch } from '../../src/core/train/step';
import { checkParams, disposeVars, initState, makeVars } from '../../src/core/tuning/params';
import { formatSpec, parseSpec, PROTOCOLS, protocolOf } from '../../src/core/tuning/registry';
import type { ProtocolSpec } from '../../src/core/tuning/types';
import type { Preprocessing } from '../../src/core/vit/config';
import type { Backbone } from '../../src/core/vit/load';
import type { FrozenViT } from '../../src/core/vit/model';
import { tinyModel } from './helpers';

/** Class 0: a horizontal stroke, class 1: a vertical one, at random places, on noise. */
function strokes(n: number, seed: number): Example[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const data = new Uint8Array(32 * 32 * 3);
    const at = 8 + Math.floor(rng.next() * 16), from = 4 + Math.floor(rng.next() * 6), to = 22 + Math.floor(rng.next() * 6);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
      const on = label === 0 ? Math.abs(y - at) <= 1 && x >= from && x <= to : Math.abs(x - at) <= 1 && y >= from && y <= to;
      const v = Math.max(0, Math.min(255, (on ? 230 : 10) + rng.normal() * 15));
      for (let c = 0; c < 3; c++) data[(y * 32 + x) * 3 + c] = v;
    }
    return { image: { width: 32, height: 32, data }, label, name: `s${i}` };
  });
}

const SPECS: ProtocolSpec[] = ['linear', 'mlp-2', 'partial-1', 'bias', 'adapter-8', 'lora-2', 'vpt-shallow-3', 'vpt-deep-3', 'full'].map(parseSpec);
const classes = ['horizontal', 'vertical'];
let b: Backbone, model: FrozenViT, pre: Preprocessing;
const frozenCopy: Float32Array[] = [];

beforeAll(async () => {
  ({ b, model, pre } = await tinyModel());
  frozenCopy.push(b.weights.patchW.slice(), ...b.weights.blocks.flatMap((k) => [k.qkvW.slice(), k.fc1W.slice(), k.ln1b.slice()]), b.weights.normB.slice());
});

function hostBatch(ex: Example[]): HostBatch {
  return { inputs: fillBatch(ex.map((e) => e.image), pre, ex.length), rowShape: [32, 32, 3], labels: Int32Array.from(ex.map((e) => e.label)), weights: new Float32Array(ex.length).fill(1), size: ex.length };
}

describe('protocol names', () => {
  it('parse, default sizes, errors', () => {
    expect(parseSpec('VPT-deep')).toEqual({ name: 'vpt-deep', n: 10 });
    expect(parseSpec('mlp-3')).toEqual({ name: 'mlp', n: 3 });
    expect(formatSpec(parseSpec('lora-8'))).toBe('lora-8');
    expect(formatSpec(parseSpec('linear'))).toBe('linear');
    expect(() => parseSpec('linear-3')).toThrow(/takes no size/);
    expect(() => parseSpec('sidetune')).toThrow(/unknown protocol "sidetune"/);
    expect(() => parseSpec('mlp-0')).toThrow(/hidden layers must be an integer from 1/);
  });
});

describe.each(SPECS.map((s) => [formatSpec(s), s] as const))('%s', (_name, spec) => {
  const proto = protocolOf(spec.name);

  it('gradients reach exactly its own tensors; the backbone stays bit-identical', async () => {
    const before = tf.memory().numTensors;
    const rng = new Rng(3);
    const state = initState(proto, b.weights, spec, 2, rng);
    const vars = makeVars(proto, state, model.config);
    const forward = forwardOf(model, proto, vars);
    const batch = hostBatch(strokes(4, 5));
    // Zero-initialised halves (LoRA's B, the adapter's up) gate their partners' gradients: one step first.
    const opt = new Optimizer(DEFAULT_OPTIMIZER, paramGroups(vars, 0));
    const s0 = optimizerStep(forward, vars, opt, batch, 0.05, 2);
    tf.dispose([s0.loss, s0.correct]);
    const { loss, correct, grads } = batchGradients(forward, vars, batch, 2);
    expect([...grads.keys()].sort()).toEqual([...state.params.keys()].sort());
    for (const [name, g] of grads) {
      const a = (await g.data()) as Float32Array;
      expect(a.some((v) => v !== 0), `gradient of ${name} is all zero`).toBe(true);
      expect(a.every(Number.isFinite)).toBe(true);
    }
    tf.dispose([loss, correct, ...grads.values()]);
    opt.dispose();
    disposeVars(vars);
    expect(tf.memory().numTensors).toBe(before);
    const now = [b.weights.patchW, ...b.weights.blocks.flatMap((k) => [k.qkvW, k.fc1W, k.ln1b]), b.weights.normB];
    now.forEach((a, i) => expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(frozenCopy[i].buffer))).toBe(true));
  });

  it('learns the synthetic task; its task file holds only its tensors and reproduces the logits', async () => {
    const before = tf.memory().numTensors;
    const cfg = resolveTrainConfig({ protocol: spec, epochs: 4, batch: 8, valSplit: 0, warmupEpochs: 0, seed: 1 });
    const test = strokes(16, 99);
    const r = await train(model, pre, { train: strokes(32, 7), val: test, classes }, cfg, b.fingerprint);
    expect(r.bestValAccuracy!, `${formatSpec(spec)} validation accuracy`).toBeGreaterThanOrEqual(0.75);
    expect(tf.memory().numTensors).toBe(before);
    // Export: only the protocol's tensors (plus the head), with the fingerprint; import gives identical logits.
    const bytes = writeTask(r.state, { classes, backbone: { name: 'tiny', architecture: 'ViT', fingerprint: b.fingerprint, hidden_size: 64, num_layers: 4, patch_size: 4, image_size: 32 } });
    const t = readTask(bytes, 'task.vpt.safetensors');
    expect(t.state.protocol).toEqual(spec);
    expect([...t.state.params.keys()].sort()).toEqual([...proto.params(model.config, spec.n, 2).keys()].sort());
    checkTaskAgainstBackbone(t, model.config, b.fingerprint, 'task');
    const logits = async (s: typeof r.state) => {
      const vars = makeVars(proto, s, model.config, false);
      try { return (await inferRows(model, { proto, vars }, test.map((e) => e.image), pre, 8)).values; } finally { disposeVars(vars); }
    };
    expect(Array.from(await logits(t.state))).toEqual(Array.from(await logits(r.state)));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('feature caching and checks', () => {
  it('bias-delta gradients agree with finite differences', async () => {
    const proto = protocolOf('bias');
    const s = initState(proto, b.weights, { name: 'bias', n: 0 }, 2, new Rng(2));
    const batch = hostBatch(strokes(4, 1));
    const lossAt = async (delta: Map<string, number>) => {
      const params = new Map([...s.params].map(([k, p]) => [k, { ...p, data: p.data.slice() }]));
      for (const [k, v] of delta) { const [name, i] = k.split('#'); params.get(name)!.data[Number(i)] += v; }
      const vars = makeVars(proto, { ...s, params }, model.config);
      const r = batchGradients(forwardOf(model, proto, vars), vars, batch, 4);
      const out = { loss: (await r.loss.data())[0], grads: new Map(await Promise.all([...r.grads].map(async ([k, g]) => [k, (await g.data()) as Float32Array] as const))) };
      tf.dispose([r.loss, r.correct, ...r.grads.values()]);
      disposeVars(vars);
      return out;
    };
    const { grads } = await lossAt(new Map());
    for (const name of ['delta.blocks.1.attn.qkv.bias', 'delta.blocks.3.norm2.bias', 'delta.patch_embed.proj.bias', 'delta.norm.bias']) {
      const g = grads.get(name)!;
      const i = [...g.keys()].reduce((a, j) => (Math.abs(g[j]) > Math.abs(g[a]) ? j : a), 0);
      const eps = 1e-2;
      const fd = ((await lossAt(new Map([[`${name}#${i}`, eps]]))).loss - (await lossAt(new Map([[`${name}#${i}`, -eps]]))).loss) / (2 * eps);
      expect(Math.abs(fd - g[i]), name).toBeLessThan(0.05 * Math.abs(g[i]) + 1e-4);
    }
  });

  it("Linear's cached and uncached runs agree", async () => {
    const data = { train: strokes(24, 3), val: strokes(8, 4), classes };
    const base = { protocol: parseSpec('linear'), epochs: 3, batch: 8, warmupEpochs: 0, seed: 5 };
    const cached = await train(model, pre, data, resolveTrainConfig(base), b.fingerprint);
    const plain = await train(model, pre, data, resolveTrainConfig({ ...base, cacheFeatures: false }), b.fingerprint);
    expect(cached.cached).toBe(true);
    expect(plain.cached).toBe(false);
    for (const [name, p] of cached.state.params) {
      const q = plain.state.params.get(name)!.data;
      const scale = Math.max(...Array.from(q, Math.abs));
      expect(Math.max(...Array.from(p.data, (v, i) => Math.abs(v - q[i]))) / scale).toBeLessThan(1e-5);
    }
    expect(cached.history.map((h) => h.valAccuracy)).toEqual(plain.history.map((h) => h.valAccuracy));
  });

  it.each(['vpt-deep-3', 'vpt-shallow-3', 'lora-2'])('%s: patch embeddings computed once give the same run as images every step', async (name) => {
    const data = { train: strokes(24, 3), val: strokes(8, 4), classes };
    const base = { protocol: parseSpec(name), epochs: 2, batch: 8, warmupEpochs: 0, seed: 5 };
    const before = tf.memory().numTensors;
    const once = await train(model, pre, data, resolveTrainConfig(base), b.fingerprint);
    const plain = await train(model, pre, data, resolveTrainConfig({ ...base, cacheFeatures: false }), b.fingerprint);
    expect(tf.memory().numTensors).toBe(before);
    expect([once.embedded, plain.embedded, once.cached]).toEqual([true, false, false]);
    for (const [n, p] of once.state.params) {
      const q = plain.state.params.get(n)!.data;
      const scale = Math.max(...Array.from(q, Math.abs));
      expect(Math.max(...Array.from(p.data, (v, i) => Math.abs(v - q[i]))) / scale, n).toBeLessThan(1e-5);
    }
    expect(once.history.map((h) => h.valAccuracy)).toEqual(plain.history.map((h) => h.valAccuracy));
  });

  it('no embedding cache where a protocol tunes the embedding, with augmentation, or past the budget', async () => {
    const data = { train: strokes(8, 3), val: [], classes };
    const base = { epochs: 1, batch: 8, warmupEpochs: 0, seed: 5 };
    expect((await train(model, pre, data, resolveTrainConfig({ ...base, protocol: parseSpec('bias') }), b.fingerprint)).embedded).toBe(false);
    expect((await train(model, pre, data, resolveTrainConfig({ ...base, protocol: parseSpec('vpt-deep-2'), augment: true }), b.fingerprint)).embedded).toBe(false);
    const { embeddingsFit } = await import('../../src/core/train/loop');
    expect(embeddingsFit(model, 8)).toBe(true);
    expect(embeddingsFit(model, 8, 8 * 65 * 64 * 4 - 1)).toBe(false); // 65 tokens x 64 floats per image
  });

  it('a task for another protocol size or class count is refused, naming the tensor', () => {
    const s = initState(protocolOf('lora'), b.weights, { name: 'lora', n: 2 }, 3, new Rng(1));
    expect(() => checkParams(protocolOf('lora'), { ...s, protocol: { name: 'lora', n: 4 } }, model.config, 'x.vpt.safetensors')).toThrow(/^x\.vpt\.safetensors: tensor "lora\.0\.q\.A" is \[2,64\], the loaded backbone needs \[4,64\]/);
    const bad = new Map(s.params);
    bad.delete('lora.3.v.B');
    expect(() => checkParams(protocolOf('lora'), { ...s, params: bad }, model.config, 'y')).toThrow(/lacks tensor "lora\.3\.v\.B"/);
    expect(PROTOCOLS.map((p) => p.name)).toEqual(['full', 'linear', 'partial', 'mlp', 'bias', 'adapter', 'lora', 'vpt-shallow', 'vpt-deep']);
  });
});
