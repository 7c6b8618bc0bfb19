// Runs in the browser (served by Vite): the fixture forward pass through the
// real core modules on the webgpu backend, returning each output's relative error.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { readSafetensors } from '../../src/core/io/safetensors';
import { head, vptFeatures } from '../../src/core/tuning/vpt';
import { loadBackbone } from '../../src/core/vit/load';
import { FrozenViT } from '../../src/core/vit/model';

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0, m = 0;
  for (let i = 0; i < b.length; i++) { e = Math.max(e, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return a.length === b.length ? e / (m || 1) : Infinity;
}

const bytes = async (url: string) => new Uint8Array(await (await fetch(url)).arrayBuffer());

async function forward(backbone: Uint8Array, config: unknown, caseBytes: Uint8Array): Promise<Record<string, number>> {
  const c = readSafetensors(caseBytes, 'case.safetensors').tensors;
  const get = (n: string) => c.get(n)!.data as Float32Array;
  const b = await loadBackbone({ name: 'backbone', bytes: backbone, config });
  const model = new FrozenViT(b.weights);
  const [B, C, H, W] = c.get('input.images_nchw')!.shape;
  const x = tf.tidy(() => tf.transpose(tf.tensor4d(get('input.images_nchw'), [B, C, H, W]), [0, 2, 3, 1])) as tf.Tensor4D;
  const hw = tf.tensor2d(get('head.weight'), [5, 48]);
  const hb = tf.tensor1d(get('head.bias'));
  const errs: Record<string, number> = {};
  const plain = model.features(x);
  errs['plain.cls_feature'] = relErr(await plain.data(), get('plain.cls_feature'));
  const pl = head(plain, hw, hb);
  errs['plain.logits'] = relErr(await pl.data(), get('plain.logits'));
  for (const variant of ['shallow', 'deep'] as const) {
    const raw = variant === 'shallow' ? get('shallow.prompt') : get('deep.prompts');
    const prompts = tf.tensor3d(raw, [variant === 'shallow' ? 1 : 3, 4, 48]);
    const f = tf.tidy(() => vptFeatures(model, { variant, prompts: prompts as tf.Variable }, x));
    const l = head(f, hw, hb);
    errs[`${variant}.cls_feature`] = relErr(await f.data(), get(`${variant}.cls_feature`));
    errs[`${variant}.logits`] = relErr(await l.data(), get(`${variant}.logits`));
    tf.dispose([prompts, f, l]);
  }
  tf.dispose([x, hw, hb, plain, pl]);
  model.dispose();
  return errs;
}

export async function runFixtureForward(u: { npz: string; st: string; cfg: string; kase: string }) {
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not start');
  await tf.ready();
  const kase = await bytes(u.kase);
  return {
    backend: tf.getBackend(),
    npz: await forward(await bytes(u.npz), undefined, kase),
    safetensors: await forward(await bytes(u.st), await (await fetch(u.cfg)).json(), kase),
  };
}
