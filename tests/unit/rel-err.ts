/**
 * max-abs error divided by the reference's max-abs (the fixture README's measure). Free of vitest,
 * so that child processes (webgpu-fused-child.ts) share it with helpers.ts.
 */
export function maxRelErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`lengths differ: ${actual.length} against ${expected.length}`);
  let err = 0, mag = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    mag = Math.max(mag, Math.abs(expected[i]));
  }
  return err / (mag || 1);
}
