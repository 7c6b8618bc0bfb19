/** Hugging Face transformers `ViTModel` names (optionally prefixed `vit.`). */
import { VptError } from '../errors';
import type { TensorMap } from '../io/tensor-map';
import { guessHeads, type ViTConfig } from './config';
import { countLayers, KeyTaker, requireShape } from './map-common';
import { concat1d, concatCols, oihwToPatchW, transpose2d, type BlockWeights, type MappedBackbone } from './weights';

export function isHf(keys: string[]): boolean {
  return keys.some((k) => /^(vit\.)?embeddings\.patch_embeddings\.projection\.weight$/.test(k));
}

/** HF config.json fields we read; everything else in it is ignored. */
export interface HfConfigJson {
  hidden_size?: number; num_hidden_layers?: number; num_attention_heads?: number;
  intermediate_size?: number; image_size?: number; patch_size?: number; layer_norm_eps?: number;
}

export function mapHf(t: TensorMap, file: string, cfg: HfConfigJson | undefined, warn: (m: string) => void): MappedBackbone {
  const prefix = [...t.keys()].some((k) => k.startsWith('vit.embeddings.')) ? 'vit.' : '';
  const pw = requireShape(t, `${prefix}embeddings.patch_embeddings.projection.weight`, 4, file);
  const pos = requireShape(t, `${prefix}embeddings.position_embeddings`, 3, file);
  const [d, , P] = pw;
  const L = countLayers(t.keys(), new RegExp(`^${prefix.replace('.', '\\.')}encoder\\.layer\\.(\\d+)\\.`));
  const grid = Math.round(Math.sqrt(pos[1] - 1));
  const fc1 = t.get(`${prefix}encoder.layer.0.intermediate.dense.weight`)?.shape;
  if (!cfg) warn('no config.json beside the weights: architecture inferred from tensor shapes');
  const config: ViTConfig = {
    hiddenSize: cfg?.hidden_size ?? d,
    numLayers: cfg?.num_hidden_layers ?? L,
    numHeads: cfg?.num_attention_heads ?? guessHeads(d),
    mlpDim: cfg?.intermediate_size ?? (fc1 ? fc1[0] : 4 * d),
    imageSize: cfg?.image_size ?? grid * P,
    patchSize: cfg?.patch_size ?? P,
    // transformers' ViTConfig default is 1e-12 when config.json omits it.
    layerNormEps: cfg?.layer_norm_eps ?? (cfg ? 1e-12 : 1e-6),
  };
  if (config.numLayers !== L) throw new VptError(file, `config.json says ${config.numLayers} layers but the weights have ${L}`);
  const { hiddenSize: D, mlpDim: M, patchSize: PP } = config;
  const T = (config.imageSize / PP) ** 2 + 1;
  const k = new KeyTaker(t, prefix);
  const lin = (name: string, out: number, inn: number) => transpose2d(k.take(`${name}.weight`, [out, inn]), out, inn);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < L; i++) {
    const b = `encoder.layer.${i}.`;
    blocks.push({
      ln1g: k.take(`${b}layernorm_before.weight`, [D]), ln1b: k.take(`${b}layernorm_before.bias`, [D]),
      qkvW: concatCols(['query', 'key', 'value'].map((n) => lin(`${b}attention.attention.${n}`, D, D)), D),
      qkvB: concat1d(['query', 'key', 'value'].map((n) => k.take(`${b}attention.attention.${n}.bias`, [D]))),
      outW: lin(`${b}attention.output.dense`, D, D), outB: k.take(`${b}attention.output.dense.bias`, [D]),
      ln2g: k.take(`${b}layernorm_after.weight`, [D]), ln2b: k.take(`${b}layernorm_after.bias`, [D]),
      fc1W: lin(`${b}intermediate.dense`, M, D), fc1B: k.take(`${b}intermediate.dense.bias`, [M]),
      fc2W: lin(`${b}output.dense`, D, M), fc2B: k.take(`${b}output.dense.bias`, [D]),
    });
  }
  const weights = {
    config,
    patchW: oihwToPatchW(k.take('embeddings.patch_embeddings.projection.weight', [D, 3, PP, PP]), D, PP),
    patchB: k.take('embeddings.patch_embeddings.projection.bias', [D]),
    cls: k.take('embeddings.cls_token', [1, 1, D]),
    pos: k.take('embeddings.position_embeddings', [1, T, D]),
    blocks,
    normG: k.take('layernorm.weight', [D]), normB: k.take('layernorm.bias', [D]),
  };
  const ignored = k.finish(file, (key) => /^(vit\.)?(pooler\.|classifier\.|embeddings\.mask_token$)|^classifier\./.test(key));
  return { weights, format: 'hf', ignored };
}
