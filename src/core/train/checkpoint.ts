/**
 * A resumable run as plain data, stored as safetensors (tensors for the
 * arrays, JSON metadata for the rest). A checkpoint says which backbone and
 * settings it belongs to; resuming with others is refused.
 */
import { VptError } from '../errors';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import type { TensorMap } from '../io/tensor-map';
import type { Params, TunedState } from '../tuning/types';
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
  state: TunedState;
  optimizer: OptimizerState;
  rng: RngState;
  best: { epoch: number; valAccuracy: number; state: TunedState } | null;
  history: EpochReport[];
}

const FORMAT = 'vpt-checkpoint';

function putState(t: TensorMap, prefix: string, s: TunedState) {
  for (const [name, p] of s.params) t.set(prefix + name, { dtype: 'F32', shape: [p.data.length], data: p.data });
}

/** What a checkpoint says about its state besides the arrays. */
interface StateShape { protocol: TunedState['protocol']; numClasses: number; hiddenSize: number; shapes: Record<string, number[]> }

function shapeOf(s: TunedState): StateShape {
  return { protocol: s.protocol, numClasses: s.numClasses, hiddenSize: s.hiddenSize, shapes: Object.fromEntries([...s.params].map(([k, p]) => [k, p.shape])) };
}

/** Checkpoints written before protocols existed held VPT state only. */
function upgradeShape(raw: Record<string, unknown>): StateShape {
  if ('protocol' in raw) return raw as unknown as StateShape;
  const v = raw as { variant: 'deep' | 'shallow'; numPrompts: number; numClasses: number; hiddenSize: number };
  const d = v.hiddenSize;
  return {
    protocol: { name: `vpt-${v.variant}`, n: v.numPrompts }, numClasses: v.numClasses, hiddenSize: d,
    shapes: { prompts: [-1, v.numPrompts, d], 'head.weight': [v.numClasses, d], 'head.bias': [v.numClasses] },
  };
}

function getState(t: TensorMap, prefix: string, like: StateShape, file: string): TunedState {
  const params: Params = new Map();
  for (const [name, shape0] of Object.entries(like.shapes)) {
    const x = t.get(prefix + name);
    if (!x || !(x.data instanceof Float32Array)) throw new VptError(file, `checkpoint lacks ${prefix + name}`);
    const rest = shape0.slice(1).reduce((a, b) => a * b, 1);
    const shape = shape0[0] === -1 ? [x.data.length / rest, ...shape0.slice(1)] : shape0;
    if (!shape.every((s) => Number.isSafeInteger(s) && s >= 0) || shape.reduce((a, b) => a * b, 1) !== x.data.length) {
      throw new VptError(file, `checkpoint tensor ${prefix + name} holds ${x.data.length} values, its recorded shape is ${JSON.stringify(shape0)}`);
    }
    params.set(name, { shape, data: x.data });
  }
  return { protocol: like.protocol, numClasses: like.numClasses, hiddenSize: like.hiddenSize, params };
}

export function writeCheckpoint(c: Checkpoint): Uint8Array {
  const t: TensorMap = new Map();
  putState(t, 'state.', c.state);
  if (c.best) putState(t, 'best.', c.best.state);
  for (const [name, slots] of Object.entries(c.optimizer.slots)) {
    slots.forEach((a, i) => t.set(`optimizer.${name}.${i}`, { dtype: 'F32', shape: [a.length], data: a }));
  }
  const meta = {
    format: FORMAT,
    config: JSON.stringify(c.config), classes: JSON.stringify(c.classes), fingerprint: c.fingerprint,
    epoch: String(c.epoch), step: String(c.step), rng: JSON.stringify(c.rng), state_shape: JSON.stringify(shapeOf(c.state)),
    optimizer_step: String(c.optimizer.step), optimizer_slots: JSON.stringify(Object.fromEntries(Object.entries(c.optimizer.slots).map(([k, v]) => [k, v.length]))),
    best: JSON.stringify(c.best ? { epoch: c.best.epoch, valAccuracy: c.best.valAccuracy } : null),
    history: JSON.stringify(c.history),
  };
  return writeSafetensors(t, meta);
}

/**
 * Read a checkpoint. Anything malformed (a damaged or hand-edited file, a
 * checkpoint from a newer version) is a VptError naming the file, never a
 * TypeError from deep inside: a resume offer must fail cleanly.
 */
export function readCheckpoint(bytes: Uint8Array, file: string): Checkpoint {
  try {
    return parseCheckpoint(bytes, file);
  } catch (e) {
    if (e instanceof VptError) throw e;
    throw new VptError(file, `checkpoint is damaged (${(e as Error).message})`);
  }
}

function parseCheckpoint(bytes: Uint8Array, file: string): Checkpoint {
  const { tensors: t, metadata: md } = readSafetensors(bytes, file);
  if (md.get('format') !== FORMAT) throw new VptError(file, 'not a VPT Studio checkpoint');
  const j = <T>(k: string): T => {
    const s = md.get(k);
    if (s === undefined) throw new VptError(file, `checkpoint metadata lacks "${k}"`);
    try { return JSON.parse(s) as T; } catch { throw new VptError(file, `checkpoint metadata "${k}" is not valid JSON`); }
  };
  const shape = upgradeShape(j<Record<string, unknown>>('state_shape'));
  const bestInfo = j<{ epoch: number; valAccuracy: number } | null>('best');
  const slots: Record<string, Float32Array[]> = Object.create(null); // a slot named __proto__ stays a slot
  for (const [name, n] of Object.entries(j<Record<string, number>>('optimizer_slots'))) {
    // An optimizer keeps at most a few slots per tensor (Adam: 2): a larger count is a damaged file, not a loop to run.
    if (!Number.isInteger(n) || n < 0 || n > 8) throw new VptError(file, `checkpoint metadata says ${JSON.stringify(n)} optimizer slots for "${name}"`);
    slots[name] = Array.from({ length: n }, (_, i) => {
      const x = t.get(`optimizer.${name}.${i}`);
      if (!x || !(x.data instanceof Float32Array)) throw new VptError(file, `checkpoint lacks optimizer.${name}.${i}`);
      return x.data;
    });
  }
  return {
    config: upgradeConfig(j('config')), classes: j('classes'), fingerprint: md.get('fingerprint') ?? '',
    epoch: Number(md.get('epoch')), step: Number(md.get('step')),
    state: getState(t, 'state.', shape, file),
    optimizer: { step: Number(md.get('optimizer_step')), slots },
    rng: j('rng'),
    best: bestInfo ? { ...bestInfo, state: getState(t, 'best.', shape, file) } : null,
    history: j('history'),
  };
}

/** Configs written before protocols existed named the VPT variant and prompt count. */
function upgradeConfig(raw: Record<string, unknown>): TrainConfig {
  if ('protocol' in raw) return raw as unknown as TrainConfig;
  const { variant, numPrompts, ...rest } = raw as { variant: 'deep' | 'shallow'; numPrompts: number };
  return { ...(rest as unknown as TrainConfig), protocol: { name: `vpt-${variant}`, n: numPrompts }, cacheFeatures: true, recompute: false };
}
