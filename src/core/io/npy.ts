/**
 * `.npy` reader (numpy format versions 1-3). The header is a Python dict
 * literal; it is parsed with patterns, never evaluated.
 */
import { VptError } from '../errors';
import { f16ToF32 } from './half';
import type { HostTensor } from './tensor-map';

const DESCR: Record<string, { bytes: number; dtype: string }> = {
  '<f4': { bytes: 4, dtype: 'F32' }, '<f2': { bytes: 2, dtype: 'F16' }, '<f8': { bytes: 8, dtype: 'F64' },
  '<i4': { bytes: 4, dtype: 'I32' }, '<i8': { bytes: 8, dtype: 'I64' },
};

export function readNpy(buf: Uint8Array, where: string): HostTensor {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.byteLength < 10 || magic.some((m, i) => buf[i] !== m)) throw new VptError(where, 'not a .npy array (bad magic)');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const major = buf[6];
  let hlen: number, hstart: number;
  if (major === 1) { hlen = dv.getUint16(8, true); hstart = 10; }
  else if (major === 2 || major === 3) {
    if (buf.byteLength < 12) throw new VptError(where, 'truncated .npy header');
    hlen = dv.getUint32(8, true); hstart = 12;
  } else throw new VptError(where, `unsupported .npy version ${major}`);
  if (hstart + hlen > buf.byteLength) throw new VptError(where, 'truncated .npy header');
  const header = new TextDecoder().decode(buf.subarray(hstart, hstart + hlen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeStr = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeStr === undefined) throw new VptError(where, 'malformed .npy header');
  const key = descr === '|f4' ? '<f4' : descr;
  const d = Object.hasOwn(DESCR, key) ? DESCR[key] : undefined; // own keys only: never Object.prototype's
  if (!d) throw new VptError(where, `unsupported .npy dtype ${descr} (supported: little-endian float16/32/64, int32/64)`);
  if (fortran === 'True') throw new VptError(where, 'Fortran-ordered arrays are not supported');
  const parts = shapeStr.split(',').map((s) => s.trim()).filter((s) => s.length);
  if (!parts.every((s) => /^\d+L?$/.test(s))) throw new VptError(where, `bad .npy shape (${shapeStr})`);
  const shape = parts.map((s) => parseInt(s, 10));
  let count = 1n;
  for (const s of shape) count *= BigInt(s);
  const dataStart = hstart + hlen;
  const need = count * BigInt(d.bytes);
  if (need !== BigInt(buf.byteLength - dataStart)) throw new VptError(where, `.npy data is ${buf.byteLength - dataStart} bytes but ${descr} ${JSON.stringify(shape)} needs ${need}`);
  const n = Number(count);
  const at = (i: number) => dataStart + i * d.bytes;
  if (d.dtype === 'I32' || d.dtype === 'I64') {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = d.dtype === 'I32' ? dv.getInt32(at(i), true) : Number(dv.getBigInt64(at(i), true));
      if (!Number.isSafeInteger(v) || v > 2147483647 || v < -2147483648) throw new VptError(where, `int64 value ${v} does not fit in int32`);
      out[i] = v;
    }
    return { dtype: d.dtype, shape, data: out };
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = d.dtype === 'F32' ? dv.getFloat32(at(i), true) : d.dtype === 'F16' ? f16ToF32(dv.getUint16(at(i), true)) : dv.getFloat64(at(i), true);
  }
  return { dtype: d.dtype, shape, data: out };
}
