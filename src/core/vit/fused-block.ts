/**
 * A frozen pre-norm encoder block on webgpu's fused kernels, forward and
 * backward written out, as one custom gradient:
 *   x1 = x + out(attention(qkv(LN1(x)))),  y = x1 + fc2(GELU(fc1(LN2(x1))))
 *   dx1 = LN2'(x1, fc1'(GELU'(h, fc2'(dy)))) + dy
 *   dx  = LN1'(x, qkv'(attention'(out'(dx1)))) + dx1
 * where ' is each part's input gradient. Only the input's gradient: every
 * weight here is frozen.
 *
 * Why, against the same kernels on the tape (one custom gradient each):
 * - the residual stream's two gradient adds ride in the LayerNorm gradient
 *   kernels (VptLayerNormGradAdd): 22 dispatches a block instead of 24;
 * - the tape records one node a block instead of about ten, and tfjs's
 *   engine costs host time per node, which small steps on a GPU wait on;
 * - each gradient inside the block (the MLP's, attention's, the norms') is
 *   freed as soon as it is used. On the tape they live until the whole
 *   backward pass is done: tfjs's gradients run in one tidy. That is most of
 *   the tape's peak: 85 -> 34 MB per image for ViT-Ti/16 (a tidy around each
 *   block's forward, tried too, freed nothing: what the forward leaves is
 *   what the gradients save).
 * It saves what the tape saved: the block's input, the qkv projection, the
 * attention probabilities, x1 and fc1's output.
 */
import * as tf from '@tensorflow/tfjs';
import { fusedAttentionBackward, fusedAttentionForward } from './attention';
import type { FrozenLinear } from './ops';
import { GELU, GELU_GRAD, LAYER_NORM, LAYER_NORM_GRAD_ADD, runFused } from './webgpu-kernels';

let enabled = true;

/** Whether frozen blocks run as one node (the bench and the tests compare both; on by default). */
export const fusedBlocksOn = (): boolean => enabled;

/** Turn the written-out blocks off or on; returns the previous setting. */
export function setFusedBlocks(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

export interface FrozenBlockWeights {
  ln1g: tf.Tensor1D; ln1b: tf.Tensor1D; qkv: FrozenLinear; out: FrozenLinear;
  ln2g: tf.Tensor1D; ln2b: tf.Tensor1D; fc1: FrozenLinear; fc2: FrozenLinear;
}

/** The block as a function of its [B, T, d] input; H heads, LayerNorm's eps. */
export function fusedBlock(w: FrozenBlockWeights, H: number, eps: number): (x: tf.Tensor3D) => tf.Tensor3D {
  return tf.customGrad(((x: tf.Tensor3D, save: tf.GradSaveFunc) => {
    const [B, T, d] = x.shape;
    // Inside the engine's tidy for this node: what is neither returned nor saved goes when it returns.
    const xs = tf.reshape(x, [B * T, d]) as tf.Tensor2D;
    const qkv = w.qkv.forward(runFused(LAYER_NORM, { xIn: xs, gamma: w.ln1g, beta: w.ln1b }, { eps }));
    const { out: o, p } = fusedAttentionForward(qkv, B, H);
    const x1 = tf.add(xs, w.out.forward(o));
    const h = w.fc1.forward(runFused(LAYER_NORM, { xIn: x1, gamma: w.ln2g, beta: w.ln2b }, { eps }));
    const y = tf.add(x1, w.fc2.forward(runFused(GELU, { xIn: h })));
    save([xs, qkv, p, x1, h]);
    return {
      value: tf.reshape(y, [B, T, d]),
      gradFunc: (dy: tf.Tensor, [sx, sqkv, sp, sx1, sh]: tf.Tensor[]) => tf.tidy(() => {
        // Each temporary is freed once used, as the tape would: the peak stays one block's gradients.
        const dys = tf.reshape(dy, [B * T, d]);
        const dg = w.fc2.backward(dys);
        const dh = runFused(GELU_GRAD, { xIn: sh, dyIn: dg });
        dg.dispose();
        const dz = w.fc1.backward(dh);
        dh.dispose();
        const dx1 = runFused(LAYER_NORM_GRAD_ADD, { xIn: sx1, gamma: w.ln2g, dyIn: dz, resIn: dys }, { eps });
        dz.dispose();
        const dout = w.out.backward(dx1);
        const dqkv = fusedAttentionBackward(sqkv as tf.Tensor2D, sp, dout, B, H);
        dout.dispose();
        const dy1 = w.qkv.backward(dqkv);
        dqkv.dispose();
        return tf.reshape(runFused(LAYER_NORM_GRAD_ADD, { xIn: sx, gamma: w.ln1g, dyIn: dy1, resIn: dx1 }, { eps }), [B, T, d]);
      }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor3D) => tf.Tensor3D;
}
