/**
 * From file bytes to a described backbone: detect the container
 * (safetensors or npz), detect the naming scheme from the keys, map, then
 * resolve preprocessing and fingerprint. DOM-free: the caller reads files.
 */
import { VptError } from '../errors';
import { looksLikeZip, readNpz } from '../io/npz';
import { readSafetensors } from '../io/safetensors';
import type { TensorMap } from '../io/tensor-map';
import { describeArch, resolvePreprocessing, validateConfig, type Preprocessing } from './config';
import { fingerprint } from './fingerprint';
import { isHf, mapHf, type HfConfigJson } from './map-hf';
import { isNpzNaming, mapNpz } from './map-npz';
import { isTimm, mapTimm } from './map-timm';
import type { MappedBackbone, ViTWeights, WeightFormat } from './weights';

export interface Backbone {
  name: string;
  weights: ViTWeights;
  format: WeightFormat;
  ignored: string[];
  preprocessing: Preprocessing;
  fingerprint: string;
  architecture: string;
  warnings: string[];
}

export interface BackboneSource {
  /** File name (used in every error). */
  name: string;
  bytes: Uint8Array;
  /** Parsed config.json beside the weights, if any. */
  config?: unknown;
  /** Parsed preprocessor_config.json beside the weights, if any. */
  preprocessor?: unknown;
}

export async function readTensorFile(bytes: Uint8Array, file: string): Promise<{ tensors: TensorMap; metadata: Map<string, string> }> {
  if (looksLikeZip(bytes)) return { tensors: await readNpz(bytes, file), metadata: new Map() };
  return readSafetensors(bytes, file);
}

export function mapWeights(t: TensorMap, file: string, config: unknown, warn: (m: string) => void): MappedBackbone {
  const keys = [...t.keys()];
  if (isNpzNaming(keys)) return mapNpz(t, file);
  if (isTimm(keys)) return mapTimm(t, file, warn);
  if (isHf(keys)) return mapHf(t, file, config as HfConfigJson | undefined, warn);
  if (keys.some((k) => /prompt_embeddings|last_layer|^prompts$|^head\.weight$/.test(k))) {
    throw new VptError(file, 'this is a task file (prompts and head), not a backbone');
  }
  throw new VptError(file, `not a ViT backbone: none of the known naming schemes (Hugging Face ViTModel, timm, original ViT npz) matches its keys (${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', ...' : ''})`);
}

function checkFinite(w: ViTWeights, file: string): void {
  const named: [string, Float32Array][] = [['patch embedding', w.patchW], ['position embeddings', w.pos], ['cls token', w.cls], ['final LayerNorm', w.normG]];
  w.blocks.forEach((b, i) => Object.entries(b).forEach(([k, v]) => named.push([`block ${i} ${k}`, v as Float32Array])));
  for (const [n, a] of named) {
    for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) throw new VptError(file, `weights contain NaN or Inf (${n})`);
  }
}

export async function loadBackbone(src: BackboneSource): Promise<Backbone> {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const { tensors } = await readTensorFile(src.bytes, src.name);
  const mapped = mapWeights(tensors, src.name, src.config, warn);
  validateConfig(mapped.weights.config, src.name);
  checkFinite(mapped.weights, src.name);
  const preprocessing = resolvePreprocessing(mapped.weights.config, src.preprocessor, warn);
  return {
    name: src.name,
    weights: mapped.weights,
    format: mapped.format,
    ignored: mapped.ignored,
    preprocessing,
    fingerprint: await fingerprint(mapped.weights),
    architecture: describeArch(mapped.weights.config),
    warnings,
  };
}
