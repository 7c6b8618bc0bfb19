/**
 * Micro-batch size from the device's limits. On WebGPU a tensor larger than
 * `maxStorageBufferBindingSize` silently reads back as zeros, so no single
 * activation may exceed it; the biggest per-image tensors of a ViT step are
 * the attention scores [H, T, T] and the MLP hidden layer [T, mlp].
 */
import type { ViTConfig } from '../vit/config';

export function largestActivationBytes(c: ViTConfig, prompts: number): number {
  const T = (c.imageSize / c.patchSize) ** 2 + 1 + prompts;
  return 4 * Math.max(c.numHeads * T * T, T * c.mlpDim, T * 3 * c.hiddenSize);
}

/** The largest micro-batch <= batch whose biggest tensor fits `maxBindingBytes` (with 10% headroom). */
export function chooseMicroBatch(c: ViTConfig, prompts: number, batch: number, maxBindingBytes: number | undefined): number {
  if (!maxBindingBytes) return batch;
  const per = largestActivationBytes(c, prompts);
  return Math.max(1, Math.min(batch, Math.floor((0.9 * maxBindingBytes) / per)));
}
