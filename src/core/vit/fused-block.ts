/**
 * A frozen pre-norm encoder block fused into one gradient node: forward and
 * backward written out,
 *   x1 = x + out(attention(qkv(LN1(x)))),  y = x1 + fc2(GELU(fc1(LN2(x1))))
 *   dx1 = LN2'(x1, fc1'(GELU'(h, fc2'(dy)))) + dy
 *   dx  = LN1'(x, qkv'(attention'(out'(dx1)))) + dx1
 * where ' is each part's input gradient. Only the input's gradient: every
 * weight here is frozen. Three sets of parts: webgpu's fused kernels, wasm's
 * SIMD kernels (wasm-simd.ts), and, for wasm without SIMD, its per-head
 * attention with the tfjs-op norms and GELU; elsewhere (and for protocols
 * that change a block) each op stays its own tape node.
 *
 * Why, against the same parts on the tape (one custom gradient each):
 * - each gradient inside the block (the MLP's, attention's, the norms') is
 *   freed as soon as it is used. On the tape they live until the whole
 *   backward pass is done: tfjs's gradients run in one tidy. That is most of
 *   the tape's peak: 85 -> 34 MB per image for ViT-Ti/16 on webgpu (a tidy
 *   around each block's forward, tried too, freed nothing: what the forward
 *   leaves is what the gradients save);
 * - the tape records one node a block instead of about ten, and tfjs's
 *   engine costs host time per node, which small steps on a GPU wait on;
 * - on webgpu the residual stream's two gradient adds ride in the LayerNorm
 *   gradient kernels (VptLayerNormGradAdd): 22 dispatches a block, not 24.
 * Each part saves what it saved on the tape.
 */
import * as tf from '@tensorflow/tfjs';
import {
  fusedAttentionBackward, fusedAttentionForward, fusedAttentionRuns, headwiseBackward, headwiseForward, simdAttentionBackward, simdAttentionForward, simdAttentionRuns,
} from './attention';
import { headwisePays } from './attention-form';
import { plainGeluBackward, plainGeluForward, plainLayerNormBackward, plainLayerNormForward, type FrozenLinear } from './ops';
import { GELU, GELU_GRAD, LAYER_NORM, LAYER_NORM_GRAD_ADD, runFused } from './webgpu-kernels';

let enabled = true;

/** Turn the written-out blocks off or on (the bench and the tests compare both; on by default); returns the previous setting. */
export function setFusedBlocks(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

export interface FrozenBlockWeights {
  ln1g: tf.Tensor1D; ln1b: tf.Tensor1D; qkv: FrozenLinear; out: FrozenLinear;
  ln2g: tf.Tensor1D; ln2b: tf.Tensor1D; fc1: FrozenLinear; fc2: FrozenLinear;
}

/** A part's forward: its output, and what its gradient needs. */
type Half = { y: tf.Tensor; saved: tf.Tensor[] };

/** One backend's parts, each split into forward and gradient. */
export interface BlockParts {
  name: string;
  norm(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): Half;
  /** The norm's input gradient plus `res`, the residual stream's gradient. */
  normGradPlus(g: tf.Tensor1D, saved: tf.Tensor[], dy: tf.Tensor, res: tf.Tensor, eps: number): tf.Tensor;
  attention(qkv: tf.Tensor2D, B: number, H: number): Half;
  attentionGrad(saved: tf.Tensor[], dOut: tf.Tensor, B: number, H: number): tf.Tensor2D;
  gelu(h: tf.Tensor): Half;
  geluGrad(saved: tf.Tensor[], dy: tf.Tensor): tf.Tensor;
}

const WEBGPU: BlockParts = {
  name: 'webgpu',
  // The gradient kernel recomputes the row statistics from x.
  norm: (x, g, b, eps) => ({ y: runFused(LAYER_NORM, { xIn: x, gamma: g, beta: b }, { eps }), saved: [x] }),
  normGradPlus: (g, [x], dy, res, eps) => runFused(LAYER_NORM_GRAD_ADD, { xIn: x, gamma: g, dyIn: dy, resIn: res }, { eps }),
  attention: (qkv, B, H) => { const { out, p } = fusedAttentionForward(qkv, B, H); return { y: out, saved: [qkv, p] }; },
  attentionGrad: ([qkv, p], dOut, B, H) => fusedAttentionBackward(qkv as tf.Tensor2D, p, dOut, B, H),
  gelu: (h) => ({ y: runFused(GELU, { xIn: h }), saved: [h] }),
  geluGrad: ([h], dy) => runFused(GELU_GRAD, { xIn: h, dyIn: dy }),
};

const WASM: BlockParts = {
  name: 'wasm',
  norm: (x, g, b, eps) => { const { y, xh, r } = plainLayerNormForward(x, g, b, eps); return { y, saved: [xh, r] }; },
  normGradPlus: (g, [xh, r], dy, res) => tf.tidy(() => tf.add(plainLayerNormBackward(g, xh, r, dy), res)),
  attention: (qkv, B, H) => { const { out, probs } = headwiseForward(qkv, B, H); return { y: out, saved: [qkv, ...probs] }; },
  attentionGrad: ([qkv, ...probs], dOut, B, H) => headwiseBackward(qkv as tf.Tensor2D, probs, dOut, B, H),
  gelu: (h) => { const { y, cdf } = plainGeluForward(h); return { y, saved: [h, cdf] }; },
  geluGrad: ([h, cdf], dy) => plainGeluBackward(h, cdf, dy),
};

/**
 * wasm with SIMD: every part is one of its kernels (wasm-simd.ts); the norms and GELU go by webgpu's
 * kernel names, and the residual add rides in the norm's gradient, as there.
 */
const WASM_SIMD: BlockParts = {
  ...WEBGPU,
  name: 'wasm-simd',
  attention: (qkv, B, H) => { const { out, p } = simdAttentionForward(qkv, B, H); return { y: out, saved: [qkv, p] }; },
  attentionGrad: ([qkv, probs], dOut, B, H) => simdAttentionBackward(qkv as tf.Tensor2D, probs, dOut, B, H),
};

/** The parts for B images of T tokens, H heads of width hd on the current backend, or null: the tape. */
export function blockParts(B: number, T: number, H: number, hd: number): BlockParts | null {
  if (!enabled) return null;
  if (fusedAttentionRuns(B, H)) return WEBGPU;
  if (simdAttentionRuns(hd)) return WASM_SIMD;
  return tf.getBackend() === 'wasm' && headwisePays('wasm', T, hd) ? WASM : null;
}

/** The block as a function of its [B, T, d] input; H heads, LayerNorm's eps. */
export function fusedBlock(w: FrozenBlockWeights, H: number, eps: number, parts: BlockParts): (x: tf.Tensor3D) => tf.Tensor3D {
  return tf.customGrad(((x: tf.Tensor3D, save: tf.GradSaveFunc) => {
    const [B, T, d] = x.shape;
    // Inside the engine's tidy for this node: what is neither returned nor saved goes when it returns.
    const xs = tf.reshape(x, [B * T, d]) as tf.Tensor2D;
    const n1 = parts.norm(xs, w.ln1g, w.ln1b, eps);
    const att = parts.attention(w.qkv.forward(n1.y), B, H);
    const x1 = tf.add(xs, w.out.forward(att.y));
    const n2 = parts.norm(x1, w.ln2g, w.ln2b, eps);
    const gl = parts.gelu(w.fc1.forward(n2.y));
    const y = tf.add(x1, w.fc2.forward(gl.y));
    const halves = [n1, att, n2, gl], sizes = halves.map((x) => x.saved.length);
    save(halves.flatMap((x) => x.saved));
    return {
      value: tf.reshape(y, [B, T, d]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        // Each part's saved tensors back, in the order they were saved.
        let at = 0;
        const [s1, sa, s2, sg] = sizes.map((n) => saved.slice(at, (at += n)));
        // Each gradient is freed once used: the peak stays one block's gradients.
        const dys = tf.reshape(dy, [B * T, d]);
        const dg = w.fc2.backward(dys);
        const dh = parts.geluGrad(sg, dg);
        dg.dispose();
        const dz = w.fc1.backward(dh);
        dh.dispose();
        const dx1 = parts.normGradPlus(w.ln2g, s2, dz, dys, eps);
        dz.dispose();
        const dout = w.out.backward(dx1);
        const dqkv = parts.attentionGrad(sa, dout, B, H);
        dout.dispose();
        const dy1 = w.qkv.backward(dqkv);
        dqkv.dispose();
        return tf.reshape(parts.normGradPlus(w.ln1g, s1, dy1, dx1, eps), [B, T, d]);
      }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor3D) => tf.Tensor3D;
}
