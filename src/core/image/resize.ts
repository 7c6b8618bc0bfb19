/**
 * Image resizing on decoded pixels, in the core so that the page, the worker
 * and Node produce identical tensors. The filter is bilinear (a triangle
 * kernel) with antialiasing when shrinking: the kernel's support widens by
 * the scale factor, as PIL's `Image.resize(..., BILINEAR)` does, and the
 * two separable passes are computed in float and rounded to uint8 once.
 */

/** RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage { width: number; height: number; data: Uint8Array }

/** Drop alpha (composited on black, as a decoder without colour management would). */
export function rgbaToRgb(rgba: ArrayLike<number>, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += 3) {
    data[j] = rgba[i * 4]; data[j + 1] = rgba[i * 4 + 1]; data[j + 2] = rgba[i * 4 + 2];
  }
  return { width, height, data };
}

interface Taps { start: Int32Array; count: Int32Array; weights: Float32Array; max: number }

/** Per output pixel, the input range and normalised triangle weights. */
function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const fscale = Math.max(scale, 1); // widen the kernel when shrinking: antialiasing
  const support = fscale;
  const max = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * max);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support + 0.5));
    const hi = Math.min(inSize, Math.floor(center + support + 0.5));
    let sum = 0;
    for (let x = lo; x < hi; x++) {
      const w = Math.max(0, 1 - Math.abs((x - center + 0.5) / fscale));
      weights[i * max + x - lo] = w;
      sum += w;
    }
    for (let x = lo; x < hi; x++) weights[i * max + x - lo] /= sum || 1;
    start[i] = lo;
    count[i] = hi - lo;
  }
  return { start, count, weights, max };
}

export function resize(img: RgbImage, outW: number, outH: number): RgbImage {
  if (img.width === outW && img.height === outH) return img;
  const { width: inW, height: inH, data } = img;
  const tx = taps(inW, outW);
  const ty = taps(inH, outH);
  // Typed arrays and sizes in locals, index arithmetic out of the inner loops: the same sums in the
  // same order, a quarter faster in V8 (a 1600x1200 photo to 341x256 in 21-32 ms, from 27-41).
  const xStart = tx.start, xCount = tx.count, xW = tx.weights, xMax = tx.max;
  const tmp = new Float32Array(outW * inH * 3); // horizontal pass
  for (let y = 0; y < inH; y++) {
    const row = y * inW * 3;
    let o = y * outW * 3;
    for (let x = 0; x < outW; x++, o += 3) {
      let r = 0, g = 0, b = 0;
      let p = row + xStart[x] * 3;
      const w0 = x * xMax, n = xCount[x];
      for (let k = 0; k < n; k++, p += 3) {
        const w = xW[w0 + k];
        r += w * data[p]; g += w * data[p + 1]; b += w * data[p + 2];
      }
      tmp[o] = r; tmp[o + 1] = g; tmp[o + 2] = b;
    }
  }
  const yStart = ty.start, yCount = ty.count, yW = ty.weights, yMax = ty.max;
  const stride = outW * 3;
  const out = new Uint8Array(outW * outH * 3); // vertical pass
  for (let y = 0; y < outH; y++) {
    const base = yStart[y] * stride, w0 = y * yMax, n = yCount[y];
    let o = y * stride;
    for (let x = 0; x < stride; x += 3, o += 3) {
      let r = 0, g = 0, b = 0;
      let p = base + x;
      for (let k = 0; k < n; k++, p += stride) {
        const w = yW[w0 + k];
        r += w * tmp[p]; g += w * tmp[p + 1]; b += w * tmp[p + 2];
      }
      out[o] = Math.min(255, Math.max(0, Math.round(r)));
      out[o + 1] = Math.min(255, Math.max(0, Math.round(g)));
      out[o + 2] = Math.min(255, Math.max(0, Math.round(b)));
    }
  }
  return { width: outW, height: outH, data: out };
}

export function crop(img: RgbImage, left: number, top: number, w: number, h: number): RgbImage {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + w) * 3), y * w * 3);
  return { width: w, height: h, data: out };
}
