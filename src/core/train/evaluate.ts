/** Batched inference over prepared examples, with fixed batch shapes. */
import * as tf from '@tensorflow/tfjs';
import { toInput } from '../image/preprocess';
import type { RgbImage } from '../image/resize';
import { head, vptFeatures, type VptVars } from '../tuning/vpt';
import type { Preprocessing } from '../vit/config';
import type { FrozenViT } from '../vit/model';
import type { Rng } from './rng';

/** An image already resized by `prepare`, with its label. */
export interface Example { image: RgbImage; label: number; name: string }

/** Fill a [B, S, S, 3] buffer from examples (rows past the end stay zero: padding). */
export function fillBatch(ex: RgbImage[], p: Preprocessing, B: number, augment?: Rng): Float32Array {
  const px = p.size * p.size * 3;
  const buf = new Float32Array(B * px);
  ex.forEach((img, i) => toInput(img, p, buf, i * px, augment));
  return buf;
}

/**
 * Logits [N, C] (or, without `vars`, plain features [N, d]) for images,
 * `batch` at a time; the last batch is padded so every call has one shape.
 */
export async function inferRows(model: FrozenViT, vars: Pick<VptVars, 'variant' | 'prompts' | 'headW' | 'headB'> | null, images: RgbImage[], p: Preprocessing, batch: number): Promise<{ values: Float32Array; cols: number }> {
  const S = p.size;
  const chunks: Float32Array[] = [];
  let cols = 0;
  for (let from = 0; from < images.length; from += batch) {
    const part = images.slice(from, from + batch);
    const x = tf.tensor4d(fillBatch(part, p, batch), [batch, S, S, 3]);
    const out = tf.tidy(() => (vars ? head(vptFeatures(model, vars, x), vars.headW, vars.headB) : model.encode(model.embed(x))));
    cols = out.shape[1];
    const v = (await out.data()) as Float32Array;
    chunks.push(v.subarray(0, part.length * cols));
    tf.dispose([x, out]);
  }
  const values = new Float32Array(images.length * cols);
  let o = 0;
  for (const c of chunks) { values.set(c, o); o += c.length; }
  return { values, cols };
}

/** Run inputs that are already normalised NHWC float32 (e.g. from PyTorch). */
export async function inferTensor(model: FrozenViT, vars: Pick<VptVars, 'variant' | 'prompts' | 'headW' | 'headB'> | null, nhwc: Float32Array, n: number): Promise<{ values: Float32Array; cols: number }> {
  const S = model.config.imageSize;
  const x = tf.tensor4d(nhwc, [n, S, S, 3]);
  const out = tf.tidy(() => (vars ? head(vptFeatures(model, vars, x), vars.headW, vars.headB) : model.encode(model.embed(x))));
  const values = (await out.data()) as Float32Array;
  const cols = out.shape[1];
  tf.dispose([x, out]);
  return { values, cols };
}
