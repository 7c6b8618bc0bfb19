/**
 * Micro-batch size from the device's limits. On WebGPU a tensor larger than
 * `maxStorageBufferBindingSize` silently reads back as zeros, so no single
 * activation may exceed it; and the whole step's activations (the tape keeps
 * every block's intermediates until backward) must fit a memory budget.
 */
import { promptTokens, protocolOf } from '../tuning/registry';
import { headwisePays } from '../vit/attention-form';
import type { ViTConfig } from '../vit/config';
import type { TrainConfig } from './config';

function tokens(c: ViTConfig, prompts: number): number {
  return (c.imageSize / c.patchSize) ** 2 + 1 + prompts;
}

/** The biggest single tensor of one image: attention scores [H, T, T], the MLP hidden [T, mlp] or qkv [T, 3d]. */
export function largestActivationBytes(c: ViTConfig, prompts: number): number {
  const T = tokens(c, prompts);
  return 4 * Math.max(c.numHeads * T * T, T * c.mlpDim, T * 3 * c.hiddenSize);
}

/**
 * Activation bytes one image needs in a step. Fitted to tf.profile peaks of
 * tfjs 4.22 steps with the batched attention that webgpu, webgl and cpu run
 * (five shapes from the 32-pixel demo model to ViT-Ti/16 with p = 50, on
 * cpu): per block about 5 [T, d] + 20 [T, mlp] + 6.6 [H, T, T] floats
 * (within 4% of every one), several times a count of the tensors the tape
 * saves, because the backward pass holds intermediate gradients until it
 * ends. With recomputation: 12.6 [T, d] per block (each block's kept input,
 * its gradient and what the rerun leaves) plus 1.12 blocks' worth while one
 * block is rerun and differentiated; this one is fitted to the worst case
 * (p = 50, exact) and over-estimates the others by up to 26%. webgpu's
 * fused kernels and wasm's per-head attention keep less (SCALE, below).
 */
export function activationBytesPerImage(c: ViTConfig, prompts: number, recompute = false, form: AttentionForm = 'batched'): number {
  const T = tokens(c, prompts);
  const perBlock = T * (5 * c.hiddenSize + 20 * c.mlpDim) + 6.6 * c.numHeads * T * T;
  const bytes = 4 * (recompute ? 12.6 * c.numLayers * T * c.hiddenSize + 1.12 * perBlock : perBlock * c.numLayers);
  return form === 'batched' ? bytes : bytes * SCALE[form][recompute ? 'recompute' : 'plain'];
}

/** How attention runs (vit/attention.ts): the batched tfjs ops, webgpu's fused kernels, wasm's SIMD kernels or its per-head products. */
export type AttentionForm = 'batched' | 'fused' | 'simd' | 'headwise';

/**
 * The smaller footprints, as shares of the batched estimate above, measured
 * as VPT-deep p = 10 peaks per image and scaled with a margin, so that the
 * planner errs safe.
 * - fused: webgpu's fused kernels (vit/webgpu-kernels.ts,
 *   vit/webgpu-attention.ts) with each frozen block one gradient node
 *   (vit/fused-block.ts), which frees each gradient inside a block once it
 *   is used: 0.21 (the 32-pixel demo model) and 0.17 (ViT-Ti/16 at 224,
 *   batch 2 to 4), 0.31 for both with recomputation, on Dawn (tensor bytes do
 *   not depend on the adapter). With the same kernels on the tape they were
 *   0.43 and 0.42-0.45 (0.35-0.39 recomputed); before attention was fused,
 *   0.63-0.67 and 0.38-0.52, ViT-B/16 at 224 included (on an H200). ViT-B/16
 *   has ViT-Ti/16's ratio of attention to token bytes (H T / d), so it
 *   should fall alike.
 * - headwise: wasm's per-head attention (vit/attention.ts), which keeps the
 *   probabilities and builds each head's operands one image at a time, with
 *   each frozen block one gradient node (vit/fused-block.ts): 0.33 (demo
 *   model, batch 8) and 0.27 (ViT-Ti/16, batch 2 and 4); 0.56 and 0.65 with
 *   recomputation. On the tape, one node per op, they were 0.52 and 0.54.
 * - simd: wasm's SIMD kernels (vit/wasm-simd.ts): attention keeps one [B*H,
 *   T, T] tensor of probabilities, and the norms and GELU their inputs only:
 *   0.25 (demo model, batch 8) and 0.22 (ViT-Ti/16, batch 2 and 4); 0.41
 *   and 0.55-0.56 with recomputation.
 */
const SCALE = { fused: { plain: 0.25, recompute: 0.36 }, simd: { plain: 0.3, recompute: 0.6 }, headwise: { plain: 0.4, recompute: 0.7 } };

/**
 * The attention a plan should count: the fused kernels where the engine runs
 * them, wasm's per-head form where it pays, else the batched ops. Both smaller
 * footprints were measured with frozen blocks only, so other protocols count
 * the batched form.
 */
export function attentionForm(c: ViTConfig, prompts: number, protocol: string, o: { backend?: string; fused?: boolean; simd?: boolean }): AttentionForm {
  if (!keepsBlocksFrozen(protocol)) return 'batched';
  if (o.fused) return 'fused';
  if (o.simd && o.backend === 'wasm' && (c.hiddenSize / c.numHeads) % 4 === 0) return 'simd';
  return o.backend && headwisePays(o.backend, tokens(c, prompts), c.hiddenSize / c.numHeads) ? 'headwise' : 'batched';
}

/** Default activation budget: 2 GiB, the target for VPT-deep ViT-B/16 batch 64. */
export const DEFAULT_ACTIVATION_BUDGET = 2 * 1024 ** 3;

/** Default budget for a whole step, the frozen model included: the same 2 GiB. */
export const DEFAULT_STEP_BUDGET = 2 * 1024 ** 3;

/**
 * Bytes the frozen model holds on the device during training: every weight,
 * plus the transposed copy of each block matrix and of the patch projection
 * that the backward pass multiplies by (FrozenViT.prepareBackward).
 */
export function residentModelBytes(c: ViTConfig): number {
  const d = c.hiddenSize, m = c.mlpDim, T = tokens(c, 0);
  const matrices = c.numLayers * (4 * d * d + 2 * d * m) + 3 * c.patchSize ** 2 * d;
  const rest = c.numLayers * (3 * d + d + m + d + 4 * d) + d + T * d + 3 * d;
  return 4 * (2 * matrices + rest);
}

/**
 * The largest micro-batch <= batch whose biggest tensor fits `maxBindingBytes`
 * (10% headroom) and whose activations fit `budgetBytes`. Gradients accumulate
 * exactly, so this changes memory, never the result.
 */
export function chooseMicroBatch(c: ViTConfig, prompts: number, batch: number, maxBindingBytes: number | undefined, budgetBytes = DEFAULT_ACTIVATION_BUDGET, recompute = false, form: AttentionForm = 'batched'): number {
  let mb = batch;
  if (maxBindingBytes) mb = Math.min(mb, Math.floor((0.9 * maxBindingBytes) / largestActivationBytes(c, prompts)));
  mb = Math.min(mb, Math.floor(budgetBytes / activationBytesPerImage(c, prompts, recompute, form)));
  return Math.max(1, mb);
}

/**
 * Bytes of a batch's host data that stay on the device through a webgpu step:
 * each image's pixels or patch embeddings (whichever a config makes larger;
 * the loop may feed either), its label and its weight. The webgpu stepper
 * keeps every pass's rows resident at once, in buffers of its own that
 * captured steps read (train/replay.ts). Other backends make one pass's
 * tensors at a time, which the fitted activations already hold.
 */
export function stepInputBytes(c: ViTConfig, batch: number): number {
  const patches = (c.imageSize / c.patchSize) ** 2;
  return batch * (4 * Math.max(3 * c.imageSize ** 2, patches * c.hiddenSize) + 8);
}

/** What a step budget leaves for one pass's activations once the frozen model (and, on webgpu, the batch's inputs) is resident. */
function activationBudget(c: ViTConfig, stepBudgetBytes: number, inputBytes: number): number {
  return Math.max(0, stepBudgetBytes - residentModelBytes(c) - inputBytes);
}

/**
 * On wasm (the CPU) a pass's time per image hardly depends on its size, and
 * recomputing costs about a third more per image: recompute only when plain
 * passes would be smaller than this. Measured 2026-11-26 with the SIMD
 * kernels: ViT-B/16 1.76 s an image in plain passes of 2, 2.34-2.43 s
 * recomputed in passes of 2 or 14; ViT-Ti/16 194 ms plain in passes of 2
 * against 207 ms recomputed in passes of 8.
 */
const CPU_MIN_PLAIN_PASS = 2;

/**
 * Micro-batch and recomputation together, so that the whole step (the frozen
 * model's resident bytes, the batch's inputs where `inputsResident` (webgpu,
 * stepInputBytes) and one pass's activations) fits `stepBudgetBytes`:
 * recompute only when memory, not the batch, limits the micro-batch and
 * recomputing allows a larger one (fewer, larger passes use a GPU better;
 * recomputing costs one more forward), and on wasm only when plain passes
 * would be tiny (CPU_MIN_PLAIN_PASS).
 */
export function choosePasses(c: ViTConfig, prompts: number, batch: number, maxBindingBytes: number | undefined, stepBudgetBytes = DEFAULT_STEP_BUDGET, form: AttentionForm = 'batched', inputsResident = true): { microBatch: number; recompute: boolean } {
  const budgetBytes = activationBudget(c, stepBudgetBytes, inputsResident ? stepInputBytes(c, batch) : 0);
  const plain = chooseMicroBatch(c, prompts, batch, maxBindingBytes, budgetBytes, false, form);
  if (plain >= batch) return { microBatch: plain, recompute: false };
  const cpu = form === 'simd' || form === 'headwise';
  if (cpu && plain >= CPU_MIN_PLAIN_PASS && plain * activationBytesPerImage(c, prompts, false, form) <= budgetBytes) {
    return { microBatch: plain, recompute: false };
  }
  const re = chooseMicroBatch(c, prompts, batch, maxBindingBytes, budgetBytes, true, form);
  return re > plain ? { microBatch: re, recompute: true } : { microBatch: plain, recompute: false };
}

/** Whether a protocol leaves every block frozen (it tunes prompts or a head only), so that its passes can recompute blocks. */
export function keepsBlocksFrozen(protocol: string): boolean {
  return !protocolOf(protocol).tuning || protocol.startsWith('vpt-');
}

/** Where a plan must fit: the device's largest binding, the step's byte budget, and what the engine runs. */
export interface PassOptions {
  maxBindingBytes?: number;
  /** Bytes for the whole step, the frozen model included (the studio's and the CLI's memory budget). */
  budgetBytes?: number;
  /** The engine runs webgpu's fused kernels (vit/webgpu-kernels.ts `fusedKernels()`). */
  fused?: boolean;
  /** wasm runs our SIMD kernels (vit/wasm-simd.ts `wasmSimdKernels()`). */
  simd?: boolean;
  /** The engine's tfjs backend (wasm runs attention per head where that pays). */
  backend?: string;
}

/**
 * A run's passes, as the studio and the CLI plan them when no micro-batch was
 * given: the whole step within the budget, recomputing frozen blocks when that
 * allows larger passes. Protocols that change the blocks (Partial, Adapter,
 * LoRA, Bias, Full) keep every activation: micro-batch only. An explicit
 * micro-batch (or --recompute) is kept as given. The smaller footprints of
 * the fused and per-head attention count for frozen blocks only (attentionForm).
 */
export function planPasses(c: ViTConfig, cfg: TrainConfig, o: PassOptions = {}): TrainConfig {
  if (cfg.microBatch) return cfg;
  const budget = o.budgetBytes ?? DEFAULT_STEP_BUDGET;
  const prompts = promptTokens(cfg.protocol);
  // An engine not named may be webgpu: count its inputs.
  const resident = o.backend === undefined || o.backend === 'webgpu';
  const plan = keepsBlocksFrozen(cfg.protocol.name)
    ? choosePasses(c, prompts, cfg.batch, o.maxBindingBytes, budget, attentionForm(c, prompts, cfg.protocol.name, o), resident)
    : { microBatch: chooseMicroBatch(c, 0, cfg.batch, o.maxBindingBytes, activationBudget(c, budget, resident ? stepInputBytes(c, cfg.batch) : 0)), recompute: false };
  return { ...cfg, microBatch: plan.microBatch, recompute: cfg.recompute || plan.recompute };
}

/** Whether a memory budget (bytes) is usable: positive and finite. The studio, its worker and the CLI share this rule. */
export const validBudget = (bytes: number) => bytes > 0 && Number.isFinite(bytes);

/** A budget as people write it: "2 GiB", "1.5 GiB", "512 MiB". */
export const formatBudget = (bytes: number) => bytes >= 1024 ** 3 ? `${+(bytes / 1024 ** 3).toFixed(2)} GiB` : `${+(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** What a plan does, for the CLI's log and the studio's panel, e.g. "passes of 18 images, recomputing blocks in the backward pass". */
export function describePlan(planned: TrainConfig, asked: TrainConfig): string {
  const passes = planned.microBatch && planned.microBatch < planned.batch ? `passes of ${planned.microBatch} images` : `one pass of ${planned.batch} images`;
  return `${passes}${planned.recompute && !asked.recompute ? ', recomputing blocks in the backward pass' : ''}`;
}
