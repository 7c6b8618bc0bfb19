/**
 * Trainable copies of backbone tensors under timm's names and torch
 * layouts (so a Partial or Full task file loads into a timm ViT), and the
 * forward parts built from their live variables. Definitions take a config
 * alone when only shapes are needed (checking a task file); the values are
 * read from the weights only when a run starts.
 */
import * as tf from '@tensorflow/tfjs';
import type { ViTConfig } from '../vit/config';
import type { BlockParts, EmbedParts, LinearFn } from '../vit/model';
import { patchWToOihw, transpose2d, type BlockWeights, type ViTWeights } from '../vit/weights';
import { configOf, weightsOf } from './params';
import type { ParamDef, Vars } from './types';

type Defs = [string, ParamDef][];
type Source = ViTWeights | ViTConfig;

/** A trainable linear layer from [in, out] weight and bias variables; the tape computes both gradients. */
export function trainableLinear(w: tf.Tensor, b: tf.Tensor): LinearFn {
  return (x) => tf.add(tf.matMul(x, w as tf.Tensor2D), b) as tf.Tensor2D;
}

/** Block i's tensors: LayerNorms as they are, Linear weights as torch [out, in]. */
export function blockParams(src: Source, i: number): Defs {
  const { hiddenSize: d, mlpDim: m } = configOf(src);
  const blk = (): BlockWeights => weightsOf(src, 'this protocol').blocks[i];
  const vec = (n: number, get: (b: BlockWeights) => Float32Array): ParamDef => ({ shape: [n], init: () => get(blk()).slice() });
  const lin = (name: string, inn: number, out: number, W: (b: BlockWeights) => Float32Array, B: (b: BlockWeights) => Float32Array): Defs => [
    [`${name}.weight`, { shape: [out, inn], layout: 'T', init: () => transpose2d(W(blk()), inn, out) }],
    [`${name}.bias`, vec(out, B)],
  ];
  const p = `blocks.${i}`;
  return [
    [`${p}.norm1.weight`, vec(d, (b) => b.ln1g)],
    [`${p}.norm1.bias`, vec(d, (b) => b.ln1b)],
    ...lin(`${p}.attn.qkv`, d, 3 * d, (b) => b.qkvW, (b) => b.qkvB),
    ...lin(`${p}.attn.proj`, d, d, (b) => b.outW, (b) => b.outB),
    [`${p}.norm2.weight`, vec(d, (b) => b.ln2g)],
    [`${p}.norm2.bias`, vec(d, (b) => b.ln2b)],
    ...lin(`${p}.mlp.fc1`, d, m, (b) => b.fc1W, (b) => b.fc1B),
    ...lin(`${p}.mlp.fc2`, m, d, (b) => b.fc2W, (b) => b.fc2B),
  ];
}

export function blockFromVars(vars: Vars, i: number): BlockParts {
  const v = (k: string) => vars.get(`blocks.${i}.${k}`)!;
  return {
    ln1g: v('norm1.weight') as tf.Tensor1D, ln1b: v('norm1.bias') as tf.Tensor1D,
    qkv: trainableLinear(v('attn.qkv.weight'), v('attn.qkv.bias')),
    out: trainableLinear(v('attn.proj.weight'), v('attn.proj.bias')),
    ln2g: v('norm2.weight') as tf.Tensor1D, ln2b: v('norm2.bias') as tf.Tensor1D,
    fc1: trainableLinear(v('mlp.fc1.weight'), v('mlp.fc1.bias')),
    fc2: trainableLinear(v('mlp.fc2.weight'), v('mlp.fc2.bias')),
  };
}

export function normParams(src: Source): Defs {
  const d = configOf(src).hiddenSize;
  return [
    ['norm.weight', { shape: [d], init: () => weightsOf(src, 'norm').normG.slice() }],
    ['norm.bias', { shape: [d], init: () => weightsOf(src, 'norm').normB.slice() }],
  ];
}

/** Patch projection (a [d, 3, P, P] conv kernel in the file), [CLS] and position embeddings. */
export function embedParams(src: Source): Defs {
  const { hiddenSize: d, patchSize: P, imageSize: S } = configOf(src);
  const T = (S / P) ** 2 + 1;
  const w = () => weightsOf(src, 'embedding');
  return [
    ['cls_token', { shape: [1, 1, d], init: () => w().cls.slice() }],
    ['pos_embed', { shape: [1, T, d], init: () => w().pos.slice() }],
    ['patch_embed.proj.weight', { shape: [d, 3, P, P], layout: 'OIHW', init: () => patchWToOihw(w().patchW, d, P) }],
    ['patch_embed.proj.bias', { shape: [d], init: () => w().patchB.slice() }],
  ];
}

export function embedFromVars(vars: Vars): EmbedParts {
  return {
    patch: trainableLinear(vars.get('patch_embed.proj.weight')!, vars.get('patch_embed.proj.bias')!),
    cls: vars.get('cls_token')!,
    pos: vars.get('pos_embed')!,
  };
}
