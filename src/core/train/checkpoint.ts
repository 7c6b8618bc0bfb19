/**
 * A resumable run as plain data, stored as safetensors (tensors for the
 * arrays, JSON metadata for the rest). A checkpoint says which backbone and
 * settings it belongs to; resuming with others is refused.
 */
import { VptError } from '../errors';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import type { TensorMap } from '../io/tensor-map';
import type { VptState } from '../tuning/vpt';
import type { TrainConfig } from './config';
import type { OptimizerState } from './optimizer';
import type { RngState } from './rng';

export interface EpochReport {
  epoch: number; /** 1-based */
  loss: number;
  trainAccuracy: number;
  valAccuracy: number | null;
  lr: number; /** applied rate at the epoch's last step */
  imagesPerSecond: number;
  seconds: number;
}

export interface Checkpoint {
  config: TrainConfig;
  classes: string[];
  fingerprint: string;
  /** Epochs completed. */
  epoch: number;
  step: number;
  state: VptState;
  optimizer: OptimizerState;
  rng: RngState;
  best: { epoch: number; valAccuracy: number; state: VptState } | null;
  history: EpochReport[];
}

const FORMAT = 'vpt-checkpoint';

function putState(t: TensorMap, prefix: string, s: VptState) {
  t.set(`${prefix}prompts`, { dtype: 'F32', shape: [s.prompts.length], data: s.prompts });
  t.set(`${prefix}head.weight`, { dtype: 'F32', shape: [s.headW.length], data: s.headW });
  t.set(`${prefix}head.bias`, { dtype: 'F32', shape: [s.headB.length], data: s.headB });
}

function getState(t: TensorMap, prefix: string, like: Omit<VptState, 'prompts' | 'headW' | 'headB'>, file: string): VptState {
  const g = (k: string) => {
    const x = t.get(prefix + k);
    if (!x || !(x.data instanceof Float32Array)) throw new VptError(file, `checkpoint lacks ${prefix + k}`);
    return x.data;
  };
  return { ...like, prompts: g('prompts'), headW: g('head.weight'), headB: g('head.bias') };
}

export function writeCheckpoint(c: Checkpoint): Uint8Array {
  const t: TensorMap = new Map();
  putState(t, 'state.', c.state);
  if (c.best) putState(t, 'best.', c.best.state);
  for (const [name, slots] of Object.entries(c.optimizer.slots)) {
    slots.forEach((a, i) => t.set(`optimizer.${name}.${i}`, { dtype: 'F32', shape: [a.length], data: a }));
  }
  const { prompts: _p, headW: _w, headB: _b, ...shape } = c.state;
  const meta = {
    format: FORMAT,
    config: JSON.stringify(c.config), classes: JSON.stringify(c.classes), fingerprint: c.fingerprint,
    epoch: String(c.epoch), step: String(c.step), rng: JSON.stringify(c.rng), state_shape: JSON.stringify(shape),
    optimizer_step: String(c.optimizer.step), optimizer_slots: JSON.stringify(Object.fromEntries(Object.entries(c.optimizer.slots).map(([k, v]) => [k, v.length]))),
    best: JSON.stringify(c.best ? { epoch: c.best.epoch, valAccuracy: c.best.valAccuracy } : null),
    history: JSON.stringify(c.history),
  };
  return writeSafetensors(t, meta);
}

export function readCheckpoint(bytes: Uint8Array, file: string): Checkpoint {
  const { tensors: t, metadata: md } = readSafetensors(bytes, file);
  if (md.get('format') !== FORMAT) throw new VptError(file, 'not a VPT Studio checkpoint');
  const j = <T>(k: string): T => {
    const s = md.get(k);
    if (s === undefined) throw new VptError(file, `checkpoint metadata lacks "${k}"`);
    try { return JSON.parse(s) as T; } catch { throw new VptError(file, `checkpoint metadata "${k}" is not valid JSON`); }
  };
  const shape = j<Omit<VptState, 'prompts' | 'headW' | 'headB'>>('state_shape');
  const bestInfo = j<{ epoch: number; valAccuracy: number } | null>('best');
  const slots: Record<string, Float32Array[]> = {};
  for (const [name, n] of Object.entries(j<Record<string, number>>('optimizer_slots'))) {
    slots[name] = Array.from({ length: n }, (_, i) => {
      const x = t.get(`optimizer.${name}.${i}`);
      if (!x || !(x.data instanceof Float32Array)) throw new VptError(file, `checkpoint lacks optimizer.${name}.${i}`);
      return x.data;
    });
  }
  return {
    config: j('config'), classes: j('classes'), fingerprint: md.get('fingerprint') ?? '',
    epoch: Number(md.get('epoch')), step: Number(md.get('step')),
    state: getState(t, 'state.', shape, file),
    optimizer: { step: Number(md.get('optimizer_step')), slots },
    rng: j('rng'),
    best: bestInfo ? { ...bestInfo, state: getState(t, 'best.', shape, file) } : null,
    history: j('history'),
  };
}
