/** Test helper: build .npy and .zip bytes (stored or deflated) without Python. */
import { deflateRawSync } from 'node:zlib';

export function npy(shape: number[], data: Float32Array, descr = '<f4'): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

export function zip(entries: [string, Uint8Array][], deflate: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  for (const [name, raw] of entries) {
    const nm = new TextEncoder().encode(name);
    const body = deflate ? new Uint8Array(deflateRawSync(raw)) : raw;
    const loc = new Uint8Array(30 + nm.length);
    const dv = new DataView(loc.buffer);
    dv.setUint32(0, 0x04034b50, true); dv.setUint16(8, deflate ? 8 : 0, true);
    dv.setUint32(18, body.length, true); dv.setUint32(22, raw.length, true); dv.setUint16(26, nm.length, true);
    loc.set(nm, 30);
    const cen = new Uint8Array(46 + nm.length);
    const cv = new DataView(cen.buffer);
    cv.setUint32(0, 0x02014b50, true); cv.setUint16(10, deflate ? 8 : 0, true);
    cv.setUint32(20, body.length, true); cv.setUint32(24, raw.length, true); cv.setUint16(28, nm.length, true);
    cv.setUint32(42, off, true);
    cen.set(nm, 46);
    parts.push(loc, body);
    central.push(cen);
    off += loc.length + body.length;
  }
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true); ev.setUint16(8, entries.length, true); ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true); ev.setUint32(16, off, true);
  const all = [...parts, ...central, eocd];
  const out = new Uint8Array(all.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of all) { out.set(p, o); o += p.length; }
  return out;
}
