/**
 * The one internal weight layout every source format maps onto. Linear
 * weights are stored [in, out] (x W + b), the layout tfjs's fast matmul
 * path wants; q, k and v are fused into one [d, 3d] projection.
 */
import type { ViTConfig } from './config';

export interface BlockWeights {
  ln1g: Float32Array; ln1b: Float32Array;
  qkvW: Float32Array; /** [d, 3d], columns q | k | v, heads contiguous inside each */
  qkvB: Float32Array; /** [3d] */
  outW: Float32Array; outB: Float32Array; /** [d, d], [d] */
  ln2g: Float32Array; ln2b: Float32Array;
  fc1W: Float32Array; fc1B: Float32Array; /** [d, m], [m] */
  fc2W: Float32Array; fc2B: Float32Array; /** [m, d], [d] */
}

export interface ViTWeights {
  config: ViTConfig;
  /** [P*P*3, d]: rows in (y, x, channel) order, i.e. an HWIO kernel flattened. */
  patchW: Float32Array;
  patchB: Float32Array;
  cls: Float32Array; /** [d] */
  pos: Float32Array; /** [T, d], T = patches + 1 */
  blocks: BlockWeights[];
  normG: Float32Array; normB: Float32Array;
}

export type WeightFormat = 'hf' | 'timm' | 'npz';

/** What a source format mapping produced. */
export interface MappedBackbone {
  weights: ViTWeights;
  format: WeightFormat;
  /** Pretraining head / pooler keys that a backbone does not use. */
  ignored: string[];
}

/** Transpose a row-major [rows, cols] matrix. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** Concatenate [d, a], [d, b], ... along columns. */
export function concatCols(parts: Float32Array[], rows: number): Float32Array {
  const widths = parts.map((p) => p.length / rows);
  const total = widths.reduce((s, w) => s + w, 0);
  const out = new Float32Array(rows * total);
  for (let r = 0; r < rows; r++) {
    let o = r * total;
    parts.forEach((p, i) => { out.set(p.subarray(r * widths[i], (r + 1) * widths[i]), o); o += widths[i]; });
  }
  return out;
}

export function concat1d(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** PyTorch conv weight [d, 3, P, P] (OIHW) to our [P*P*3, d] (HWIO) rows. */
export function oihwToPatchW(w: Float32Array, d: number, P: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < d; o++) for (let c = 0; c < 3; c++) for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) {
    out[((y * P + x) * 3 + c) * d + o] = w[((o * 3 + c) * P + y) * P + x];
  }
  return out;
}

/** Inverse of oihwToPatchW, for writing torch-layout files. */
export function patchWToOihw(w: Float32Array, d: number, P: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < d; o++) for (let c = 0; c < 3; c++) for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) {
    out[((o * 3 + c) * P + y) * P + x] = w[((y * P + x) * 3 + c) * d + o];
  }
  return out;
}

export function countParams(w: ViTWeights): number {
  let n = w.patchW.length + w.patchB.length + w.cls.length + w.pos.length + w.normG.length + w.normB.length;
  for (const b of w.blocks) for (const v of Object.values(b)) n += (v as Float32Array).length;
  return n;
}
