// Shared SIMD helpers of the wasm kernels (kernels.as.ts): exp, the normal CDF, tails, multiply-add.

// Abramowitz & Stegun 7.1.26, as tfjs's own Erf kernel: 1 - erf(z) ~ poly(t) exp(-z^2), t = 1 / (1 + P z), |error| < 1.5e-7.
export const P: f32 = 0.3275911;
export const A1: f32 = 0.254829592;
export const A2: f32 = -0.284496736;
export const A3: f32 = 1.421413741;
export const A4: f32 = -1.453152027;
export const A5: f32 = 1.061405429;
export const SQRT1_2: f32 = 0.70710678118654752;
export const INV_SQRT_2PI: f32 = 0.39894228040143268;

/** exp(x) for four lanes (Cephes expf's range reduction and polynomial, relative error ~1e-7); x below -87.3 gives ~1e-38, not 0. */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  x = f32x4.max(f32x4.min(x, f32x4.splat(88.37626)), f32x4.splat(-87.33654));
  // n = round(x / ln2) by adding 1.5 * 2^23: n lands in the low mantissa bits of f, which also gives 2^n below
  // (cheaper in V8 than f32x4.nearest and a saturating truncation).
  const f = f32x4.add(f32x4.mul(x, f32x4.splat(1.442695041)), f32x4.splat(12582912));
  const n = f32x4.sub(f, f32x4.splat(12582912));
  // x - n ln2, ln2 in two parts so that the product is exact.
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.add(r, f32x4.mul(n, f32x4.splat(2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  // 2^n in the exponent bits: f's bits are 0x4B400000 + n, and the shift drops all but n + 127.
  const two = i32x4.shl(i32x4.add(f, i32x4.splat(127)), 23);
  return f32x4.mul(p, two);
}

/** exp(-x^2 / 2) for four lanes: sqrt(2 pi) phi(x), which Phi's approximation and GELU's gradient share. */
// @ts-ignore: decorator
@inline export function gauss4(x: v128): v128 {
  const z = f32x4.mul(x, f32x4.splat(SQRT1_2));
  return exp4(f32x4.neg(f32x4.mul(z, z)));
}

/** Phi(x), the normal CDF, for four lanes, given e = gauss4(x). */
// @ts-ignore: decorator
@inline export function cdf4(x: v128, e: v128): v128 {
  const z = f32x4.mul(f32x4.abs(x), f32x4.splat(SQRT1_2));
  const t = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.splat(P), z)));
  let q = f32x4.splat(A5);
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(A4));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(A3));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(A2));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(A1));
  const half = f32x4.mul(f32x4.mul(f32x4.mul(q, t), e), f32x4.splat(0.5)); // (1 - erf(|x| / sqrt 2)) / 2
  // x >= 0: 1 - half; x < 0: half.
  return v128.bitselect(f32x4.sub(f32x4.splat(1), half), half, f32x4.ge(x, f32x4.splat(0)));
}

/** Up to three floats at p as lanes (the rest 0). */
// @ts-ignore: decorator
@inline export function loadTail(p: usize, k: i32): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (k > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (k > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

// @ts-ignore: decorator
@inline export function storeTail(p: usize, v: v128, k: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (k > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (k > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** c + a b: one fused rounding where the engine has relaxed SIMD (the module built with it), else a multiply and an add. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}
