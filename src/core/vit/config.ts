/** ViT architecture and preprocessing: one typed description per backbone. */
import { VptError } from '../errors';

export interface ViTConfig {
  imageSize: number;
  patchSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  mlpDim: number;
  /** HF in21k checkpoints say 1e-12; the original ViT (and timm) use 1e-6. */
  layerNormEps: number;
}

export type ResizeMode = 'crop' | 'direct';

export interface Preprocessing {
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
  resize: ResizeMode;
  /** Where mean/std came from: `preprocessor_config.json`, a preset, the default, or flags. */
  source: 'preprocessor_config' | 'preset' | 'default' | 'flags';
}

export interface Preset {
  name: string;
  config: ViTConfig;
  mean: [number, number, number];
  std: [number, number, number];
}

const HALF: [number, number, number] = [0.5, 0.5, 0.5];

function preset(name: string, patch: number, d: number, L: number, heads: number, mlp: number, eps: number, size = 224): Preset {
  return { name, config: { imageSize: size, patchSize: patch, hiddenSize: d, numLayers: L, numHeads: heads, mlpDim: mlp, layerNormEps: eps }, mean: HALF, std: HALF };
}

/**
 * The common backbones. The Google ViT checkpoints (npz and their HF ports)
 * were trained with inputs scaled to [-1, 1], i.e. mean = std = 0.5.
 */
export const PRESETS: Preset[] = [
  preset('ViT-Ti/16', 16, 192, 12, 3, 768, 1e-6),
  preset('ViT-S/16', 16, 384, 12, 6, 1536, 1e-6),
  preset('ViT-S/32', 32, 384, 12, 6, 1536, 1e-6),
  preset('ViT-B/16', 16, 768, 12, 12, 3072, 1e-6),
  preset('ViT-B/32', 32, 768, 12, 12, 3072, 1e-6),
  preset('ViT-L/16', 16, 1024, 24, 16, 4096, 1e-6),
  preset('ViT-L/32', 32, 1024, 24, 16, 4096, 1e-6),
  preset('ViT-H/14', 14, 1280, 32, 16, 5120, 1e-6),
];

export function findPreset(c: ViTConfig): Preset | undefined {
  return PRESETS.find((p) => p.config.patchSize === c.patchSize && p.config.hiddenSize === c.hiddenSize &&
    p.config.numLayers === c.numLayers && p.config.mlpDim === c.mlpDim);
}

/** Heads are not visible in HF/timm shapes: a preset knows, else 64-wide heads. */
export function guessHeads(d: number): number {
  const p = PRESETS.find((x) => x.config.hiddenSize === d);
  if (p) return p.config.numHeads;
  return d % 64 === 0 ? d / 64 : 1;
}

export function numTokens(c: ViTConfig): number {
  const g = c.imageSize / c.patchSize;
  return g * g + 1;
}

export function validateConfig(c: ViTConfig, file: string): void {
  const ints: (keyof ViTConfig)[] = ['imageSize', 'patchSize', 'hiddenSize', 'numLayers', 'numHeads', 'mlpDim'];
  for (const k of ints) {
    if (!Number.isSafeInteger(c[k]) || c[k] <= 0) throw new VptError(file, `config ${k} = ${c[k]} is not a positive integer`);
  }
  if (c.imageSize % c.patchSize) throw new VptError(file, `image size ${c.imageSize} is not a multiple of patch size ${c.patchSize}`);
  if (c.hiddenSize % c.numHeads) throw new VptError(file, `hidden size ${c.hiddenSize} is not divisible by ${c.numHeads} heads`);
  if (!(c.layerNormEps > 0)) throw new VptError(file, `layer_norm_eps ${c.layerNormEps} must be positive`);
}

export function describeArch(c: ViTConfig): string {
  const name = findPreset(c)?.name;
  return `${name ?? 'ViT'} (image ${c.imageSize}, patch ${c.patchSize}, d ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads, MLP ${c.mlpDim})`;
}

/** Resolve preprocessing: preprocessor_config.json > preset > 0.5/0.5 (with a warning). */
export function resolvePreprocessing(c: ViTConfig, hfPreprocessor: unknown | undefined, warn: (m: string) => void): Preprocessing {
  const size = c.imageSize;
  const pc = hfPreprocessor as { image_mean?: unknown; image_std?: unknown } | undefined;
  const triple = (v: unknown): [number, number, number] | undefined =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? [v[0], v[1], v[2]] : undefined;
  if (pc && triple(pc.image_mean) && triple(pc.image_std)) {
    return { size, mean: triple(pc.image_mean)!, std: triple(pc.image_std)!, resize: 'crop', source: 'preprocessor_config' };
  }
  const p = findPreset(c);
  if (p) return { size, mean: p.mean, std: p.std, resize: 'crop', source: 'preset' };
  warn('no preprocessor_config.json and no known preset: using mean = std = 0.5 (the original ViT convention)');
  return { size, mean: HALF, std: HALF, resize: 'crop', source: 'default' };
}
