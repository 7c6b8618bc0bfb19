/**
 * The per-task export, `NAME.vpt.safetensors`: what a protocol tuned (prompts,
 * bias deltas, adapter or LoRA weights, blocks) plus the head, and a
 * metadata block that says what they belong to. VPT tasks can also be read
 * and written under the official VPT PyTorch state-dict names.
 */
import { VptError } from '../errors';
import { checkParams } from '../tuning/params';
import { fromVptState, toVptState } from '../tuning/prompt';
import { formatSpec, parseSpec, protocolOf } from '../tuning/registry';
import type { Params, TunedState } from '../tuning/types';
import type { VptState, Variant } from '../tuning/vpt';
import type { Preprocessing, ViTConfig } from '../vit/config';
import type { Backbone } from '../vit/load';
import { readSafetensors, writeSafetensors, type WriteDtype } from './safetensors';
import type { TensorMap } from './tensor-map';

export const TASK_FORMAT = 'vpt-task';
/** 2: any protocol (`protocol` metadata); 1: VPT only. Both are read. */
export const TASK_FORMAT_VERSION = '2';

export interface BackboneRef { name: string; architecture: string; fingerprint: string; hidden_size: number; num_layers: number; patch_size: number; image_size: number }

/** What a task file records about its backbone (`name` defaults to the backbone's own). */
export function backboneRef(b: Pick<Backbone, 'name' | 'architecture' | 'fingerprint' | 'weights'>, name = b.name): BackboneRef {
  const c = b.weights.config;
  return { name, architecture: b.architecture, fingerprint: b.fingerprint, hidden_size: c.hiddenSize, num_layers: c.numLayers, patch_size: c.patchSize, image_size: c.imageSize };
}

export interface TaskMeta {
  classes: string[];
  backbone?: BackboneRef;
  preprocessing?: Preprocessing;
  training?: Record<string, unknown>;
  metrics?: { accuracy?: number; per_class?: Record<string, number>; [k: string]: unknown };
}

export interface Task { state: TunedState; meta: TaskMeta; naming: 'vpt' | 'official'; warnings: string[] }

export type Naming = 'vpt' | 'official';

const OFFICIAL = {
  shallow: 'enc.transformer.prompt_embeddings',
  deep: 'enc.transformer.deep_prompt_embeddings',
  w: 'head.last_layer.weight',
  b: 'head.last_layer.bias',
};

const isVpt = (s: TunedState) => s.protocol.name === 'vpt-deep' || s.protocol.name === 'vpt-shallow';

export function writeTask(tuned: TunedState, meta: TaskMeta, opts: { dtype?: WriteDtype; naming?: Naming } = {}): Uint8Array {
  const md: Record<string, string> = {
    format: TASK_FORMAT,
    format_version: TASK_FORMAT_VERSION,
    protocol: formatSpec(tuned.protocol),
    classes: JSON.stringify(meta.classes),
  };
  if (meta.backbone) md.backbone = JSON.stringify(meta.backbone);
  if (meta.preprocessing) md.preprocessing = JSON.stringify(meta.preprocessing);
  if (meta.training) md.training = JSON.stringify(meta.training);
  if (meta.metrics) md.metrics = JSON.stringify(meta.metrics);
  if (!isVpt(tuned)) {
    if (opts.naming === 'official') throw new VptError('naming', 'official names exist for VPT tasks only');
    const t: TensorMap = new Map();
    for (const [name, p] of tuned.params) t.set(name, { dtype: 'F32', shape: p.shape, data: p.data });
    return writeSafetensors(t, md, opts.dtype ?? 'F32');
  }
  const state = toVptState(tuned);
  const { numPrompts: p, hiddenSize: d, numClasses: C } = state;
  const Lp = state.prompts.length / (p * d);
  const t: TensorMap = new Map();
  // Version-1 readers know VPT tasks by these two keys.
  md.variant = state.variant;
  md.num_prompts = String(p);
  if (opts.naming === 'official') {
    // Official layout: layer-1 prompts [1, p, d] and, for deep, the rest [L-1, p, d].
    t.set(OFFICIAL.shallow, { dtype: 'F32', shape: [1, p, d], data: state.prompts.subarray(0, p * d) });
    if (state.variant === 'deep' && Lp > 1) t.set(OFFICIAL.deep, { dtype: 'F32', shape: [Lp - 1, p, d], data: state.prompts.subarray(p * d) });
    t.set(OFFICIAL.w, { dtype: 'F32', shape: [C, d], data: state.headW });
    t.set(OFFICIAL.b, { dtype: 'F32', shape: [C], data: state.headB });
  } else {
    t.set('prompts', { dtype: 'F32', shape: [Lp, p, d], data: state.prompts });
    t.set('head.weight', { dtype: 'F32', shape: [C, d], data: state.headW });
    t.set('head.bias', { dtype: 'F32', shape: [C], data: state.headB });
  }
  return writeSafetensors(t, md, opts.dtype ?? 'F32');
}

function parseJson<T>(md: Map<string, string>, key: string, file: string): T | undefined {
  const s = md.get(key);
  if (s === undefined) return undefined;
  try { return JSON.parse(s) as T; } catch { throw new VptError(file, `metadata "${key}" is not valid JSON`); }
}

/** Is this file a task (any protocol, ours or official VPT naming) rather than a backbone? */
export function isTaskFile(t: TensorMap, md: Map<string, string>): boolean {
  return (md.get('format') === TASK_FORMAT && md.has('protocol')) || t.has('prompts') || t.has(OFFICIAL.shallow) || t.has(OFFICIAL.w);
}

function readMeta(md: Map<string, string>, file: string, C: number, classNames?: string[]): TaskMeta {
  if (md.has('format') && md.get('format') !== TASK_FORMAT && md.get('format') !== 'pt') throw new VptError(file, `metadata format is "${md.get('format')}", expected "${TASK_FORMAT}"`);
  let classes = parseJson<string[]>(md, 'classes', file);
  if (classes && (!Array.isArray(classes) || !classes.every((c) => typeof c === 'string'))) throw new VptError(file, 'metadata "classes" is not a list of names');
  if (classNames) classes = classNames;
  if (!classes) classes = Array.from({ length: C }, (_, i) => String(i));
  if (classes.length !== C) throw new VptError(file, `${classes.length} class names for a head with ${C} classes`);
  return {
    classes,
    backbone: parseJson<BackboneRef>(md, 'backbone', file),
    preprocessing: parseJson<Preprocessing>(md, 'preprocessing', file),
    training: parseJson(md, 'training', file),
    metrics: parseJson(md, 'metrics', file),
  };
}

/** A task of any protocol other than VPT: its tensors are its parameters, under the protocol's names. */
function readProtocolTask(t: TensorMap, md: Map<string, string>, file: string, classNames?: string[]): Task {
  let spec;
  try { spec = parseSpec(md.get('protocol')!); } catch (e) { throw new VptError(file, `metadata "protocol": ${(e as Error).message.replace(/^--protocols: /, '')}`); }
  const params: Params = new Map();
  for (const [name, x] of t) {
    if (!(x.data instanceof Float32Array)) throw new VptError(file, `tensor "${name}" is ${x.dtype}, expected a float type`);
    params.set(name, { shape: x.shape, data: x.data });
  }
  const hw = params.get('head.weight'), hb = params.get('head.bias');
  if (!hw || hw.shape.length !== 2) throw new VptError(file, 'task file lacks a 2-D "head.weight"');
  if (!hb || hb.shape.length !== 1 || hb.shape[0] !== hw.shape[0]) throw new VptError(file, `"head.bias" must be [${hw.shape[0]}] to match head.weight`);
  const [C, d] = hw.shape;
  const meta = readMeta(md, file, C, classNames);
  const warnings = meta.backbone?.fingerprint ? [] : ['the task file carries no backbone fingerprint: accepted because the shapes fit'];
  checkFinite(params, file);
  return { state: { protocol: spec, params, numClasses: C, hiddenSize: d }, meta, naming: 'vpt', warnings };
}

/** A task with NaN or Inf would classify every image the same: refuse it by name. */
function checkFinite(params: Params, file: string): void {
  for (const [name, p] of params) {
    const i = p.data.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) throw new VptError(file, `tensor "${name}" holds ${p.data[i]} at index ${i}: the task file is damaged (or was saved from a diverged run)`);
  }
}

export function readTask(bytes: Uint8Array, file: string, classNames?: string[]): Task {
  const { tensors: t, metadata: md } = readSafetensors(bytes, file);
  const warnings: string[] = [];
  const proto = md.get('protocol');
  if (proto !== undefined && !/^vpt-(deep|shallow)/.test(proto) && md.get('format') === TASK_FORMAT) return readProtocolTask(t, md, file, classNames);
  if (!isTaskFile(t, md)) {
    if ([...t.keys()].some((k) => /patch_embed|embedding\/kernel|patch_embeddings/.test(k))) throw new VptError(file, 'this is a backbone, not a task file');
    throw new VptError(file, 'not a task file: it has neither `prompts` nor the official `enc.transformer.prompt_embeddings`');
  }
  const f = (name: string, rank: number) => {
    const x = t.get(name);
    if (!x) throw new VptError(file, `task file lacks tensor "${name}"`);
    if (x.shape.length !== rank || !(x.data instanceof Float32Array)) throw new VptError(file, `tensor "${name}" has shape ${JSON.stringify(x.shape)}, expected rank ${rank} float`);
    return x;
  };
  const naming: Naming = t.has('prompts') ? 'vpt' : 'official';
  let prompts: Float32Array, p: number, d: number, variant: Variant;
  let hw, hb;
  if (naming === 'vpt') {
    const pr = f('prompts', 3);
    [, p, d] = pr.shape;
    prompts = pr.data as Float32Array;
    variant = (md.get('variant') as Variant) ?? (pr.shape[0] > 1 ? 'deep' : 'shallow');
    hw = f('head.weight', 2); hb = f('head.bias', 1);
  } else {
    const s = f(OFFICIAL.shallow, 3);
    [, p, d] = s.shape;
    const deep = t.get(OFFICIAL.deep);
    if (deep && (deep.shape.length !== 3 || deep.shape[1] !== p || deep.shape[2] !== d)) throw new VptError(file, `${OFFICIAL.deep} has shape ${JSON.stringify(deep.shape)}, expected [L-1, ${p}, ${d}]`);
    variant = deep ? 'deep' : 'shallow';
    prompts = new Float32Array(s.data.length + (deep?.data.length ?? 0));
    prompts.set(s.data);
    if (deep) prompts.set(deep.data, s.data.length);
    hw = f(OFFICIAL.w, 2); hb = f(OFFICIAL.b, 1);
  }
  if (variant !== 'deep' && variant !== 'shallow') throw new VptError(file, `unknown variant "${variant}"`);
  const C = hw.shape[0];
  if (hw.shape[1] !== d) throw new VptError(file, `head.weight is [${hw.shape}] but the prompts have d = ${d}`);
  if (hb.shape[0] !== C) throw new VptError(file, `head.bias has ${hb.shape[0]} classes but head.weight has ${C}`);
  const meta = readMeta(md, file, C, classNames);
  if (!meta.backbone?.fingerprint) warnings.push('the task file carries no backbone fingerprint (made by PyTorch?): accepted because the dimensions fit');
  const vpt: VptState = { variant, prompts, numPrompts: p, headW: hw.data as Float32Array, headB: hb.data as Float32Array, numClasses: C, hiddenSize: d };
  const state = fromVptState(vpt);
  checkFinite(state.params, file);
  return { state, meta, naming, warnings };
}

/** Refuse a task that does not belong to this backbone, with the reason. */
export function checkTaskAgainstBackbone(task: Task, c: ViTConfig, fingerprint: string, file: string): void {
  const t = task.state;
  if (t.hiddenSize !== c.hiddenSize) throw new VptError(file, `task was made for a backbone with hidden size ${t.hiddenSize}, the loaded backbone has ${c.hiddenSize}`);
  if (isVpt(t)) {
    const s = toVptState(t);
    const Lp = s.prompts.length / (s.numPrompts * s.hiddenSize);
    if (s.variant === 'deep' && Lp !== c.numLayers) throw new VptError(file, `VPT-deep task has prompts for ${Lp} layers, the loaded backbone has ${c.numLayers}`);
    if (s.variant === 'shallow' && Lp !== 1) throw new VptError(file, `VPT-shallow task has ${Lp} prompt layers, expected 1`);
  }
  checkParams(protocolOf(t.protocol.name), t, c, file);
  const fp = task.meta.backbone?.fingerprint;
  if (fp && fp !== fingerprint) {
    throw new VptError(file, `task belongs to backbone "${task.meta.backbone?.name}" (fingerprint ${fp.slice(0, 12)}...), not the loaded one (${fingerprint.slice(0, 12)}...)`);
  }
}
