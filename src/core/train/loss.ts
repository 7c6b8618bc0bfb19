/** Cross-entropy over logits, with per-example weights (0 for padding rows). */
import * as tf from '@tensorflow/tfjs';

/**
 * sum_i w_i * CE_i / denom. With w = 1 and denom = B this is PyTorch's mean
 * cross-entropy; padded rows get w = 0 so a fixed batch shape changes nothing,
 * and micro-batches that share one denom sum to the whole batch's mean.
 */
export function weightedCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, weights: tf.Tensor1D, denom: number | tf.Scalar): tf.Scalar {
  const C = logits.shape[1];
  const onehot = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, C);
  const ce = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1)); // [B]
  return tf.div(tf.sum(tf.mul(ce, weights)), denom) as tf.Scalar;
}
