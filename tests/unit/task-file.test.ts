import { describe, expect, it } from 'vitest';
import { VptError } from '../../src/core/errors';
import { readSafetensors, writeSafetensors } from '../../src/core/io/safetensors';
import { checkTaskAgainstBackbone, readTask, writeTask, type TaskMeta } from '../../src/core/io/task-file';
import { Rng } from '../../src/core/train/rng';
import { initVpt } from '../../src/core/tuning/vpt';
import { fromVptState, toVptState } from '../../src/core/tuning/prompt';
import { PRESETS } from '../../src/core/vit/config';
import { fixtureBackbone } from './helpers';

const cfg = { imageSize: 32, patchSize: 8, hiddenSize: 48, numLayers: 3, numHeads: 4, mlpDim: 96, layerNormEps: 1e-6 };

function meta(fp: string, classes = ['a', 'b', 'c']): TaskMeta {
  return { classes, backbone: { name: 'fx', architecture: 'ViT', fingerprint: fp, hidden_size: 48, num_layers: 3, patch_size: 8, image_size: 32 }, training: { lr: 1 }, metrics: { accuracy: 0.5 } };
}

function err(f: () => unknown): VptError {
  try { f(); } catch (e) { expect(e).toBeInstanceOf(VptError); return e as VptError; }
  throw new Error('expected an error');
}

describe('task files', () => {
  it('round-trips VPT-deep with metadata; loading checks the backbone', async () => {
    const b = await fixtureBackbone('npz');
    const s = initVpt(cfg, 'deep', 4, 3, new Rng(1));
    const bytes = writeTask(fromVptState(s), meta(b.fingerprint));
    const { tensors, metadata } = readSafetensors(bytes, 'x');
    expect(tensors.get('prompts')!.shape).toEqual([3, 4, 48]);
    expect(tensors.get('head.weight')!.shape).toEqual([3, 48]);
    expect(metadata.get('format')).toBe('vpt-task');
    expect(JSON.parse(metadata.get('classes')!)).toEqual(['a', 'b', 'c']);
    const t = readTask(bytes, 'x.vpt.safetensors');
    expect(Array.from(toVptState(t.state).prompts)).toEqual(Array.from(s.prompts));
    expect(t.state.protocol).toEqual({ name: 'vpt-deep', n: 4 });
    expect(t.warnings).toEqual([]);
    checkTaskAgainstBackbone(t, b.weights.config, b.fingerprint, 'x');
    expect(err(() => checkTaskAgainstBackbone(t, b.weights.config, 'f'.repeat(64), 'x.vpt.safetensors')).message).toMatch(/^x\.vpt\.safetensors: task belongs to backbone "fx"/);
    expect(err(() => checkTaskAgainstBackbone(t, { ...cfg, numLayers: 12 }, b.fingerprint, 'x')).message).toMatch(/prompts for 3 layers, the loaded backbone has 12/);
    expect(err(() => checkTaskAgainstBackbone(t, { ...cfg, hiddenSize: 64 }, b.fingerprint, 'x')).message).toMatch(/hidden size 48/);
  });

  it('official PyTorch naming round-trips, and a file without fingerprint is accepted with a warning', () => {
    const s = initVpt(cfg, 'deep', 4, 3, new Rng(2));
    const bytes = writeTask(fromVptState(s), { classes: ['x', 'y', 'z'] }, { naming: 'official' });
    const names = [...readSafetensors(bytes, 'o').tensors.keys()];
    expect(names).toEqual(['enc.transformer.deep_prompt_embeddings', 'enc.transformer.prompt_embeddings', 'head.last_layer.bias', 'head.last_layer.weight']);
    expect(readSafetensors(bytes, 'o').tensors.get('enc.transformer.deep_prompt_embeddings')!.shape).toEqual([2, 4, 48]);
    const t = readTask(bytes, 'o');
    expect(t.naming).toBe('official');
    expect(Array.from(toVptState(t.state).prompts)).toEqual(Array.from(s.prompts));
    expect(t.warnings[0]).toMatch(/no backbone fingerprint/);
    // A bare PyTorch export: no metadata at all, classes 0..C-1 unless named.
    const tensors = readSafetensors(bytes, 'o').tensors;
    const bare = writeSafetensors(tensors, { format: 'pt' });
    expect(readTask(bare, 'p').meta.classes).toEqual(['0', '1', '2']);
    expect(readTask(bare, 'p', ['cat', 'dog', 'owl']).meta.classes).toEqual(['cat', 'dog', 'owl']);
    expect(err(() => readTask(bare, 'p.safetensors', ['cat'])).message).toMatch(/1 class names for a head with 3 classes/);
    expect(readTask(bare, 'p').state.protocol.name).toBe('vpt-deep');
  });

  it('float16 on request halves the tensor bytes', () => {
    const s = initVpt(cfg, 'shallow', 4, 3, new Rng(3));
    const f32 = writeTask(fromVptState(s), { classes: ['a', 'b', 'c'] });
    const f16 = writeTask(fromVptState(s), { classes: ['a', 'b', 'c'] }, { dtype: 'F16' });
    const tp = toVptState(readTask(f16, 'h').state).prompts;
    expect(tp.length).toBe(4 * 48);
    expect(Math.max(...tp.map((v, i) => Math.abs(v - s.prompts[i])))).toBeLessThan(1e-3);
    expect(f32.byteLength - f16.byteLength).toBeGreaterThan(((4 * 48 + 3 * 48 + 3) * 2) - 16);
  });

  it('VPT-deep p=50 on ViT-B/16 with 300 classes: tensors plus a header under 64 KB', () => {
    const c = PRESETS.find((p) => p.name === 'ViT-B/16')!.config;
    const classes = Array.from({ length: 300 }, (_, i) => `class number ${i}`);
    const s = initVpt(c, 'deep', 50, 300, new Rng(4));
    const bytes = writeTask(fromVptState(s), { classes, metrics: { accuracy: 0.9, per_class: Object.fromEntries(classes.map((k) => [k, 0.5])) } });
    const tensorBytes = (12 * 50 * 768 + 300 * 768 + 300) * 4;
    expect(bytes.byteLength - tensorBytes).toBeLessThan(64 * 1024);
  });

  it('refuses a backbone where a task is expected, and malformed task tensors', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { FIX } = await import('./helpers');
    expect(err(() => readTask(readFileSync(join(FIX, 'backbone.safetensors')), 'bb.safetensors')).message).toMatch(/^bb\.safetensors: this is a backbone, not a task file/);
    const bad = writeSafetensors(new Map([
      ['prompts', { dtype: 'F32', shape: [1, 2, 48], data: new Float32Array(96) }],
      ['head.weight', { dtype: 'F32', shape: [3, 40], data: new Float32Array(120) }],
      ['head.bias', { dtype: 'F32', shape: [3], data: new Float32Array(3) }],
    ]));
    expect(err(() => readTask(bad, 'b')).message).toMatch(/head\.weight is \[3,40\] but the prompts have d = 48/);
  });
});
