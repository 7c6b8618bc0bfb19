/**
 * The classifier every protocol ends with: a linear layer on the
 * final-LayerNorm [CLS] in torch layout ([C, d]), initialised as the
 * official VPT head (kaiming normal, fan_out, and bias -ln(99), the
 * `special_bias` prior of 0.01); Mlp-k puts k hidden layers before it.
 */
import * as tf from '@tensorflow/tfjs';
import { fill, normal, zeros } from './params';
import type { ParamDef, Vars } from './types';

export function headParams(d: number, C: number): [string, ParamDef][] {
  return [
    ['head.weight', { shape: [C, d], init: normal(C * d, Math.sqrt(2 / C)) }],
    ['head.bias', { shape: [C], init: fill(C, -Math.log(99)) }],
  ];
}

/** Linear head in torch layout: x W^T + b. */
export function head(features: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return tf.add(tf.matMul(features, w as tf.Tensor2D, false, true), b) as tf.Tensor2D;
}

/** The head from a protocol's variables. */
export function linearHead(features: tf.Tensor2D, vars: Vars): tf.Tensor2D {
  return head(features, vars.get('head.weight')!, vars.get('head.bias')!);
}

/** Hidden layers of Mlp-k: d -> d, ReLU, kaiming normal (fan_out) as the official MLP head. */
export function mlpParams(d: number, k: number): [string, ParamDef][] {
  const out: [string, ParamDef][] = [];
  for (let j = 0; j < k; j++) {
    out.push([`head.mlp.${j}.weight`, { shape: [d, d], layout: 'T', init: normal(d * d, Math.sqrt(2 / d)) }]);
    out.push([`head.mlp.${j}.bias`, { shape: [d], init: zeros(d) }]);
  }
  return out;
}

export function mlpHead(features: tf.Tensor2D, vars: Vars, k: number): tf.Tensor2D {
  let h: tf.Tensor2D = features;
  for (let j = 0; j < k; j++) h = tf.relu(tf.add(tf.matMul(h, vars.get(`head.mlp.${j}.weight`)!), vars.get(`head.mlp.${j}.bias`)!)) as tf.Tensor2D;
  return linearHead(h, vars);
}
