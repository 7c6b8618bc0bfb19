// GELU and LayerNorm, forward and gradient (kernels.as.ts).
import { cdf4, gauss4, hsum, INV_SQRT_2PI, loadTail, storeTail } from './math.as';

// A share of elements starts at a multiple of 4.

/** y = x Phi(x) (exact GELU) for floats [from, n). */
export function gelu(x: usize, y: usize, from: i32, n: i32): void {
  let i = from;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(y + o, f32x4.mul(v, cdf4(v, gauss4(v))));
  }
  if (i < n) {
    const o = <usize>i << 2;
    const v = loadTail(x + o, n - i);
    storeTail(y + o, f32x4.mul(v, cdf4(v, gauss4(v))), n - i);
  }
}

/** dx = dy (Phi(x) + x phi(x)) for floats [from, n): GELU's input gradient. */
export function geluGrad(x: usize, dy: usize, dx: usize, from: i32, n: i32): void {
  const k = f32x4.splat(INV_SQRT_2PI);
  let i = from;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const e = gauss4(v);
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), f32x4.add(cdf4(v, e), f32x4.mul(f32x4.mul(v, k), e))));
  }
  if (i < n) {
    const o = <usize>i << 2;
    const v = loadTail(x + o, n - i);
    const e = gauss4(v);
    storeTail(dx + o, f32x4.mul(loadTail(dy + o, n - i), f32x4.add(cdf4(v, e), f32x4.mul(f32x4.mul(v, k), e))), n - i);
  }
}

/** Sum of a row of d floats. */
// @ts-ignore: decorator
@inline function rowSum(x: usize, d: i32): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= d; j += 4) acc = f32x4.add(acc, v128.load(x + (<usize>j << 2)));
  let s = hsum(acc);
  for (; j < d; j++) s += load<f32>(x + (<usize>j << 2));
  return s;
}

/** Sum of (x - m)^2 over a row. */
// @ts-ignore: decorator
@inline function rowSquares(x: usize, d: i32, m: f32): f32 {
  const mv = f32x4.splat(m);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= d; j += 4) {
    const c = f32x4.sub(v128.load(x + (<usize>j << 2)), mv);
    acc = f32x4.add(acc, f32x4.mul(c, c));
  }
  let s = hsum(acc);
  for (; j < d; j++) {
    const c = load<f32>(x + (<usize>j << 2)) - m;
    s += c * c;
  }
  return s;
}

/** y = (x - mean) / sqrt(var + eps) g + b over rows [from, to) of d floats (biased variance, as torch.nn.LayerNorm). */
export function layerNorm(x: usize, g: usize, b: usize, y: usize, d: i32, eps: f32, from: i32, to: i32): void {
  const rowBytes = <usize>d << 2;
  for (let r = from; r < to; r++) {
    const xr = x + <usize>r * rowBytes, yr = y + <usize>r * rowBytes;
    const m = rowSum(xr, d) / <f32>d;
    const s = <f32>1 / Mathf.sqrt(rowSquares(xr, d, m) / <f32>d + eps);
    const mv = f32x4.splat(m), sv = f32x4.splat(s);
    let j = 0;
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      v128.store(yr + o, f32x4.add(f32x4.mul(xh, v128.load(g + o)), v128.load(b + o)));
    }
    for (; j < d; j++) {
      const o = <usize>j << 2;
      store<f32>(yr + o, (load<f32>(xr + o) - m) * s * load<f32>(g + o) + load<f32>(b + o));
    }
  }
}

/**
 * LayerNorm's input gradient for constant g over rows [from, to), recomputing each row's statistics from x:
 * dx = r (g dy - mean(g dy) - x^ mean(g dy x^)) [+ res], x^ = (x - mean) r. res = 0: no residual term.
 */
export function layerNormGrad(x: usize, g: usize, dy: usize, res: usize, dx: usize, d: i32, eps: f32, from: i32, to: i32): void {
  const rowBytes = <usize>d << 2;
  const inv = <f32>1 / <f32>d;
  for (let r = from; r < to; r++) {
    const off = <usize>r * rowBytes;
    const xr = x + off, dyr = dy + off, dxr = dx + off, rr = res + off;
    const m = rowSum(xr, d) * inv;
    const s = <f32>1 / Mathf.sqrt(rowSquares(xr, d, m) * inv + eps);
    const mv = f32x4.splat(m), sv = f32x4.splat(s);
    // Pass 1: sums of g dy and of g dy x^.
    let a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      const gd = f32x4.mul(v128.load(g + o), v128.load(dyr + o));
      a1 = f32x4.add(a1, gd);
      a2 = f32x4.add(a2, f32x4.mul(gd, f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv)));
    }
    let s1 = hsum(a1), s2 = hsum(a2);
    for (let t = j; t < d; t++) {
      const o = <usize>t << 2;
      const gd = load<f32>(g + o) * load<f32>(dyr + o);
      s1 += gd;
      s2 += gd * (load<f32>(xr + o) - m) * s;
    }
    const m1 = f32x4.splat(s1 * inv), m2 = f32x4.splat(s2 * inv);
    // Pass 2: the gradient.
    j = 0;
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      const gd = f32x4.mul(v128.load(g + o), v128.load(dyr + o));
      let v = f32x4.mul(f32x4.sub(f32x4.sub(gd, m1), f32x4.mul(xh, m2)), sv);
      if (res) v = f32x4.add(v, v128.load(rr + o));
      v128.store(dxr + o, v);
    }
    for (; j < d; j++) {
      const o = <usize>j << 2;
      const xh = (load<f32>(xr + o) - m) * s;
      let v = (load<f32>(g + o) * load<f32>(dyr + o) - s1 * inv - xh * (s2 * inv)) * s;
      if (res) v += load<f32>(rr + o);
      store<f32>(dxr + o, v);
    }
  }
}
