import { describe, expect, it } from 'vitest';
import { VptError } from '../../src/core/errors';
import { MAX_HEADER_BYTES, readSafetensors, writeSafetensors } from '../../src/core/io/safetensors';
import type { TensorMap } from '../../src/core/io/tensor-map';

function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, lengthOverride ?? json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function expectError(bytes: Uint8Array, pattern: RegExp) {
  let err: unknown;
  try { readSafetensors(bytes, 'bad.safetensors'); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(VptError);
  expect((err as VptError).message).toMatch(/^bad\.safetensors: /);
  expect((err as VptError).message).toMatch(pattern);
}

describe('safetensors', () => {
  it('round-trips float32, int32 and metadata, padding the header to 8 bytes', () => {
    const t: TensorMap = new Map([
      ['b', { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, -2.5, 3e-8, 4]) }],
      ['a', { dtype: 'I32', shape: [3], data: new Int32Array([7, -1, 2 ** 30]) }],
    ]);
    const bytes = writeSafetensors(t, { format: 'x', nested: '{"k":1}' });
    expect(new DataView(bytes.buffer).getUint32(0, true) % 8).toBe(0);
    const r = readSafetensors(bytes, 'f');
    expect([...r.tensors.keys()]).toEqual(['a', 'b']);
    expect(Array.from(r.tensors.get('b')!.data)).toEqual(Array.from(new Float32Array([1, -2.5, 3e-8, 4])));
    expect(Array.from(r.tensors.get('a')!.data)).toEqual([7, -1, 2 ** 30]);
    expect(r.metadata.get('nested')).toBe('{"k":1}');
  });

  it('widens F16 and BF16, and writes float16 on request', () => {
    const half = writeSafetensors(new Map([['h', { dtype: 'F32', shape: [4], data: new Float32Array([1, -0.5, 65504, 0.1]) }]]), undefined, 'F16');
    const r = readSafetensors(half, 'f').tensors.get('h')!;
    expect(r.dtype).toBe('F16');
    expect(r.data[0]).toBe(1); expect(r.data[1]).toBe(-0.5); expect(r.data[2]).toBe(65504);
    expect(Math.abs(r.data[3] - 0.1)).toBeLessThan(0.1 * 2 ** -11);
    // bf16 0x3f80 = 1.0, 0xc000 = -2.0
    const bf = rawFile({ x: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array([0x80, 0x3f, 0x00, 0xc0]));
    expect(Array.from(readSafetensors(bf, 'f').tensors.get('x')!.data)).toEqual([1, -2]);
  });

  it('reads I64 into int32 and refuses values that do not fit', () => {
    const d = new Uint8Array(16);
    const dv = new DataView(d.buffer);
    dv.setBigInt64(0, 5n, true); dv.setBigInt64(8, -3n, true);
    expect(Array.from(readSafetensors(rawFile({ x: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, d), 'f').tensors.get('x')!.data)).toEqual([5, -3]);
    dv.setBigInt64(8, 2n ** 40n, true);
    expectError(rawFile({ x: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, d), /does not fit in int32/);
  });

  it('rejects malformed and malicious files with specific errors', () => {
    const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    expectError(new Uint8Array(3), /shorter than the 8-byte header length/);
    expectError(rawFile(ok, new Uint8Array(8)).subarray(0, 20), /truncated/);
    expectError(rawFile(ok, new Uint8Array(8), 10_000), /truncated/);
    expectError(rawFile(ok, new Uint8Array(8), MAX_HEADER_BYTES + 1), /exceeds the format's limit/);
    expectError(rawFile('{not json', new Uint8Array(0)), /not valid UTF-8 JSON/);
    expectError(rawFile('[1,2]'), /not a JSON object/);
    expectError(rawFile({ x: { dtype: 'Q7', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /unsupported dtype "Q7"/);
    expectError(rawFile({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /needs 12 bytes but its offsets span 8/);
    expectError(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)), /outside the 4-byte data buffer/);
    expectError(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /overlaps/);
    expectError(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /gap of 4 bytes/);
    expectError(rawFile(ok, new Uint8Array(12)), /4 trailing bytes/);
    expectError(rawFile({ x: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, new Uint8Array(8)), /needs \d+ bytes/);
    expectError(rawFile({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, new Uint8Array(8)), /not a list of non-negative integers/);
    expectError(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, new Uint8Array(8)), /not \[begin, end\]/);
    expectError(rawFile({ __metadata__: { a: 1 } }), /not a string/);
  });

  it('treats __proto__ as an ordinary tensor name (no prototype pollution)', () => {
    const f = rawFile('{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"__proto__":"x","polluted":"y"}}', new Uint8Array(4));
    const r = readSafetensors(f, 'f');
    expect(r.tensors.get('__proto__')!.shape).toEqual([1]);
    expect(r.metadata.get('__proto__')).toBe('x');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('dtype');
  });
});
