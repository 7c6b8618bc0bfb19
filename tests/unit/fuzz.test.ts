/**
 * Property-based fuzzing of every reader that takes a stranger's bytes:
 * safetensors, npz, task files, checkpoints, image headers and the CLI's
 * image decoder.
 * Each must return a result or throw VptError: never a TypeError, a
 * RangeError from a huge allocation, or a hang (vitest's timeout).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jpegWasmReady } from '../../src/cli/jpeg-wasm';
import { decodeImage } from '../../src/cli/node-io';
import { VptError } from '../../src/core/errors';
import { sniffImage } from '../../src/core/image/sniff';
import { readNpz } from '../../src/core/io/npz';
import { readSafetensors, writeSafetensors } from '../../src/core/io/safetensors';
import type { TensorMap } from '../../src/core/io/tensor-map';
import { readTask, writeTask } from '../../src/core/io/task-file';
import { readCheckpoint, writeCheckpoint } from '../../src/core/train/checkpoint';
import { resolveTrainConfig } from '../../src/core/train/config';
import { Rng } from '../../src/core/train/rng';
import { fromVptState } from '../../src/core/tuning/prompt';
import { initVpt } from '../../src/core/tuning/vpt';
import { npy, zip } from './zipmaker';

// FUZZ_RUNS=5000 for a longer hunt; CI runs the default.
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);

/** The property every reader must have: a value, or our own error. */
function onlyVptErrors(f: () => unknown): boolean {
  try { f(); return true; } catch (e) {
    if (e instanceof VptError) return true;
    throw e; // fast-check reports the input that produced a foreign error
  }
}

async function onlyVptErrorsAsync(f: () => Promise<unknown>): Promise<boolean> {
  try { await f(); return true; } catch (e) {
    if (e instanceof VptError) return true;
    throw e;
  }
}

/** Mutations of a valid file: byte flips, a cut, an insertion, a 32-bit write of a nasty value. */
function mutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  const flips = fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((fl) => {
    const b = base.slice();
    for (const [i, v] of fl) b[i] = v;
    return b;
  });
  const cut = fc.nat(base.length).map((n) => base.slice(0, n));
  const insert = fc.tuple(fc.nat(base.length), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([i, x]) => {
    const b = new Uint8Array(base.length + x.length);
    b.set(base.subarray(0, i)); b.set(x, i); b.set(base.subarray(i), i + x.length);
    return b;
  });
  const word = fc.tuple(fc.nat(Math.max(0, base.length - 4)), fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff, 0x80000000, 65535, 100_000_001)).map(([i, v]) => {
    const b = base.slice();
    new DataView(b.buffer).setUint32(i, v >>> 0, true);
    return b;
  });
  return fc.oneof(flips, cut, insert, word);
}

const smallTensors: TensorMap = new Map([
  ['a', { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
  ['b', { dtype: 'I32', shape: [2], data: new Int32Array([7, 8]) }],
]);

/** A safetensors header built from parts, some sane and some hostile. */
const headerEntry = fc.record({
  dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'U8', 'F8_E4M3'), fc.string(), fc.integer()),
  shape: fc.oneof(fc.array(fc.nat(8), { maxLength: 4 }), fc.array(fc.constantFrom(0, 1, 2 ** 31, 2 ** 53 - 1, -1, 1.5), { maxLength: 4 }), fc.constant('x')),
  data_offsets: fc.oneof(fc.tuple(fc.nat(64), fc.nat(64)), fc.array(fc.integer(), { maxLength: 3 }), fc.constant(null)),
});

function rawSafetensors(header: unknown, dataLen: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  return out;
}

describe('fuzzing the readers (fast-check)', () => {
  it('safetensors: random bytes, mutated files and hostile headers give a value or a VptError', () => {
    const good = writeSafetensors(smallTensors, { format: 'x' });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => onlyVptErrors(() => readSafetensors(b, 'r'))), { numRuns: RUNS });
    fc.assert(fc.property(mutated(good), (b) => onlyVptErrors(() => readSafetensors(b, 'm'))), { numRuns: RUNS });
    const keys = fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', '__metadata__', 'toString', 'prototype'));
    fc.assert(fc.property(fc.dictionary(keys, headerEntry, { maxKeys: 4 }), fc.nat(96), (h, n) => {
      const ok = onlyVptErrors(() => readSafetensors(rawSafetensors(h, n), 'h'));
      // No key, however named, reaches Object.prototype.
      return ok && ({} as Record<string, unknown>).dtype === undefined && Object.getPrototypeOf({}) === Object.prototype;
    }), { numRuns: RUNS });
  });

  it('npz: random bytes and mutated archives (stored and deflated) give a value or a VptError', async () => {
    const stored = zip([['a.npy', npy([2, 2], new Float32Array([1, 2, 3, 4]))], ['b.npy', npy([3], new Float32Array([5, 6, 7]))]], false);
    const deflated = zip([['a.npy', npy([64], new Float32Array(64))]], true);
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 128 }), (b) => onlyVptErrorsAsync(() => readNpz(b, 'r.npz'))), { numRuns: RUNS });
    await fc.assert(fc.asyncProperty(fc.oneof(mutated(stored), mutated(deflated)), (b) => onlyVptErrorsAsync(() => readNpz(b, 'm.npz'))), { numRuns: RUNS });
    // Hostile .npy headers inside a valid zip.
    const npyHeader = fc.record({
      descr: fc.oneof(fc.constantFrom('<f4', '<f8', '<i8', '>f4', '|u1', '<c8'), fc.string()),
      shape: fc.array(fc.oneof(fc.nat(4), fc.constantFrom(2 ** 40, 10 ** 30)), { maxLength: 4 }),
      fortran: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(npyHeader, fc.nat(64), async (h, n) => {
      const text = `{'descr': '${h.descr}', 'fortran_order': ${h.fortran ? 'True' : 'False'}, 'shape': (${h.shape.join(', ')},), }`;
      const head = new TextEncoder().encode(text);
      const arr = new Uint8Array(10 + head.length + n);
      arr.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
      new DataView(arr.buffer).setUint16(8, head.length, true);
      arr.set(head, 10);
      return onlyVptErrorsAsync(() => readNpz(zip([['x.npy', arr]], false), 'h.npz'));
    }), { numRuns: RUNS });
  });

  it('task files: mutated files and hostile metadata give a task or a VptError', () => {
    const cfg = { imageSize: 32, patchSize: 8, hiddenSize: 8, numLayers: 2, numHeads: 2, mlpDim: 16, layerNormEps: 1e-6 };
    const state = fromVptState(initVpt(cfg, 'deep', 2, 3, new Rng(1)));
    const good = writeTask(state, { classes: ['a', 'b', 'c'] });
    fc.assert(fc.property(mutated(good), (b) => onlyVptErrors(() => readTask(b, 'm.vpt.safetensors'))), { numRuns: RUNS });
    const { tensors } = readSafetensors(good, 'g');
    const json = fc.oneof(fc.json(), fc.constantFrom('{"__proto__":{"polluted":1}}', '["a","b","c"]', '[1,2,3]', 'null', '"vpt-deep-2"'));
    const meta = fc.record({
      format: fc.oneof(fc.constant('vpt-task'), fc.string()),
      protocol: fc.oneof(fc.constantFrom('vpt-deep-2', 'linear', 'lora-0', 'vpt-deep-999999999999', 'nope', '__proto__'), fc.string()),
      classes: json, backbone: json, preprocessing: json, training: json,
    }, { requiredKeys: [] });
    fc.assert(fc.property(meta, (m) => {
      const ok = onlyVptErrors(() => readTask(writeSafetensors(tensors, m as Record<string, string>), 'h.vpt.safetensors'));
      return ok && ({} as Record<string, unknown>).polluted === undefined;
    }), { numRuns: RUNS });
  });

  it('checkpoints: mutated files and hostile metadata give a checkpoint or a VptError', () => {
    const cfg = { imageSize: 32, patchSize: 8, hiddenSize: 8, numLayers: 2, numHeads: 2, mlpDim: 16, layerNormEps: 1e-6 };
    const state = fromVptState(initVpt(cfg, 'deep', 2, 3, new Rng(1)));
    const good = writeCheckpoint({
      config: resolveTrainConfig({ protocol: { name: 'vpt-deep', n: 2 } }), classes: ['a', 'b', 'c'], fingerprint: 'f', epoch: 1, step: 4, state,
      optimizer: { step: 4, slots: { prompts: [new Float32Array(32)] } }, rng: [1, 2, 3, 4], best: { epoch: 1, valAccuracy: 0.5, state }, history: [],
    });
    expect(readCheckpoint(good, 'ok').epoch).toBe(1);
    fc.assert(fc.property(mutated(good), (b) => onlyVptErrors(() => readCheckpoint(b, 'm.ckpt'))), { numRuns: RUNS });
    const { tensors, metadata } = readSafetensors(good, 'g');
    const keys = ['config', 'classes', 'state_shape', 'optimizer_slots', 'best', 'history', 'rng', 'epoch'] as const;
    const hostile = fc.constantFrom('null', '[]', '{}', '-1', '1e9', '"x"', '{"prompts":-1}', '{"prompts":1e12}', '{"protocol":null}', '{"__proto__":{"x":1}}', '{"shapes":{"prompts":[-1,0,8]}}');
    fc.assert(fc.property(fc.constantFrom(...keys), fc.oneof(hostile, fc.json()), (k, v) => {
      const md = Object.fromEntries(metadata);
      md[k] = v;
      return onlyVptErrors(() => readCheckpoint(writeSafetensors(tensors, md), 'h.ckpt'));
    }), { numRuns: RUNS });
  });

  it('images: random bytes and mutated real images give pixels or a VptError (the WebAssembly JPEG decoder started for each)', async () => {
    const dir = join(__dirname, '../fixtures/images');
    const files = readdirSync(dir).filter((f) => /\.(png|jpg|gif)$/.test(f) && f !== 'huge.png').map((f) => new Uint8Array(readFileSync(join(dir, f))));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => onlyVptErrors(() => sniffImage(b, 'r'))), { numRuns: RUNS });
    await fc.assert(fc.asyncProperty(fc.oneof(...files.map(mutated)), async (b) => { await jpegWasmReady(); return onlyVptErrors(() => decodeImage(b, 'm')); }), { numRuns: RUNS });
  });

  it('regressions the fuzzer found: dtype names that exist only on Object.prototype', async () => {
    expect(() => readSafetensors(rawSafetensors({ w: { dtype: 'toString', shape: [], data_offsets: [0, 0] } }, 0), 'p.safetensors')).toThrow(/^p\.safetensors: tensor "w": unsupported dtype "toString"/);
    const text = "{'descr': 'constructor', 'fortran_order': False, 'shape': (1,), }";
    const arr = new Uint8Array(10 + text.length + 4);
    arr.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    new DataView(arr.buffer).setUint16(8, text.length, true);
    arr.set(new TextEncoder().encode(text), 10);
    await expect(readNpz(zip([['x.npy', arr]], false), 'c.npz')).rejects.toThrow(/unsupported \.npy dtype constructor/);
  });

  it('the property itself fails on a foreign error (so the fuzz tests can fail)', () => {
    expect(() => onlyVptErrors(() => { throw new TypeError('x'); })).toThrow(TypeError);
    expect(onlyVptErrors(() => { throw new VptError('f', 'p'); })).toBe(true);
  });
});
