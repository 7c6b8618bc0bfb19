// Decode-and-resize throughput of the CLI's image path (jpeg-js + the core's
// PIL-style resize) on real-size JPEGs made here: photo-like content, 1600x1200.
import jpeg from 'jpeg-js';
import { decodeImage } from '../src/cli/node-io';
import { prepare } from '../src/core/image/preprocess';

function photo(w: number, h: number, seed: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = (y * w + x) * 4;
    // Smooth gradients plus texture: compresses like a photograph, not like noise or a flat fill.
    rgba[o] = (128 + 100 * Math.sin((x + seed * 37) / 90) + ((x * 7 + y * 13) % 23)) & 255;
    rgba[o + 1] = (128 + 100 * Math.cos((y + seed * 11) / 70) + ((x * 3 + y * 5) % 17)) & 255;
    rgba[o + 2] = (128 + 90 * Math.sin((x + y) / 120)) & 255;
    rgba[o + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width: w, height: h }, 85).data;
}

export function benchDecode(n = 12, size = 224): { imagesPerSecond: number; width: number; height: number; meanBytes: number } {
  const files = Array.from({ length: n }, (_, i) => photo(1600, 1200, i));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) prepare(decodeImage(files[i], `photo${i}.jpg`), { size, resize: 'crop' });
  const ms = performance.now() - t0;
  return { imagesPerSecond: (1000 * n) / ms, width: 1600, height: 1200, meanBytes: files.reduce((s, f) => s + f.length, 0) / n };
}
