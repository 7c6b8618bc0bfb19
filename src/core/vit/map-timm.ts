/** timm `VisionTransformer` names (fused qkv, `blocks.N`, `norm`). */
import type { TensorMap } from '../io/tensor-map';
import { guessHeads, type ViTConfig } from './config';
import { countLayers, KeyTaker, requireShape } from './map-common';
import { oihwToPatchW, transpose2d, type BlockWeights, type MappedBackbone } from './weights';

export function isTimm(keys: string[]): boolean {
  return keys.includes('patch_embed.proj.weight');
}

export function mapTimm(t: TensorMap, file: string, warn: (m: string) => void): MappedBackbone {
  const pw = requireShape(t, 'patch_embed.proj.weight', 4, file);
  const pos = requireShape(t, 'pos_embed', 3, file);
  const [D, , P] = pw;
  const L = countLayers(t.keys(), /^blocks\.(\d+)\./);
  const fc1 = t.get('blocks.0.mlp.fc1.weight')?.shape;
  const M = fc1 ? fc1[0] : 4 * D;
  const grid = Math.round(Math.sqrt(pos[1] - 1));
  warn('timm weights carry no config: architecture inferred from tensor shapes (LayerNorm eps 1e-6)');
  const config: ViTConfig = { hiddenSize: D, numLayers: L, numHeads: guessHeads(D), mlpDim: M, imageSize: grid * P, patchSize: P, layerNormEps: 1e-6 };
  const T = grid * grid + 1;
  const k = new KeyTaker(t);
  const lin = (name: string, out: number, inn: number) => transpose2d(k.take(`${name}.weight`, [out, inn]), out, inn);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < L; i++) {
    const b = `blocks.${i}.`;
    blocks.push({
      ln1g: k.take(`${b}norm1.weight`, [D]), ln1b: k.take(`${b}norm1.bias`, [D]),
      // timm's qkv weight is [3d, d] with rows q | k | v, so its transpose is our [d, 3d].
      qkvW: lin(`${b}attn.qkv`, 3 * D, D), qkvB: k.take(`${b}attn.qkv.bias`, [3 * D]),
      outW: lin(`${b}attn.proj`, D, D), outB: k.take(`${b}attn.proj.bias`, [D]),
      ln2g: k.take(`${b}norm2.weight`, [D]), ln2b: k.take(`${b}norm2.bias`, [D]),
      fc1W: lin(`${b}mlp.fc1`, M, D), fc1B: k.take(`${b}mlp.fc1.bias`, [M]),
      fc2W: lin(`${b}mlp.fc2`, D, M), fc2B: k.take(`${b}mlp.fc2.bias`, [D]),
    });
  }
  const weights = {
    config,
    patchW: oihwToPatchW(k.take('patch_embed.proj.weight', [D, 3, P, P]), D, P),
    patchB: k.take('patch_embed.proj.bias', [D]),
    cls: k.take('cls_token', [1, 1, D]),
    pos: k.take('pos_embed', [1, T, D]),
    blocks,
    normG: k.take('norm.weight', [D]), normB: k.take('norm.bias', [D]),
  };
  const ignored = k.finish(file, (key) => /^(head\.|head_drop|pre_logits\.|fc_norm\.)/.test(key));
  return { weights, format: 'timm', ignored };
}
