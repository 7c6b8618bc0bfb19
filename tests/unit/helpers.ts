import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { readSafetensors } from '../../src/core/io/safetensors';
import type { HostTensor } from '../../src/core/io/tensor-map';
import { writeTask } from '../../src/core/io/task-file';
import { fromVptState } from '../../src/core/tuning/prompt';
import { useBackend } from '../../src/cli/backend';
import type { Preprocessing } from '../../src/core/vit/config';
import { loadBackbone, type Backbone } from '../../src/core/vit/load';
import { FrozenViT } from '../../src/core/vit/model';
import { maxRelErr } from './rel-err';

export const SHARED = resolve(__dirname, '../../../shared');
export const FIX = join(SHARED, 'fixtures/vpt-reference');
export const TINY = join(SHARED, 'models/tiny-vit-mnist');
export const NOTMNIST = join(SHARED, 'datasets/notmnist-1k');

export async function useCpu(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
}

export function readCase(): Map<string, HostTensor> {
  return readSafetensors(readFileSync(join(FIX, 'case.safetensors')), 'case.safetensors').tensors;
}

export function caseTensor(c: Map<string, HostTensor>, name: string): HostTensor {
  const t = c.get(name);
  if (!t) throw new Error(`fixture lacks ${name}`);
  return t;
}

/** The fixture's VPT-deep prompts and head written as an official-named task file at `file`. */
export function writeOfficialTask(c: Map<string, HostTensor>, file: string): string {
  const state = {
    variant: 'deep' as const, numPrompts: 4, numClasses: 5, hiddenSize: 48,
    prompts: caseTensor(c, 'deep.prompts').data as Float32Array,
    headW: caseTensor(c, 'head.weight').data as Float32Array, headB: caseTensor(c, 'head.bias').data as Float32Array,
  };
  writeFileSync(file, writeTask(fromVptState(state), { classes: ['a', 'b', 'c', 'd', 'e'] }, { naming: 'official' }));
  return file;
}

export async function fixtureBackbone(kind: 'safetensors' | 'npz'): Promise<Backbone> {
  const file = join(FIX, `backbone.${kind}`);
  const config = kind === 'safetensors' ? JSON.parse(readFileSync(join(FIX, 'config.json'), 'utf8')) : undefined;
  return loadBackbone({ name: file, bytes: readFileSync(file), config });
}

export async function tinyBackbone(): Promise<Backbone> {
  const file = join(TINY, 'model.safetensors');
  return loadBackbone({
    name: file, bytes: readFileSync(file),
    config: JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')),
    preprocessor: JSON.parse(readFileSync(join(TINY, 'preprocessor_config.json'), 'utf8')),
  });
}

/**
 * The real tiny backbone on wasm, ready to train: its model with the
 * backward weight copies made (they belong to the model, not to a run, so
 * leak checks start after them), and its preprocessing without cropping.
 */
export async function tinyModel(): Promise<{ b: Backbone; model: FrozenViT; pre: Preprocessing }> {
  await useBackend('wasm');
  const b = await tinyBackbone();
  const model = new FrozenViT(b.weights);
  model.prepareBackward();
  return { b, model, pre: { ...b.preprocessing, resize: 'direct' } };
}

/** max-abs error divided by the reference's max-abs (the fixture README's measure); a length mismatch fails the test. */
export function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  return maxRelErr(actual, expected);
}

/** NCHW float32 images to NHWC. */
export function nchwToNhwc(t: HostTensor): tf.Tensor4D {
  const [B, C, H, W] = t.shape;
  return tf.tidy(() => tf.transpose(tf.tensor4d(t.data as Float32Array, [B, C, H, W]), [0, 2, 3, 1]) as tf.Tensor4D);
}

export { existsSync };
