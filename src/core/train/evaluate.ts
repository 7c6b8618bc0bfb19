/** Batched inference over prepared examples or cached feature rows, with fixed batch shapes. */
import * as tf from '@tensorflow/tfjs';
import { toInput } from '../image/preprocess';
import type { RgbImage } from '../image/resize';
import type { Protocol, Vars } from '../tuning/types';
import type { Preprocessing } from '../vit/config';
import type { FrozenViT } from '../vit/model';
import type { Rng } from './rng';
import { forwardOf, type Forward } from './step';

/**
 * An image already resized by `prepare`: its pixels, or, for a dataset too
 * large to keep decoded, a way to decode and prepare it again when a batch
 * needs it (streaming: memory stays bounded whatever the number of images).
 */
export type ImageSource = RgbImage | { load: () => Promise<RgbImage> };

/** An image with its label. */
export interface Example { image: ImageSource; label: number; name: string }

/** Decoded, prepared images kept in memory up to this; past it a dataset streams from its files. */
export const PIXEL_BUDGET_BYTES = 1024 ** 3;

/** Whether `n` prepared images of `size` x `size` fit the pixel budget. */
export function keepsPixels(n: number, size: number, budget = PIXEL_BUDGET_BYTES): boolean {
  return n * size * size * 3 <= budget;
}

/** The pixels of image sources, loading those that stream. */
export function pixels(images: ImageSource[]): Promise<RgbImage[]> {
  return Promise.all(images.map((i) => ('load' in i ? i.load() : i)));
}

/** Fill a [B, S, S, 3] buffer from loaded images (rows past the end stay zero: padding). */
export function fillBatch(ex: ImageSource[], p: Preprocessing, B: number, augment?: Rng): Float32Array {
  const px = p.size * p.size * 3;
  const buf = new Float32Array(B * px);
  ex.forEach((img, i) => {
    if ('load' in img) throw new Error('fillBatch needs loaded pixels: await pixels(...) first');
    toInput(img, p, buf, i * px, augment);
  });
  return buf;
}

/** A trained protocol's live variables, ready for inference. */
export interface Tuned { proto: Protocol; vars: Vars }

/**
 * Apply `forward` to n rows, `batch` at a time; the last batch is padded so
 * every call has one shape. `fill(from, count, batch)` builds one input batch.
 */
export async function runRows(forward: Forward, fill: (from: number, count: number, batch: number) => tf.Tensor | Promise<tf.Tensor>, n: number, batch: number): Promise<{ values: Float32Array; cols: number }> {
  const chunks: Float32Array[] = [];
  let cols = 0;
  for (let from = 0; from < n; from += batch) {
    const count = Math.min(batch, n - from);
    const x = await fill(from, count, batch);
    const out = tf.tidy(() => forward(x));
    cols = out.shape[1];
    const v = (await out.data()) as Float32Array;
    chunks.push(v.subarray(0, count * cols));
    tf.dispose([x, out]);
  }
  const values = new Float32Array(n * cols);
  let o = 0;
  for (const c of chunks) { values.set(c, o); o += c.length; }
  return { values, cols };
}

/** A forward for inference: a tuned protocol's logits, or plain backbone features. */
export function inferenceForward(model: FrozenViT, tuned: Tuned | null): Forward {
  if (!tuned) return (x) => model.tunedFeatures(x as tf.Tensor4D);
  return forwardOf(model, tuned.proto, tuned.vars);
}

/** runRows' `fill` for images: batch `B` of prepared images from `from`, padded. */
function imageBatches(images: ImageSource[], p: Preprocessing) {
  return async (from: number, count: number, B: number) => tf.tensor4d(fillBatch(await pixels(images.slice(from, from + count)), p, B), [B, p.size, p.size, 3]);
}

/** Logits [N, C] (or, with `tuned` null, plain features [N, d]) for images. */
export async function inferRows(model: FrozenViT, tuned: Tuned | null, images: ImageSource[], p: Preprocessing, batch: number): Promise<{ values: Float32Array; cols: number }> {
  return runRows(inferenceForward(model, tuned), imageBatches(images, p), images.length, batch);
}

/** Patch embeddings ([CLS], patches, position embeddings) of images, one row of T*d per image. */
export async function embedRows(model: FrozenViT, images: ImageSource[], p: Preprocessing, batch: number): Promise<{ values: Float32Array; cols: number }> {
  const forward = (x: tf.Tensor) => { const e = model.embed(x as tf.Tensor4D); return tf.reshape(e, [e.shape[0], -1]) as tf.Tensor2D; };
  return runRows(forward, imageBatches(images, p), images.length, batch);
}

/** Logits from cached feature rows [N, d] through a head-only protocol. */
export async function inferFromFeatures(tuned: Tuned, features: Float32Array, d: number, batch: number): Promise<{ values: Float32Array; cols: number }> {
  const n = features.length / d;
  const fill = (from: number, count: number, B: number) => {
    const buf = new Float32Array(B * d);
    buf.set(features.subarray(from * d, (from + count) * d));
    return tf.tensor2d(buf, [B, d]);
  };
  return runRows((x) => tuned.proto.logits(x as tf.Tensor2D, tuned.vars), fill, n, batch);
}

/** Run inputs that are already normalised NHWC float32 (e.g. from PyTorch). */
export async function inferTensor(model: FrozenViT, tuned: Tuned | null, nhwc: Float32Array, n: number): Promise<{ values: Float32Array; cols: number }> {
  const S = model.config.imageSize;
  return runRows(inferenceForward(model, tuned), () => tf.tensor4d(nhwc, [n, S, S, 3]), n, n);
}
