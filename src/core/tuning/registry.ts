/** Every protocol by name, and the `name[-n]` spelling used by the CLI, files and tables. */
import { VptError } from '../errors';
import { adapter } from './adapter';
import { bias } from './bias';
import { full } from './full';
import { linear } from './linear';
import { lora } from './lora';
import { mlp } from './mlp';
import { partial } from './partial';
import { vptDeep, vptShallow } from './prompt';
import type { Protocol, ProtocolName, ProtocolSpec } from './types';

/** In the paper's table order. */
export const PROTOCOLS: Protocol[] = [full, linear, partial, mlp, bias, adapter, lora, vptShallow, vptDeep];

export function protocolOf(name: ProtocolName | string): Protocol {
  const p = PROTOCOLS.find((x) => x.name === name);
  if (!p) throw new VptError('protocol', `unknown protocol "${name}"; known: ${PROTOCOLS.map((x) => x.name).join(', ')}`);
  return p;
}

/** "linear", "mlp-3", "vpt-deep-10", "lora-8": a protocol and its size (the default when left out). */
export function parseSpec(text: string): ProtocolSpec {
  const t = text.trim().toLowerCase();
  const m = /^(.*?)(?:-(\d+))?$/.exec(t)!;
  const proto = PROTOCOLS.find((x) => x.name === m[1]) ?? PROTOCOLS.find((x) => x.name === t);
  if (!proto) throw new VptError('--protocols', `unknown protocol "${text}"; known: ${PROTOCOLS.map((x) => x.name + (x.size ? '[-N]' : '')).join(', ')}`);
  if (proto.name === t || m[2] === undefined) return { name: proto.name, n: proto.size?.default ?? 0 };
  if (!proto.size) throw new VptError('--protocols', `"${proto.name}" takes no size, got "${text}"`);
  return checkSpec({ name: proto.name, n: Number(m[2]) });
}

export function checkSpec(s: ProtocolSpec): ProtocolSpec {
  const p = protocolOf(s.name);
  if (!p.size) return { name: s.name, n: 0 };
  const { min, max, label } = p.size;
  if (!Number.isSafeInteger(s.n) || s.n < min || (max !== undefined && s.n > max)) {
    throw new VptError(s.name, `${label} must be an integer from ${min}${max !== undefined ? ` to ${max}` : ''}, got ${s.n}`);
  }
  return s;
}

export function formatSpec(s: ProtocolSpec): string {
  return protocolOf(s.name).size ? `${s.name}-${s.n}` : s.name;
}

/** Tokens a protocol adds to the sequence: VPT's prompts (they size the activations). */
export function promptTokens(s: ProtocolSpec): number {
  return s.name === 'vpt-deep' || s.name === 'vpt-shallow' ? s.n : 0;
}

export function titleOf(s: ProtocolSpec): string {
  return protocolOf(s.name).title(s.n);
}
