/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors).
 * Layout: u64 LE header length N, N bytes of JSON header, then the data
 * buffer. Every tensor is widened to float32 (F16, BF16, F64) or int32
 * (I64, within range) on read, since the model computes in float32.
 */
import { VptError } from '../errors';
import { bf16ToF32, f16ToF32, f32ToF16 } from './half';
import { numel, type HostTensor, type TensorMap } from './tensor-map';

/** The format's own limit on the JSON header (safetensors spec). */
export const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_BYTES: Record<string, number> = {
  F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8,
};

export interface SafetensorsFile {
  tensors: TensorMap;
  /** `__metadata__`: string to string only, as the format requires. */
  metadata: Map<string, string>;
}

interface Entry { name: string; dtype: string; shape: number[]; begin: number; end: number }

function parseHeader(buf: Uint8Array, file: string): { entries: Entry[]; metadata: Map<string, string>; dataStart: number } {
  if (buf.byteLength < 8) throw new VptError(file, `not a safetensors file: ${buf.byteLength} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER_BYTES) throw new VptError(file, `safetensors header length ${n} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`);
  if (n < 2) throw new VptError(file, `safetensors header length ${n} is too small`);
  if (8 + n > buf.byteLength) throw new VptError(file, `safetensors header claims ${n} bytes but the file has only ${buf.byteLength - 8} after the length (truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n)));
  } catch {
    throw new VptError(file, 'safetensors header is not valid UTF-8 JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new VptError(file, 'safetensors header is not a JSON object');
  }
  const dataStart = 8 + n;
  const dataLen = buf.byteLength - dataStart;
  const metadata = new Map<string, string>();
  const entries: Entry[] = [];
  // Object.entries only lists own properties, so `__proto__` arrives as a plain name.
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new VptError(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new VptError(file, `__metadata__ value "${k}" is not a string`);
        metadata.set(k, v);
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') throw new VptError(file, `tensor "${name}": entry is not an object`);
    // Own keys only: `in` would accept "toString" from Object.prototype (found by the fuzz test).
    if (typeof e.dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, e.dtype)) throw new VptError(file, `tensor "${name}": unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    if (!Array.isArray(e.shape) || !e.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) throw new VptError(file, `tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((s) => Number.isSafeInteger(s) && s >= 0) || off[1] < off[0]) throw new VptError(file, `tensor "${name}": data_offsets ${JSON.stringify(off)} are not [begin, end]`);
    const shape = e.shape as number[];
    // Compute the byte size in BigInt so an overflowing product cannot wrap.
    let bytes = BigInt(DTYPE_BYTES[e.dtype]);
    for (const s of shape) bytes *= BigInt(s);
    const span = BigInt(off[1] - off[0]);
    if (bytes !== span) throw new VptError(file, `tensor "${name}": ${e.dtype} ${JSON.stringify(shape)} needs ${bytes} bytes but its offsets span ${span}`);
    if (off[1] > dataLen) throw new VptError(file, `tensor "${name}": data_offsets [${off[0]}, ${off[1]}] lie outside the ${dataLen}-byte data buffer (truncated?)`);
    entries.push({ name, dtype: e.dtype, shape, begin: off[0], end: off[1] });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) throw new VptError(file, `tensor "${e.name}": data overlaps the previous tensor (offset ${e.begin} < ${pos})`);
    if (e.begin > pos) throw new VptError(file, `tensor "${e.name}": gap of ${e.begin - pos} bytes before it in the data buffer`);
    pos = e.end;
  }
  if (pos !== dataLen) throw new VptError(file, `data buffer has ${dataLen - pos} trailing bytes not covered by any tensor`);
  return { entries, metadata, dataStart };
}

function decode(buf: Uint8Array, start: number, e: Entry, file: string): HostTensor {
  const n = numel(e.shape);
  const dv = new DataView(buf.buffer, buf.byteOffset + start + e.begin, e.end - e.begin);
  switch (e.dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
    case 'F16': case 'BF16': {
      const out = new Float32Array(n);
      const f = e.dtype === 'F16' ? f16ToF32 : bf16ToF32;
      for (let i = 0; i < n; i++) out[i] = f(dv.getUint16(i * 2, true));
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
    default: { // I64
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) throw new VptError(file, `tensor "${e.name}": I64 value ${v} does not fit in int32`);
        out[i] = Number(v);
      }
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
  }
}

/** Parse a whole safetensors file held in memory. `file` names it in errors. */
export function readSafetensors(bytes: Uint8Array | ArrayBuffer, file: string): SafetensorsFile {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const { entries, metadata, dataStart } = parseHeader(buf, file);
  const tensors: TensorMap = new Map();
  for (const e of entries) tensors.set(e.name, decode(buf, dataStart, e, file));
  return { tensors, metadata };
}

export type WriteDtype = 'F32' | 'F16';

/**
 * Serialise tensors (names sorted, as the Python library writes them).
 * Float tensors are written as `dtype` (F32 default); Int32 data as I32.
 */
export function writeSafetensors(tensors: TensorMap, metadata?: Map<string, string> | Record<string, string>, dtype: WriteDtype = 'F32'): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = Object.create(null);
  const md = metadata instanceof Map ? Object.fromEntries(metadata) : metadata;
  if (md && Object.keys(md).length) header['__metadata__'] = md;
  let off = 0;
  const plan: { t: HostTensor; dt: string; begin: number }[] = [];
  for (const name of names) {
    const t = tensors.get(name)!;
    const dt = t.data instanceof Int32Array ? 'I32' : dtype;
    const bytes = numel(t.shape) * DTYPE_BYTES[dt];
    if (t.data.length !== numel(t.shape)) throw new VptError(name, `data length ${t.data.length} does not match shape ${JSON.stringify(t.shape)}`);
    header[name] = { dtype: dt, shape: t.shape, data_offsets: [off, off + bytes] };
    plan.push({ t, dt, begin: off });
    off += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces to a multiple of 8 bytes, as the reference writer does.
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.byteLength + off);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, json.byteLength, true);
  dv.setUint32(4, 0, true);
  out.set(json, 8);
  const base = 8 + json.byteLength;
  for (const { t, dt, begin } of plan) {
    const n = t.data.length;
    for (let i = 0; i < n; i++) {
      const at = base + begin + i * DTYPE_BYTES[dt];
      if (dt === 'I32') dv.setInt32(at, t.data[i], true);
      else if (dt === 'F16') dv.setUint16(at, f32ToF16(t.data[i]), true);
      else dv.setFloat32(at, t.data[i], true);
    }
  }
  return out;
}

/** True when the bytes start like a safetensors file (a plausible header). */
export function looksLikeSafetensors(buf: Uint8Array): boolean {
  return buf.byteLength >= 10 && buf[8] === 0x7b; // '{'
}
