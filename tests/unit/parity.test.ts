/** Parity with the official VPT implementation (../shared/fixtures/vpt-reference). */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { head, vptFeatures } from '../../src/core/tuning/vpt';
import { FrozenViT } from '../../src/core/vit/model';
import { caseTensor, fixtureBackbone, nchwToNhwc, readCase, relErr, useCpu } from './helpers';

const c = readCase();
const get = (n: string) => caseTensor(c, n).data as Float32Array;

describe.each(['safetensors', 'npz'] as const)('forward parity from backbone.%s', (kind) => {
  let model: FrozenViT;
  let images: tf.Tensor4D;
  let hw: tf.Tensor2D, hb: tf.Tensor1D;
  beforeAll(async () => {
    await useCpu();
    model = new FrozenViT((await fixtureBackbone(kind)).weights);
    images = nchwToNhwc(caseTensor(c, 'input.images_nchw'));
    hw = tf.tensor2d(get('head.weight'), [5, 48]);
    hb = tf.tensor1d(get('head.bias'));
  });

  it('plain features and logits', async () => {
    const f = model.features(images);
    const logits = head(f, hw, hb);
    expect(relErr(await f.data(), get('plain.cls_feature'))).toBeLessThan(1e-4);
    expect(relErr(await logits.data(), get('plain.logits'))).toBeLessThan(1e-4);
    tf.dispose([f, logits]);
  });

  it.each(['shallow', 'deep'] as const)('%s prompts: features and logits', async (variant) => {
    const raw = variant === 'shallow' ? get('shallow.prompt') : get('deep.prompts');
    const prompts = tf.tensor3d(raw, [variant === 'shallow' ? 1 : 3, 4, 48]);
    const f = tf.tidy(() => vptFeatures(model, { variant, prompts: prompts as tf.Variable }, images));
    const logits = head(f, hw, hb);
    expect(relErr(await f.data(), get(`${variant}.cls_feature`))).toBeLessThan(1e-4);
    expect(relErr(await logits.data(), get(`${variant}.logits`))).toBeLessThan(1e-4);
    tf.dispose([f, logits, prompts]);
  });
});
