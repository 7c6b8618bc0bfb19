/** Weight formats, naming schemes, architecture inference, fingerprints. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VptError } from '../../src/core/errors';
import { readNpz } from '../../src/core/io/npz';
import { readSafetensors, writeSafetensors } from '../../src/core/io/safetensors';
import type { TensorMap } from '../../src/core/io/tensor-map';
import { loadBackbone } from '../../src/core/vit/load';
import { FIX, fixtureBackbone, TINY, tinyBackbone } from './helpers';
import { npy, zip } from './zipmaker';

const hfTensors = () => readSafetensors(readFileSync(join(FIX, 'backbone.safetensors')), 'x').tensors;
const hfConfig = () => JSON.parse(readFileSync(join(FIX, 'config.json'), 'utf8'));

/** The fixture's HF weights renamed and re-laid out as timm writes them. */
function toTimm(hf: TensorMap): TensorMap {
  const t: TensorMap = new Map();
  const g = (k: string) => hf.get(k)!;
  const cat = (ks: string[]) => {
    const parts = ks.map((k) => g(k));
    const data = new Float32Array(parts.reduce((s, p) => s + p.data.length, 0));
    let o = 0;
    for (const p of parts) { data.set(p.data, o); o += p.data.length; }
    return { dtype: 'F32', shape: [parts.reduce((s, p) => s + p.shape[0], 0), ...parts[0].shape.slice(1)], data };
  };
  t.set('patch_embed.proj.weight', g('embeddings.patch_embeddings.projection.weight'));
  t.set('patch_embed.proj.bias', g('embeddings.patch_embeddings.projection.bias'));
  t.set('cls_token', g('embeddings.cls_token'));
  t.set('pos_embed', g('embeddings.position_embeddings'));
  t.set('norm.weight', g('layernorm.weight'));
  t.set('norm.bias', g('layernorm.bias'));
  t.set('head.weight', { dtype: 'F32', shape: [2, 48], data: new Float32Array(96) });
  t.set('head.bias', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
  for (let i = 0; i < 3; i++) {
    const h = `encoder.layer.${i}.`, b = `blocks.${i}.`;
    const qkv = ['query', 'key', 'value'].map((n) => `${h}attention.attention.${n}`);
    t.set(`${b}attn.qkv.weight`, cat(qkv.map((k) => `${k}.weight`)));
    t.set(`${b}attn.qkv.bias`, cat(qkv.map((k) => `${k}.bias`)));
    const map: [string, string][] = [['norm1', 'layernorm_before'], ['norm2', 'layernorm_after'], ['attn.proj', 'attention.output.dense'], ['mlp.fc1', 'intermediate.dense'], ['mlp.fc2', 'output.dense']];
    for (const [tm, hn] of map) for (const s of ['weight', 'bias']) t.set(`${b}${tm}.${s}`, g(`${h}${hn}.${s}`));
  }
  return t;
}

async function errorOf(p: Promise<unknown>): Promise<VptError> {
  try { await p; } catch (e) { expect(e).toBeInstanceOf(VptError); return e as VptError; }
  throw new Error('expected an error');
}

describe('backbone loading', () => {
  it('npz and HF safetensors map to identical weights and one fingerprint', async () => {
    const a = await fixtureBackbone('safetensors');
    const b = await fixtureBackbone('npz');
    expect(a.format).toBe('hf');
    expect(b.format).toBe('npz');
    expect(a.weights.config).toEqual(b.weights.config);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(Array.from(a.weights.blocks[2].qkvW)).toEqual(Array.from(b.weights.blocks[2].qkvW));
    expect(Array.from(a.weights.patchW)).toEqual(Array.from(b.weights.patchW));
  });

  it('reads timm naming (fused qkv), lists the ignored head, same fingerprint', async () => {
    const bytes = writeSafetensors(toTimm(hfTensors()));
    const t = await loadBackbone({ name: 'timm.safetensors', bytes });
    const ref = await fixtureBackbone('safetensors');
    expect(t.format).toBe('timm');
    expect(t.ignored).toEqual(['head.bias', 'head.weight']);
    expect(t.fingerprint).toBe(ref.fingerprint);
    expect(Array.from(t.weights.blocks[1].qkvW)).toEqual(Array.from(ref.weights.blocks[1].qkvW));
    expect(t.weights.config.numHeads).toBe(1); // not visible in shapes: 48 is no preset width
  });

  it('accepts a vit. prefix and ignores pooler/classifier keys', async () => {
    const hf = hfTensors();
    const t: TensorMap = new Map([...hf].map(([k, v]) => [`vit.${k}`, v]));
    t.set('vit.pooler.dense.weight', { dtype: 'F32', shape: [48, 48], data: new Float32Array(48 * 48) });
    t.set('classifier.weight', { dtype: 'F32', shape: [3, 48], data: new Float32Array(144) });
    const b = await loadBackbone({ name: 'p.safetensors', bytes: writeSafetensors(t), config: hfConfig() });
    expect(b.ignored).toEqual(['classifier.weight', 'vit.pooler.dense.weight']);
    expect(b.fingerprint).toBe((await fixtureBackbone('npz')).fingerprint);
  });

  it('infers the architecture without config.json, with a warning', async () => {
    const b = await loadBackbone({ name: 'n.safetensors', bytes: readFileSync(join(FIX, 'backbone.safetensors')) });
    expect(b.weights.config).toMatchObject({ imageSize: 32, patchSize: 8, hiddenSize: 48, numLayers: 3, mlpDim: 96 });
    expect(b.warnings.join(' ')).toMatch(/inferred/);
  });

  it('takes LayerNorm eps from config.json; HF default 1e-12 when a config omits it', async () => {
    const bytes = readFileSync(join(FIX, 'backbone.safetensors'));
    const { layer_norm_eps: _, ...noEps } = hfConfig();
    expect((await loadBackbone({ name: 'x', bytes, config: noEps })).weights.config.layerNormEps).toBe(1e-12);
    expect((await loadBackbone({ name: 'x', bytes, config: hfConfig() })).weights.config.layerNormEps).toBe(1e-6);
  });

  it('lists missing, mis-shaped and unexpected keys in one error naming the file', async () => {
    const t = hfTensors();
    t.delete('encoder.layer.1.output.dense.bias');
    t.set('layernorm.weight', { dtype: 'F32', shape: [47], data: new Float32Array(47) });
    t.set('mystery.tensor', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    const e = await errorOf(loadBackbone({ name: 'bad.safetensors', bytes: writeSafetensors(t), config: hfConfig() }));
    expect(e.message).toMatch(/^bad\.safetensors: missing keys: encoder\.layer\.1\.output\.dense\.bias; mis-shaped keys: layernorm\.weight \(shape \[47\], expected \[48\]\); unexpected keys: mystery\.tensor$/);
  });

  it('refuses NaN weights, a task file, and unknown naming', async () => {
    const t = hfTensors();
    const w = t.get('layernorm.weight')!;
    t.set('layernorm.weight', { ...w, data: Float32Array.from(w.data, (v, i) => (i === 3 ? NaN : v)) });
    expect((await errorOf(loadBackbone({ name: 'nan.safetensors', bytes: writeSafetensors(t), config: hfConfig() }))).message).toMatch(/NaN or Inf/);
    const task: TensorMap = new Map([['prompts', { dtype: 'F32', shape: [1, 2, 48], data: new Float32Array(96) }]]);
    expect((await errorOf(loadBackbone({ name: 't.safetensors', bytes: writeSafetensors(task) }))).message).toMatch(/task file .* not a backbone/);
    const odd: TensorMap = new Map([['w', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]]);
    expect((await errorOf(loadBackbone({ name: 'o.safetensors', bytes: writeSafetensors(odd) }))).message).toMatch(/not a ViT backbone/);
  });

  it('reads deflated npz (savez_compressed) like the stored one', async () => {
    const stored = await readNpz(readFileSync(join(FIX, 'backbone.npz')), 'b.npz');
    const entries: [string, Uint8Array][] = [...stored].map(([k, v]) => [`${k}.npy`, npy(v.shape, v.data as Float32Array)]);
    const deflated = zip(entries, true);
    const b = await loadBackbone({ name: 'c.npz', bytes: deflated });
    expect(b.fingerprint).toBe((await fixtureBackbone('npz')).fingerprint);
  });

  it('rejects corrupt npz files with specific errors', async () => {
    const good = zip([['a.npy', npy([2], new Float32Array([1, 2]))]], true);
    expect((await errorOf(readNpz(good.subarray(0, good.length - 30), 'cut.npz'))).message).toMatch(/^cut\.npz: .*(end-of-central-directory|central directory)/);
    const lying = zip([['a.npy', npy([3], new Float32Array([1, 2]))]], false);
    expect((await errorOf(readNpz(lying, 'lie.npz'))).message).toMatch(/lie\.npz: a\.npy: \.npy data is 8 bytes but <f4 \[3\] needs 12/);
    const junk = zip([['a.npy', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])]], false);
    expect((await errorOf(readNpz(junk, 'j.npz'))).message).toMatch(/bad magic/);
    const corrupt = zip([['a.npy', npy([2], new Float32Array([1, 2]))]], true);
    corrupt[35] ^= 0xff; corrupt[36] ^= 0xff;
    expect((await errorOf(readNpz(corrupt, 'z.npz'))).message).toMatch(/^z\.npz: a\.npy: /);
  });

  it('tiny-vit-mnist: HF folder and npz agree; preprocessing from preprocessor_config.json', async () => {
    const hf = await tinyBackbone();
    const npz = await loadBackbone({ name: 'b.npz', bytes: readFileSync(join(TINY, 'backbone.npz')) });
    expect(hf.fingerprint).toBe(npz.fingerprint);
    expect(hf.preprocessing).toMatchObject({ size: 32, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], source: 'preprocessor_config' });
    expect(npz.preprocessing.source).toBe('default');
    expect(npz.warnings.join(' ')).toMatch(/mean = std = 0\.5/);
  });
});
