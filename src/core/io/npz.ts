/** `.npz` reader: a zip of `.npy` arrays, keyed by entry name minus `.npy`. */
import { VptError } from '../errors';
import { readNpy } from './npy';
import type { TensorMap } from './tensor-map';
import { listZip, readZipEntry } from './zip';

export async function readNpz(bytes: Uint8Array | ArrayBuffer, file: string): Promise<TensorMap> {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const out: TensorMap = new Map();
  for (const e of listZip(buf, file)) {
    if (e.name.endsWith('/')) continue;
    if (!e.name.endsWith('.npy')) throw new VptError(file, `${e.name}: not a .npy entry`);
    const key = e.name.slice(0, -4);
    if (out.has(key)) throw new VptError(file, `${e.name}: duplicate entry`);
    out.set(key, readNpy(await readZipEntry(buf, e, file), `${file}: ${e.name}`));
  }
  if (out.size === 0) throw new VptError(file, 'the npz archive holds no arrays');
  return out;
}

export function looksLikeZip(buf: Uint8Array): boolean {
  return buf.byteLength >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && buf[2] === 0x03 && buf[3] === 0x04;
}
