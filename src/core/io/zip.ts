/**
 * Minimal zip reader for `.npz` (numpy.savez writes stored entries,
 * savez_compressed deflated ones). Reads the central directory, so entry
 * sizes come from there, never from a local header alone. Inflation uses
 * the standard DecompressionStream, present in browsers, workers and Node.
 */
import { VptError } from '../errors';

export interface ZipEntry { name: string; method: number; compressedSize: number; size: number; localOffset: number }

const EOCD_SIG = 0x06054b50;
const CEN_SIG = 0x02014b50;
const LOC_SIG = 0x04034b50;

export function listZip(buf: Uint8Array, file: string): ZipEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let eocd = -1;
  for (let i = buf.byteLength - 22; i >= Math.max(0, buf.byteLength - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === EOCD_SIG) { eocd = i; break; }
  }
  if (eocd < 0) throw new VptError(file, 'not a zip/npz archive (no end-of-central-directory record; truncated?)');
  const count = dv.getUint16(eocd + 10, true);
  const cdSize = dv.getUint32(eocd + 12, true);
  const cdOff = dv.getUint32(eocd + 16, true);
  if (cdOff === 0xffffffff || count === 0xffff) throw new VptError(file, 'zip64 archives are not supported');
  if (cdOff + cdSize > eocd) throw new VptError(file, 'zip central directory lies outside the file');
  const out: ZipEntry[] = [];
  let p = cdOff;
  for (let i = 0; i < count; i++) {
    if (p + 46 > eocd || dv.getUint32(p, true) !== CEN_SIG) throw new VptError(file, `zip central directory entry ${i} is corrupt`);
    const method = dv.getUint16(p + 10, true);
    const compressedSize = dv.getUint32(p + 20, true);
    const size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const localOffset = dv.getUint32(p + 42, true);
    if (p + 46 + nameLen > eocd) throw new VptError(file, `zip central directory entry ${i} is corrupt`);
    const name = new TextDecoder().decode(buf.subarray(p + 46, p + 46 + nameLen));
    if (compressedSize === 0xffffffff || size === 0xffffffff) throw new VptError(file, `${name}: zip64 entries are not supported`);
    out.push({ name, method, compressedSize, size, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

async function inflateRaw(data: Uint8Array, expected: number, where: string): Promise<Uint8Array> {
  const ds = new DecompressionStream('deflate-raw');
  const writer = ds.writable.getWriter();
  const done = writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close()).catch(() => undefined);
  const out = new Uint8Array(expected);
  let n = 0;
  const reader = ds.readable.getReader();
  try {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      // Bound the allocation by the declared size: a zip bomb stops here.
      if (n + value.byteLength > expected) throw new VptError(where, `inflates to more than its declared ${expected} bytes`);
      out.set(value, n);
      n += value.byteLength;
    }
  } catch (e) {
    if (e instanceof VptError) throw e;
    throw new VptError(where, 'corrupt deflate data');
  } finally {
    await done;
  }
  if (n !== expected) throw new VptError(where, `inflated to ${n} bytes, expected ${expected}`);
  return out;
}

export async function readZipEntry(buf: Uint8Array, e: ZipEntry, file: string): Promise<Uint8Array> {
  const where = `${file}: ${e.name}`;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (e.localOffset + 30 > buf.byteLength || dv.getUint32(e.localOffset, true) !== LOC_SIG) throw new VptError(where, 'zip local header is missing or corrupt');
  const start = e.localOffset + 30 + dv.getUint16(e.localOffset + 26, true) + dv.getUint16(e.localOffset + 28, true);
  if (start + e.compressedSize > buf.byteLength) throw new VptError(where, 'zip entry data runs past the end of the file (truncated?)');
  const raw = buf.subarray(start, start + e.compressedSize);
  if (e.method === 0) {
    if (e.size !== e.compressedSize) throw new VptError(where, 'stored zip entry has inconsistent sizes');
    return raw;
  }
  if (e.method === 8) {
    // Deflate expands at most ~1032:1: a larger declared size is a lie, refused before allocating it.
    if (e.size > e.compressedSize * 1032 + 1024) throw new VptError(where, `declares ${e.size} bytes inflated from only ${e.compressedSize}: not a real deflate stream`);
    return inflateRaw(raw, e.size, where);
  }
  throw new VptError(where, `unsupported zip compression method ${e.method}`);
}
