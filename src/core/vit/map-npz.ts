/** The original ViT (JAX/Flax) `.npz` names, as the official VPT code loads them. */
import type { TensorMap } from '../io/tensor-map';
import type { ViTConfig } from './config';
import { countLayers, KeyTaker, requireShape } from './map-common';
import { concat1d, concatCols, type BlockWeights, type MappedBackbone } from './weights';

export function isNpzNaming(keys: string[]): boolean {
  return keys.includes('embedding/kernel');
}

export function mapNpz(t: TensorMap, file: string): MappedBackbone {
  const ek = requireShape(t, 'embedding/kernel', 4, file); // HWIO [P, P, 3, d]
  const pos = requireShape(t, 'Transformer/posembed_input/pos_embedding', 3, file);
  const q0 = requireShape(t, 'Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel', 3, file);
  const [P, , , D] = ek;
  const H = q0[1];
  const L = countLayers(t.keys(), /^Transformer\/encoderblock_(\d+)\//);
  const fc1 = t.get('Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel')?.shape;
  const M = fc1 ? fc1[1] : 4 * D;
  const grid = Math.round(Math.sqrt(pos[1] - 1));
  // The original ViT's flax LayerNorm uses epsilon 1e-6.
  const config: ViTConfig = { hiddenSize: D, numLayers: L, numHeads: H, mlpDim: M, imageSize: grid * P, patchSize: P, layerNormEps: 1e-6 };
  const hd = D / H;
  const T = grid * grid + 1;
  const k = new KeyTaker(t);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < L; i++) {
    const b = `Transformer/encoderblock_${i}/`;
    const att = `${b}MultiHeadDotProductAttention_1/`;
    // query/key/value kernels are [d, heads, head_dim]: flattened, that is already [d, d] in, out.
    blocks.push({
      ln1g: k.take(`${b}LayerNorm_0/scale`, [D]), ln1b: k.take(`${b}LayerNorm_0/bias`, [D]),
      qkvW: concatCols(['query', 'key', 'value'].map((n) => k.take(`${att}${n}/kernel`, [D, H, hd])), D),
      qkvB: concat1d(['query', 'key', 'value'].map((n) => k.take(`${att}${n}/bias`, [H, hd]))),
      outW: k.take(`${att}out/kernel`, [H, hd, D]), outB: k.take(`${att}out/bias`, [D]),
      ln2g: k.take(`${b}LayerNorm_2/scale`, [D]), ln2b: k.take(`${b}LayerNorm_2/bias`, [D]),
      fc1W: k.take(`${b}MlpBlock_3/Dense_0/kernel`, [D, M]), fc1B: k.take(`${b}MlpBlock_3/Dense_0/bias`, [M]),
      fc2W: k.take(`${b}MlpBlock_3/Dense_1/kernel`, [M, D]), fc2B: k.take(`${b}MlpBlock_3/Dense_1/bias`, [D]),
    });
  }
  const weights = {
    config,
    patchW: k.take('embedding/kernel', [P, P, 3, D]),
    patchB: k.take('embedding/bias', [D]),
    cls: k.take('cls', [1, 1, D]),
    pos: k.take('Transformer/posembed_input/pos_embedding', [1, T, D]),
    blocks,
    normG: k.take('Transformer/encoder_norm/scale', [D]), normB: k.take('Transformer/encoder_norm/bias', [D]),
  };
  const ignored = k.finish(file, (key) => /^(head\/|pre_logits\/)/.test(key));
  return { weights, format: 'npz', ignored };
}
