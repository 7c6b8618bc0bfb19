/**
 * Adapter (the VPT paper's baseline, Pfeiffer placement as the official
 * vit_adapter code): inside every block the MLP sub-layer's output m
 * becomes m + up(GELU(down(m))) before its residual add; down is d -> d/r.
 * Initialisation differs from the official code on purpose: it zeroes both
 * projections, which leaves only the up-projection's bias with a non-zero
 * gradient (GELU(0) = 0); here down starts as torch.nn.Linear does and up
 * at zero, so the adapter starts as the identity and all of it learns.
 */
import * as tf from '@tensorflow/tfjs';
import { gelu } from '../vit/ops';
import { headParams, linearHead } from './head';
import { configOf, linearBound, uniform, zeros } from './params';
import type { ParamDef, Protocol } from './types';

export const adapter: Protocol = {
  name: 'adapter',
  title: (r) => `Adapter (r=${r})`,
  size: { label: 'reduction factor', default: 8, min: 1 },
  headOnly: false,
  params: (w, r, C) => {
    const c = configOf(w);
    const d = c.hiddenSize;
    const h = Math.max(1, Math.floor(d / r));
    const defs: [string, ParamDef][] = [];
    for (let i = 0; i < c.numLayers; i++) {
      const p = `adapter.${i}`;
      defs.push(
        [`${p}.down.weight`, { shape: [h, d], layout: 'T', init: uniform(h * d, linearBound(d)) }],
        [`${p}.down.bias`, { shape: [h], init: uniform(h, linearBound(d)) }],
        [`${p}.up.weight`, { shape: [d, h], layout: 'T', init: zeros(d * h) }],
        [`${p}.up.bias`, { shape: [d], init: zeros(d) }],
      );
    }
    return new Map([...defs, ...headParams(d, C)]);
  },
  tuning: (vars) => ({
    block: (i, f) => {
      const v = (k: string) => vars.get(`adapter.${i}.${k}`)!;
      return {
        ...f,
        mlpOut: (m) => {
          const h = gelu(tf.add(tf.matMul(m, v('down.weight') as tf.Tensor2D), v('down.bias')));
          return tf.add(m, tf.add(tf.matMul(h as tf.Tensor2D, v('up.weight') as tf.Tensor2D), v('up.bias'))) as tf.Tensor2D;
        },
      };
    },
  }),
  logits: linearHead,
};
