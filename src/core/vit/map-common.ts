/** Shared checks for the per-format weight mappings. */
import { VptError } from '../errors';
import type { TensorMap } from '../io/tensor-map';

/**
 * Takes tensors out of a map by name, checking shapes, and remembers which
 * were used so that the caller can report missing and unexpected keys together.
 */
export class KeyTaker {
  readonly used = new Set<string>();
  readonly missing: string[] = [];
  readonly misshaped: string[] = [];
  constructor(private readonly t: TensorMap, private readonly prefix = '') {}

  has(name: string): boolean { return this.t.has(this.prefix + name); }

  shape(name: string): number[] | undefined { return this.t.get(this.prefix + name)?.shape; }

  take(name: string, shape: number[]): Float32Array {
    const key = this.prefix + name;
    const t = this.t.get(key);
    if (!t) { this.missing.push(key); return new Float32Array(shape.reduce((a, b) => a * b, 1)); }
    this.used.add(key);
    if (!(t.data instanceof Float32Array)) { this.misshaped.push(`${key} (integer dtype ${t.dtype}, expected float)`); return new Float32Array(shape.reduce((a, b) => a * b, 1)); }
    const same = t.shape.length === shape.length && t.shape.every((s, i) => s === shape[i]);
    if (!same) { this.misshaped.push(`${key} (shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)})`); return new Float32Array(shape.reduce((a, b) => a * b, 1)); }
    return t.data;
  }

  /** Fails listing every missing, mis-shaped and unexpected key; returns the ignored ones. */
  finish(file: string, isIgnorable: (key: string) => boolean): string[] {
    const ignored: string[] = [];
    const unexpected: string[] = [];
    for (const k of this.t.keys()) {
      if (this.used.has(k)) continue;
      if (isIgnorable(k)) ignored.push(k); else unexpected.push(k);
    }
    const parts: string[] = [];
    if (this.missing.length) parts.push(`missing keys: ${this.missing.join(', ')}`);
    if (this.misshaped.length) parts.push(`mis-shaped keys: ${this.misshaped.join(', ')}`);
    if (unexpected.length) parts.push(`unexpected keys: ${unexpected.join(', ')}`);
    if (parts.length) throw new VptError(file, parts.join('; '));
    return ignored.sort();
  }
}

/** Count numbered layers from keys like `prefix{N}suffix`. */
export function countLayers(keys: Iterable<string>, re: RegExp): number {
  let max = -1;
  for (const k of keys) {
    const m = re.exec(k);
    if (m) max = Math.max(max, parseInt(m[1], 10));
  }
  return max + 1;
}

export function requireShape(t: TensorMap, key: string, rank: number, file: string): number[] {
  const s = t.get(key)?.shape;
  if (!s) throw new VptError(file, `missing keys: ${key}`);
  if (s.length !== rank) throw new VptError(file, `mis-shaped keys: ${key} (shape ${JSON.stringify(s)}, expected rank ${rank})`);
  return s;
}
