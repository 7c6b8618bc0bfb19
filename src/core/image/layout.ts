/** Tensor layout conversion on host arrays. */

/** NCHW (PyTorch's layout) to NHWC (ours): the same values, channels last. */
export function nchwToNhwc(src: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[((b * h + y) * w + x) * c + ch] = src[((b * c + ch) * h + y) * w + x];
  }
  return out;
}
