/**
 * Bias tuning (BitFit): every bias term of the backbone trainable, the
 * patch projection's, every LayerNorm's and Linear's, the final norm's.
 * Stored as deltas added to the frozen biases: `delta.<timm name>`.
 */
import * as tf from '@tensorflow/tfjs';
import type { LinearFn } from '../vit/model';
import { headParams, linearHead } from './head';
import { configOf, zeros } from './params';
import type { ParamDef, Protocol, Vars } from './types';

/** timm names of a block's biases and their lengths. */
function blockBiases(i: number, d: number, m: number): [string, number][] {
  const p = `blocks.${i}`;
  return [[`${p}.norm1.bias`, d], [`${p}.attn.qkv.bias`, 3 * d], [`${p}.attn.proj.bias`, d], [`${p}.norm2.bias`, d], [`${p}.mlp.fc1.bias`, m], [`${p}.mlp.fc2.bias`, d]];
}

const shifted = (f: LinearFn, delta: tf.Tensor): LinearFn => (x) => tf.add(f(x), delta) as tf.Tensor2D;

export const bias: Protocol = {
  name: 'bias',
  title: () => 'Bias',
  size: null,
  headOnly: false,
  params: (w, _n, C) => {
    const c = configOf(w);
    const d = c.hiddenSize;
    const names: [string, number][] = [['patch_embed.proj.bias', d]];
    for (let i = 0; i < c.numLayers; i++) names.push(...blockBiases(i, d, c.mlpDim));
    names.push(['norm.bias', d]);
    const defs: [string, ParamDef][] = names.map(([n, len]) => [`delta.${n}`, { shape: [len], init: zeros(len) }]);
    return new Map([...defs, ...headParams(d, C)]);
  },
  tuning: (vars: Vars) => {
    const δ = (name: string) => vars.get(`delta.${name}`)!;
    return {
      embed: (f) => ({ ...f, patch: shifted(f.patch, δ('patch_embed.proj.bias')) }),
      block: (i, f) => {
        const p = `blocks.${i}`;
        return {
          ...f,
          ln1b: tf.add(f.ln1b, δ(`${p}.norm1.bias`)) as tf.Tensor1D,
          qkv: shifted(f.qkv, δ(`${p}.attn.qkv.bias`)),
          out: shifted(f.out, δ(`${p}.attn.proj.bias`)),
          ln2b: tf.add(f.ln2b, δ(`${p}.norm2.bias`)) as tf.Tensor1D,
          fc1: shifted(f.fc1, δ(`${p}.mlp.fc1.bias`)),
          fc2: shifted(f.fc2, δ(`${p}.mlp.fc2.bias`)),
        };
      },
      norm: (g, b) => ({ g, b: tf.add(b, δ('norm.bias')) }),
    };
  },
  logits: linearHead,
};
