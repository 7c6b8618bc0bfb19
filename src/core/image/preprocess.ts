/**
 * From decoded pixels to the model's input, following the backbone's
 * preprocessing. Two stages so a dataset can cache the (small, uint8)
 * resized image and redo only the cheap crop/flip/normalise each epoch:
 *  - `prepare`: `crop` mode resizes the shorter side to floor(S * 256/224)
 *    (the official FGVC evaluation transform, Resize then CenterCrop);
 *    `direct` mode resizes to S x S (VTAB, Hugging Face's default).
 *  - `toInput`: centre crop (evaluation) or random crop + horizontal flip
 *    (training augmentation, the official FGVC training transform), then
 *    (x / 255 - mean) / std into NHWC float32.
 */
import type { Preprocessing } from '../vit/config';
import type { Rng } from '../train/rng';
import { crop, resize, type RgbImage } from './resize';

export function resizeTarget(w: number, h: number, p: Pick<Preprocessing, 'size' | 'resize'>): [number, number] {
  if (p.resize === 'direct') return [p.size, p.size];
  const short = Math.floor((p.size * 256) / 224);
  // torchvision Resize(int): the shorter side becomes `short`, the longer keeps the aspect (truncated).
  return w <= h ? [short, Math.max(short, Math.floor((short * h) / w))] : [Math.max(short, Math.floor((short * w) / h)), short];
}

export function prepare(img: RgbImage, p: Pick<Preprocessing, 'size' | 'resize'>): RgbImage {
  const [w, h] = resizeTarget(img.width, img.height, p);
  return resize(img, w, h);
}

/** Writes S*S*3 normalised floats into `out` at `offset`. `rng` given = training augmentation. */
export function toInput(img: RgbImage, p: Preprocessing, out: Float32Array, offset: number, rng?: Rng): void {
  const S = p.size;
  let left: number, top: number, flip = false;
  if (rng) {
    left = rng.int(img.width - S + 1);
    top = rng.int(img.height - S + 1);
    flip = rng.next() < 0.5;
  } else {
    // torchvision CenterCrop: int(round((size - S) / 2)).
    left = Math.round((img.width - S) / 2);
    top = Math.round((img.height - S) / 2);
  }
  const c = img.width === S && img.height === S ? img : crop(img, left, top, S, S);
  const scale = p.std.map((s) => 1 / (255 * s));
  const shift = p.mean.map((m, i) => m / p.std[i]);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
    const src = (y * S + (flip ? S - 1 - x : x)) * 3;
    const dst = offset + (y * S + x) * 3;
    for (let ch = 0; ch < 3; ch++) out[dst + ch] = c.data[src + ch] * scale[ch] - shift[ch];
  }
}
