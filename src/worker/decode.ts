/**
 * Browser image decoding for the worker: createImageBitmap (which applies
 * EXIF orientation) drawn on an OffscreenCanvas, then the core's own resize,
 * so the studio feeds the model the same tensors as the CLI.
 */
import { VptError } from '../core/errors';
import { rgbaToRgb, resize, type RgbImage } from '../core/image/resize';
import { formatTitle, sniffImage } from '../core/image/sniff';
import type { Thumb } from './protocol';

export async function decodeBlob(blob: Blob, name: string): Promise<RgbImage> {
  // The header first: a wrong format or an absurd size is refused before the browser allocates pixels.
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const head = sniffImage(bytes, name);
  let bmp: ImageBitmap;
  try {
    // An animated GIF or WebP gives its first frame; 16-bit and CMYK images are converted by the browser.
    // From the bytes already read: a dropped file is read from disk once, not twice.
    bmp = await createImageBitmap(new Blob([bytes]), { imageOrientation: 'from-image' });
  } catch {
    throw new VptError(name, `corrupt or truncated ${formatTitle(head.format)} (the browser could not decode it)`);
  }
  try {
    const canvas = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new VptError(name, 'no 2D canvas available to decode images');
    ctx.drawImage(bmp, 0, 0);
    const px = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
    return rgbaToRgb(px, bmp.width, bmp.height);
  } finally {
    bmp.close();
  }
}

/** A small preview of the centre square of an image. */
export function thumbOf(img: RgbImage, side = 40): Thumb {
  const s = Math.min(img.width, img.height);
  const left = Math.floor((img.width - s) / 2), top = Math.floor((img.height - s) / 2);
  const sq = new Uint8Array(s * s * 3);
  for (let y = 0; y < s; y++) sq.set(img.data.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + s) * 3), y * s * 3);
  const r = resize({ width: s, height: s, data: sq }, side, side);
  return { width: side, height: side, rgb: r.data };
}

/** Run `f` over items with at most `limit` in flight, in order of results. */
export async function mapLimit<T, R>(items: T[], limit: number, f: (x: T, i: number) => Promise<R>, progress?: (done: number) => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0, done = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i], i);
      progress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}
