// Decode-and-resize throughput of the CLI's image path (mozjpeg in WebAssembly, else jpeg-js, + the core's
// PIL-style resize) on real-size JPEGs made here: photo-like content, 1600x1200,
// on the calling thread and on the CLI's decode threads (one per core).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { DecodePool } from '../src/cli/decode-pool';
import { decodeFile } from '../src/cli/node-io';
import type { Preprocessing } from '../src/core/vit/config';

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

export interface DecodeBench { imagesPerSecond: number; threads: number; poolImagesPerSecond: number; width: number; height: number; meanBytes: number }

export async function benchDecode(n = 12, size = 224): Promise<DecodeBench> {
  const dir = mkdtempSync(join(tmpdir(), 'vpt-bench-decode-'));
  const pre: Preprocessing = { size, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resize: 'crop', source: 'default' };
  try {
    const files = Array.from({ length: n }, (_, i) => {
      const bytes = photo(1600, 1200, i), path = join(dir, `photo${i}.jpg`);
      writeFileSync(path, bytes);
      return { path, bytes: bytes.length };
    });
    const rate = async (decode: (path: string, name: string, p: Preprocessing) => Promise<unknown>) => {
      const t0 = performance.now();
      await Promise.all(files.map((f) => decode(f.path, f.path, pre)));
      return (1000 * n) / (performance.now() - t0);
    };
    const one = await rate(decodeFile);
    const threads = Math.min(availableParallelism(), 8);
    const pool = new DecodePool(threads);
    // Start the threads first: a run decodes many images per thread start.
    await Promise.all(Array.from({ length: threads }, (_, i) => pool.decode(files[i % n].path, 'warm-up', pre)));
    const many = await rate(pool.decode);
    await pool.close();
    return { imagesPerSecond: one, threads, poolImagesPerSecond: many, width: 1600, height: 1200, meanBytes: files.reduce((s, f) => s + f.bytes, 0) / n };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
