/** Linear probing: the head alone on frozen features (the paper's "Linear"). */
import { linearHead, headParams } from './head';
import { configOf } from './params';
import type { Protocol } from './types';

export const linear: Protocol = {
  name: 'linear',
  title: () => 'Linear',
  size: null,
  headOnly: true,
  params: (w, _n, C) => new Map(headParams(configOf(w).hiddenSize, C)),
  logits: (f, vars) => linearHead(f, vars),
};
