/**
 * VPT-shallow and VPT-deep as protocols (the prompt mechanics are in
 * vpt.ts). Tensors: `prompts` [Lp, p, d] (Lp = 1 or L) and the head.
 */
import { headParams, linearHead } from './head';
import { configOf, uniform } from './params';
import type { Protocol, TunedState } from './types';
import { promptBound, promptHook, promptLayers, type Variant, type VptState } from './vpt';

function vptProtocol(variant: Variant): Protocol {
  return {
    name: `vpt-${variant}`,
    title: (p) => `VPT-${variant} (p=${p})`,
    size: { label: 'prompts', default: variant === 'deep' ? 10 : 50, min: 1 },
    headOnly: false,
    params: (w, p, C) => {
      const c = configOf(w);
      const d = c.hiddenSize;
      const Lp = promptLayers(variant, c);
      return new Map([['prompts', { shape: [Lp, p, d], init: uniform(Lp * p * d, promptBound(c)) }], ...headParams(d, C)]);
    },
    tuning: (vars, _c, opts) => {
      const prompts = vars.get('prompts')!;
      const [, p, d] = prompts.shape;
      const dr = opts.dropout;
      const mask = dr && dr.rate > 0 ? (_layer: number, B: number) => dr.mask(B, p, d) : undefined;
      return { tokens: promptHook(prompts, mask) };
    },
    logits: linearHead,
  };
}

export const vptShallow = vptProtocol('shallow');
export const vptDeep = vptProtocol('deep');

export function fromVptState(s: VptState): TunedState {
  const Lp = s.prompts.length / (s.numPrompts * s.hiddenSize);
  return {
    protocol: { name: `vpt-${s.variant}`, n: s.numPrompts },
    numClasses: s.numClasses, hiddenSize: s.hiddenSize,
    params: new Map([
      ['prompts', { shape: [Lp, s.numPrompts, s.hiddenSize], data: s.prompts }],
      ['head.weight', { shape: [s.numClasses, s.hiddenSize], data: s.headW }],
      ['head.bias', { shape: [s.numClasses], data: s.headB }],
    ]),
  };
}

export function toVptState(s: TunedState): VptState {
  const variant = s.protocol.name === 'vpt-deep' ? 'deep' : 'shallow';
  return {
    variant, numPrompts: s.protocol.n, numClasses: s.numClasses, hiddenSize: s.hiddenSize,
    prompts: s.params.get('prompts')!.data, headW: s.params.get('head.weight')!.data, headB: s.params.get('head.bias')!.data,
  };
}
