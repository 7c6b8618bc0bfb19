/** The scalar constants a model holds (src/core/vit/ops.ts): shared, released, and safe across an engine reset. */
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { constant, holdScalars } from '../../src/core/vit/ops';
import { useCpu } from './helpers';

it('holds one tensor per value while anyone holds it, then disposes it', async () => {
  await useCpu();
  const before = tf.memory().numTensors;
  expect(constant(0.25)).toBe(0.25);
  const a = holdScalars([0.25, 0.25, 3]), b = holdScalars([0.25]);
  expect(tf.memory().numTensors).toBe(before + 2);
  const t = constant(0.25) as tf.Scalar;
  expect(t).toBeInstanceOf(tf.Tensor);
  expect(tf.tidy(() => tf.mul(tf.tensor1d([2, 4]), constant(0.25)).arraySync())).toEqual([0.5, 1]);
  a();
  a(); // a second call releases nothing more
  expect(constant(0.25)).toBe(t);
  expect(constant(3)).toBe(3);
  b();
  expect(constant(0.25)).toBe(0.25);
  expect(tf.memory().numTensors).toBe(before);
});

it('an engine reset (the studio\'s rebuild after a lost device) leaves no dead constant in use', async () => {
  await useCpu();
  const old = holdScalars([0.5]);
  tf.engine().reset();
  await useCpu();
  expect(constant(0.5)).toBe(0.5); // the held tensor went with the reset
  const fresh = holdScalars([0.5]);
  expect(tf.tidy(() => tf.mul(tf.scalar(3), constant(0.5)).arraySync())).toBe(1.5);
  old(); // the model from before the reset goes: the new constant stays
  expect(constant(0.5)).toBeInstanceOf(tf.Tensor);
  fresh();
  expect(constant(0.5)).toBe(0.5);
  expect(tf.memory().numTensors).toBe(0);
});
