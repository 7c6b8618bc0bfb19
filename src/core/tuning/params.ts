/**
 * Trainable state on the host and as live variables: initialisation, the
 * file <-> forward layout conversions, and the usual initialisers.
 */
import * as tf from '@tensorflow/tfjs';
import { VptError } from '../errors';
import type { Rng } from '../train/rng';
import type { ViTConfig } from '../vit/config';
import { oihwToPatchW, patchWToOihw, transpose2d, type ViTWeights } from '../vit/weights';
import type { Layout, ParamDef, Params, Protocol, ProtocolSpec, TunedState, Vars } from './types';

export const zeros = (n: number) => () => new Float32Array(n);
export const fill = (n: number, v: number) => () => new Float32Array(n).fill(v);
export const uniform = (n: number, bound: number) => (rng: Rng) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(-bound, bound);
  return a;
};
export const normal = (n: number, std: number) => (rng: Rng) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
};
/** A copy of a backbone tensor (file layout), so training never touches the backbone's own arrays. */
export const copy = (a: Float32Array) => () => a.slice();

/** torch.nn.Linear's default initialisation bound, 1 / sqrt(fan_in). */
export const linearBound = (fanIn: number) => 1 / Math.sqrt(fanIn);

export function configOf(w: ViTWeights | ViTConfig): ViTConfig {
  return 'config' in w ? w.config : w;
}

export function weightsOf(w: ViTWeights | ViTConfig, protocol: string): ViTWeights {
  if (!('config' in w)) throw new VptError(protocol, 'needs the backbone weights to start from');
  return w;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** File layout -> forward layout. */
function toForward(data: Float32Array, shape: number[], layout?: Layout): { data: Float32Array; shape: number[] } {
  if (layout === 'T') return { data: transpose2d(data, shape[0], shape[1]), shape: [shape[1], shape[0]] };
  if (layout === 'OIHW') return { data: oihwToPatchW(data, shape[0], shape[2]), shape: [shape[1] * shape[2] * shape[3], shape[0]] };
  return { data, shape };
}

/** Forward layout -> file layout. */
function toFile(data: Float32Array, shape: number[], layout?: Layout): Float32Array {
  if (layout === 'T') return transpose2d(data, shape[1], shape[0]);
  if (layout === 'OIHW') return patchWToOihw(data, shape[0], shape[2]);
  return data;
}

/** The fresh state of a protocol: every tensor initialised in definition order from one PRNG. */
export function initState(proto: Protocol, w: ViTWeights, spec: ProtocolSpec, numClasses: number, rng: Rng): TunedState {
  const params: Params = new Map();
  for (const [name, def] of proto.params(w, spec.n, numClasses)) params.set(name, { shape: def.shape, data: def.init(rng) });
  return { protocol: spec, params, numClasses, hiddenSize: w.config.hiddenSize };
}

/**
 * Check a state's tensors against what the protocol needs for this
 * backbone: same names, same shapes. Errors name the tensor.
 */
export function checkParams(proto: Protocol, state: TunedState, c: ViTConfig, source: string): void {
  const defs = proto.params(c, state.protocol.n, state.numClasses);
  for (const [name, def] of defs) {
    const p = state.params.get(name);
    if (!p) throw new VptError(source, `lacks tensor "${name}" that ${proto.title(state.protocol.n)} needs`);
    if (p.shape.length !== def.shape.length || p.shape.some((v, i) => v !== def.shape[i])) {
      throw new VptError(source, `tensor "${name}" is [${p.shape}], the loaded backbone needs [${def.shape}]`);
    }
    if (p.data.length !== size(def.shape)) throw new VptError(source, `tensor "${name}" holds ${p.data.length} values for shape [${def.shape}]`);
  }
  for (const name of state.params.keys()) if (!defs.has(name)) throw new VptError(source, `unexpected tensor "${name}" for ${proto.title(state.protocol.n)}`);
}

/** Live variables from a host state. Built inside tidy: tf.variable keeps its initial tensor's handle otherwise. */
export function makeVars(proto: Protocol, state: TunedState, c: ViTConfig, trainable = true): Vars {
  const defs = proto.params(c, state.protocol.n, state.numClasses);
  const names = [...defs.keys()];
  const list = tf.tidy(() => names.map((name) => {
    const def = defs.get(name)!;
    const p = state.params.get(name);
    if (!p) throw new VptError(proto.name, `state lacks "${name}"`);
    const f = toForward(p.data, def.shape, def.layout);
    return tf.variable(tf.tensor(f.data, f.shape), trainable);
  }));
  return new Map(names.map((n, i) => [n, list[i]]));
}

/** Read live variables back into a host state (file layout). */
export async function readVars(proto: Protocol, vars: Vars, like: TunedState, c: ViTConfig): Promise<TunedState> {
  const defs = proto.params(c, like.protocol.n, like.numClasses);
  const params: Params = new Map();
  for (const [name, def] of defs) {
    const data = (await vars.get(name)!.data()) as Float32Array;
    params.set(name, { shape: def.shape, data: toFile(data, def.shape, def.layout) });
  }
  return { ...like, params };
}

export function disposeVars(vars: Vars): void {
  for (const v of vars.values()) v.dispose();
}

export function countTuned(state: TunedState): number {
  let n = 0;
  for (const p of state.params.values()) n += p.data.length;
  return n;
}

/** Trainable parameters a protocol would have, without building anything (for estimates). */
export function plannedParams(proto: Protocol, c: ViTConfig, n: number, numClasses: number): number {
  let total = 0;
  for (const def of proto.params(c, n, numClasses).values()) total += size(def.shape);
  return total;
}
