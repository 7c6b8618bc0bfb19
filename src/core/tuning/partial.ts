/** Partial-k: the last k blocks and the final LayerNorm trainable, the rest frozen. */
import { blockFromVars, blockParams, normParams } from './blocks';
import { headParams, linearHead } from './head';
import { configOf } from './params';
import type { Protocol } from './types';

export const partial: Protocol = {
  name: 'partial',
  title: (k) => `Partial-${k}`,
  size: { label: 'trainable blocks', default: 1, min: 1 },
  headOnly: false,
  params: (w, k, C) => {
    const c = configOf(w);
    const first = Math.max(0, c.numLayers - k);
    const blocks = Array.from({ length: c.numLayers - first }, (_, j) => blockParams(w, first + j)).flat();
    return new Map([...blocks, ...normParams(w), ...headParams(c.hiddenSize, C)]);
  },
  tuning: (vars, c) => {
    let k = 0;
    while (k < c.numLayers && vars.has(`blocks.${c.numLayers - 1 - k}.norm1.weight`)) k++;
    const first = c.numLayers - k;
    return {
      block: (i, frozen) => (i >= first ? blockFromVars(vars, i) : frozen),
      norm: () => ({ g: vars.get('norm.weight')!, b: vars.get('norm.bias')! }),
    };
  },
  logits: linearHead,
};
