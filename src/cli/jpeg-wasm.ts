/**
 * The CLI's fast JPEG decoder: mozjpeg (libjpeg-turbo's decoder) compiled to
 * WebAssembly, from @jsquash/jpeg. A 1600x1200 photo decodes in about 75 ms
 * here against about 360 ms in jpeg-js, pure JavaScript, which was 80% of the
 * CLI's decode-and-resize time; and it is the decoder family PIL (so PyTorch's
 * pipelines) decodes with.
 *
 * jpeg-js stays behind it (src/cli/node-io.ts) for everything this one does
 * not take: a file that does not end in the end-of-image marker (truncated,
 * or trailing bytes: jpeg-js names the problem, where libjpeg would fill the
 * missing part with grey and only print a warning), CMYK and YCCK, which
 * libjpeg does not turn into RGB, and any file it fails on, so that every
 * error message still comes from one place. After a failure the module is
 * started afresh: libjpeg leaves its allocations behind when it gives up.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { rgbaToRgb, type RgbImage } from '../core/image/resize';

interface MozjpegModule { decode(data: Uint8Array, preserveOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null }
type Factory = (options: Record<string, unknown>) => Promise<MozjpegModule>;

/** Past this many pixels (64 MB of RGBA), the decoder's heap is let go after the image. */
const KEEP_HEAP_PIXELS = 16e6;

let wasm: WebAssembly.Module | null = null;
let factory: Factory | null = null;
let current: MozjpegModule | null = null;
let starting: Promise<void> | null = null;
let unavailable = '';

/** Why the wasm decoder is not in use ('' while it is, or before the first image). */
export function jpegWasmUnavailable(): string {
  return unavailable;
}

/**
 * Start the decoder (once; again after a failure). Never rejects: where it
 * cannot start (the package missing, a bundle without its .wasm), jpeg-js decodes.
 */
export function jpegWasmReady(): Promise<void> {
  if (current || unavailable) return Promise.resolve();
  starting ??= (async () => {
    try {
      if (!wasm || !factory) {
        const require = createRequire(import.meta.url);
        wasm = await WebAssembly.compile(readFileSync(require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')));
        factory = (await import('@jsquash/jpeg/codec/dec/mozjpeg_dec.js' as string)).default as Factory;
      }
      const module = wasm;
      current = await factory({
        noInitialRun: true,
        // libjpeg's warnings ("Premature end of JPEG file") would land on the CLI's stderr.
        print: () => {}, printErr: () => {},
        instantiateWasm: (imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) => {
          const instance = new WebAssembly.Instance(module, imports);
          done(instance);
          return instance.exports;
        },
      });
    } catch (e) {
      unavailable = `the WebAssembly JPEG decoder did not start (${(e as Error).message.split('\n')[0]}); decoding with jpeg-js`;
    } finally {
      starting = null;
    }
  })();
  return starting;
}

/** RGB pixels of a JPEG, or null where jpeg-js should decode it (see above). Synchronous once ready. */
export function decodeJpegWasm(bytes: Uint8Array): RgbImage | null {
  const n = bytes.length;
  if (!current || n < 4 || bytes[n - 2] !== 0xff || bytes[n - 1] !== 0xd9) return null;
  try {
    const img = current.decode(bytes, false);
    if (!img || img.width < 1 || img.height < 1) return null;
    // A WebAssembly heap never shrinks: after a very large image, start a fresh one and let this one go.
    if (img.width * img.height > KEEP_HEAP_PIXELS) current = null;
    return rgbaToRgb(img.data, img.width, img.height);
  } catch {
    // A fresh instance for the next image (jpegWasmReady); this one goes to jpeg-js.
    current = null;
    return null;
  }
}
