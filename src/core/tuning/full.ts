/**
 * Full fine-tuning: every backbone tensor trainable (on a copy; the loaded
 * backbone is never modified). Its task file is a whole timm-named ViT plus
 * the head, and training keeps weights, gradients and optimiser slots for
 * all of them: several times the backbone's memory.
 */
import { blockFromVars, blockParams, embedFromVars, embedParams, normParams } from './blocks';
import { headParams, linearHead } from './head';
import { configOf } from './params';
import type { Protocol } from './types';

export const full: Protocol = {
  name: 'full',
  title: () => 'Full',
  size: null,
  headOnly: false,
  warning: 'Full fine-tuning trains a copy of every backbone weight: weights, gradients and optimiser state take about 4x the backbone\'s memory (ViT-B/16: ~1.4 GB) before activations, and its task file is as large as the backbone.',
  params: (w, _n, C) => {
    const c = configOf(w);
    const blocks = Array.from({ length: c.numLayers }, (_, i) => blockParams(w, i)).flat();
    return new Map([...embedParams(w), ...blocks, ...normParams(w), ...headParams(c.hiddenSize, C)]);
  },
  tuning: (vars) => ({
    embed: () => embedFromVars(vars),
    block: (i) => blockFromVars(vars, i),
    norm: () => ({ g: vars.get('norm.weight')!, b: vars.get('norm.bias')! }),
  }),
  logits: linearHead,
};
