/**
 * What every tuning protocol provides. A protocol names its trainable
 * tensors in the task file's layout (PyTorch/timm names and shapes, so a
 * task file loads into PyTorch), says how each is initialised, and how the
 * live variables change the frozen forward pass.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../train/rng';
import type { ViTConfig } from '../vit/config';
import type { Tuning } from '../vit/model';
import type { ViTWeights } from '../vit/weights';

export type ProtocolName = 'linear' | 'mlp' | 'partial' | 'bias' | 'adapter' | 'lora' | 'vpt-shallow' | 'vpt-deep' | 'full';

/** A protocol and its one size setting (prompts, hidden layers, blocks, reduction or rank; 0 where none). */
export interface ProtocolSpec { name: ProtocolName; n: number }

/**
 * How a tensor's file layout maps to the layout the forward pass uses:
 * 'T' a 2-D torch Linear weight [out, in] kept as [in, out] (tfjs's fast
 * matmul path), 'OIHW' a patch-embedding conv kernel kept as flattened HWIO rows.
 */
export type Layout = 'T' | 'OIHW';

/** One trainable tensor: its file shape, layout and initial values. */
export interface ParamDef {
  shape: number[];
  layout?: Layout;
  init: (rng: Rng) => Float32Array;
}

/** Trainable tensors in file layout, by name. */
export type Params = Map<string, { shape: number[]; data: Float32Array }>;

/** Host-side trainable state: what task files and checkpoints store. */
export interface TunedState {
  protocol: ProtocolSpec;
  params: Params;
  numClasses: number;
  hiddenSize: number;
}

/** Live trainable variables, in forward layout, by the same names. */
export type Vars = Map<string, tf.Variable>;

/** Prompt dropout's masks for a training forward (vpt.ts PromptDropout: drawn from our PRNG). */
export interface DropoutSource {
  readonly rate: number;
  /** The next mask [B, p, d], scaled by 1 / (1 - rate); the forward asks for one per prompt layer and pass, in order. */
  mask(B: number, p: number, d: number): tf.Tensor3D;
}

export interface ForwardOptions {
  /** Prompt dropout while training (VPT). */
  dropout?: DropoutSource;
}

export interface Protocol {
  name: ProtocolName;
  /** How the paper's table names it, e.g. "Mlp-3", "VPT-deep (p=10)". */
  title(n: number): string;
  /** What `n` means, or null for protocols without a size. */
  size: { label: string; default: number; min: number; max?: number } | null;
  /** True when the backbone is untouched, so features can be computed once per image. */
  headOnly: boolean;
  /** Shown before training (Full fine-tuning's memory). */
  warning?: string;
  /** The trainable tensors for a backbone and class count, in the order they are initialised. */
  params(w: ViTWeights | ViTConfig, n: number, numClasses: number): Map<string, ParamDef>;
  /** How the variables change the backbone's forward pass (absent for head-only protocols). */
  tuning?(vars: Vars, c: ViTConfig, opts: ForwardOptions): Tuning;
  /** Logits from final-LayerNorm [CLS] features [B, d]. */
  logits(features: tf.Tensor2D, vars: Vars): tf.Tensor2D;
}
