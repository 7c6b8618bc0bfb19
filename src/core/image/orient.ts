/**
 * EXIF orientation applied to decoded pixels, so the CLI sees a photo the
 * way the browser's createImageBitmap(imageOrientation: 'from-image') does.
 */
import type { RgbImage } from './resize';

/** The stored pixel that lands at display (x, y), for orientations 1-8 (EXIF tag 0x0112). */
function source(o: number, x: number, y: number, w: number, h: number): [number, number] {
  switch (o) {
    case 2: return [w - 1 - x, y];          // mirrored
    case 3: return [w - 1 - x, h - 1 - y];  // rotated 180
    case 4: return [x, h - 1 - y];          // flipped
    case 5: return [y, x];                  // transposed
    case 6: return [y, h - 1 - x];          // stored rotated 90 counter-clockwise: turn clockwise
    case 7: return [w - 1 - y, h - 1 - x];  // transversed
    case 8: return [w - 1 - y, x];          // stored rotated 90 clockwise: turn counter-clockwise
    default: return [x, y];
  }
}

export function applyOrientation(img: RgbImage, o: number): RgbImage {
  if (o < 2 || o > 8) return img;
  const { width: w, height: h } = img;
  const swap = o >= 5;
  const W = swap ? h : w, H = swap ? w : h;
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [sx, sy] = source(o, x, y, w, h);
      const s = (sy * w + sx) * 3, d = (y * W + x) * 3;
      out[d] = img.data[s]; out[d + 1] = img.data[s + 1]; out[d + 2] = img.data[s + 2];
    }
  }
  return { width: W, height: H, data: out };
}
