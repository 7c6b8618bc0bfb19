/** Mlp-k: k hidden layers (d units, ReLU) before the classifier, on frozen features. */
import { headParams, mlpHead, mlpParams } from './head';
import { configOf } from './params';
import type { Protocol } from './types';

export const mlp: Protocol = {
  name: 'mlp',
  title: (k) => `Mlp-${k}`,
  size: { label: 'hidden layers', default: 3, min: 1, max: 8 },
  headOnly: true,
  params: (w, k, C) => {
    const d = configOf(w).hiddenSize;
    return new Map([...mlpParams(d, k), ...headParams(d, C)]);
  },
  logits: (f, vars) => {
    let k = 0;
    while (vars.has(`head.mlp.${k}.weight`)) k++;
    return mlpHead(f, vars, k);
  },
};
