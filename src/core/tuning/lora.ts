/**
 * LoRA (Hu et al. 2021) on the attention's query and value projections:
 * W_q + B_q A_q and W_v + B_v A_v with rank r, alpha = r (scale 1). A
 * starts as torch.nn.Linear does, B at zero, so training starts from the
 * backbone. File names follow PEFT's A/B in torch layout: `lora.<i>.q.A`
 * [r, d], `lora.<i>.q.B` [d, r].
 */
import * as tf from '@tensorflow/tfjs';
import { headParams, linearHead } from './head';
import { configOf, linearBound, uniform, zeros } from './params';
import type { ParamDef, Protocol } from './types';

export const lora: Protocol = {
  name: 'lora',
  title: (r) => `LoRA (r=${r})`,
  size: { label: 'rank', default: 4, min: 1 },
  headOnly: false,
  params: (w, r, C) => {
    const c = configOf(w);
    const d = c.hiddenSize;
    const defs: [string, ParamDef][] = [];
    for (let i = 0; i < c.numLayers; i++) {
      for (const t of ['q', 'v']) {
        defs.push(
          [`lora.${i}.${t}.A`, { shape: [r, d], layout: 'T', init: uniform(r * d, linearBound(d)) }],
          [`lora.${i}.${t}.B`, { shape: [d, r], layout: 'T', init: zeros(d * r) }],
        );
      }
    }
    return new Map([...defs, ...headParams(d, C)]);
  },
  tuning: (vars, c) => ({
    block: (i, f) => ({
      ...f,
      qkv: (x) => {
        const low = (t: string) => tf.matMul(tf.matMul(x, vars.get(`lora.${i}.${t}.A`)! as tf.Tensor2D), vars.get(`lora.${i}.${t}.B`)! as tf.Tensor2D);
        // The fused projection's columns are q | k | v: k is left alone.
        const delta = tf.concat([low('q'), tf.zeros([x.shape[0], c.hiddenSize]), low('v')], 1);
        return tf.add(f.qkv(x), delta) as tf.Tensor2D;
      },
    }),
  }),
  logits: linearHead,
};
