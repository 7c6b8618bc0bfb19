// The CLI's WebAssembly JPEG decoder (src/cli/jpeg-wasm.ts): it really decodes, agrees with jpeg-js
// to within the rounding of two IDCTs, and hands what it must not take to jpeg-js.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/cli/node-io';
import { decodeJpegWasm, jpegWasmReady, jpegWasmUnavailable } from '../../src/cli/jpeg-wasm';
import { VptError } from '../../src/core/errors';

const img = (name: string) => new Uint8Array(readFileSync(join(__dirname, '../fixtures/images', name)));

/** A photo-like RGB JPEG: smooth gradients and texture. */
function photo(w: number, h: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = (y * w + x) * 4;
    rgba.set([(128 + 100 * Math.sin(x / 20) + ((x * 7 + y * 13) % 23)) & 255, (128 + 100 * Math.cos(y / 15)) & 255, (128 + 90 * Math.sin((x + y) / 30)) & 255, 255], o);
  }
  return jpeg.encode({ data: rgba, width: w, height: h }, 90).data;
}

beforeAll(async () => { await jpegWasmReady(); });

describe('WebAssembly JPEG decoder', () => {
  it('starts, and decodes a JPEG to the size and, within IDCT rounding, the pixels jpeg-js gives', () => {
    expect(jpegWasmUnavailable()).toBe('');
    const bytes = photo(200, 150);
    const fast = decodeJpegWasm(bytes)!;
    expect(fast).not.toBeNull();
    const ref = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
    expect([fast.width, fast.height]).toEqual([200, 150]);
    expect(fast.data.length).toBe(200 * 150 * 3);
    let sum = 0, max = 0;
    for (let i = 0; i < ref.data.length; i++) { const d = Math.abs(fast.data[i] - ref.data[i]); sum += d; max = Math.max(max, d); }
    expect(sum / ref.data.length).toBeLessThan(1.5);
    expect(max).toBeLessThan(40); // chroma upsampling differs at sharp colour edges
  });

  it('leaves truncated files, files with trailing bytes and CMYK to jpeg-js, and starts afresh after a failure', async () => {
    const bytes = photo(64, 48);
    expect(decodeJpegWasm(bytes.subarray(0, bytes.length - 100))).toBeNull();
    expect(decodeJpegWasm(Uint8Array.from([...bytes, 0, 0]))).toBeNull();
    // CMYK: libjpeg cannot make RGB of it; the decoder fails, is dropped, and jpeg-js reads the file.
    expect(decodeJpegWasm(img('cmyk.jpg'))).toBeNull();
    expect(decodeJpegWasm(bytes)).toBeNull(); // not started again yet
    expect(decodeImage(img('cmyk.jpg'), 'cmyk.jpg').width).toBe(32);
    await jpegWasmReady();
    expect(decodeJpegWasm(bytes)?.width).toBe(64);
  });

  it('a truncated JPEG is still refused by name, with the reason', async () => {
    await jpegWasmReady();
    const cut = photo(120, 90).subarray(0, 700);
    let err: unknown;
    try { decodeImage(cut, 'cut.jpg'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(VptError);
    expect((err as Error).message).toMatch(/^cut\.jpg: corrupt or truncated JPEG/);
  });

  it('turns an EXIF-rotated JPEG upright on this path too', async () => {
    await jpegWasmReady();
    expect(decodeJpegWasm(img('exif-rotated.jpg'))).not.toBeNull();
    const up = decodeImage(img('exif-rotated.jpg'), 'exif-rotated.jpg');
    expect([up.width, up.height]).toEqual([16, 32]);
    expect(up.data[0]).toBeGreaterThan(200);
  });
});
