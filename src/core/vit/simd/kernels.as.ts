// AssemblyScript source of the wasm SIMD kernels (src/core/vit/wasm-simd.ts
// registers them with tfjs-backend-wasm). Built by `npm run build:simd`
// into binary.ts; a unit test rebuilds it and checks the bytes match. Not part
// of the TypeScript build (tsconfig excludes *.as.ts).
//
// The module imports tfjs-wasm's own memory: every pointer below is a byte
// offset of a tensor on tfjs's heap, and the module writes nothing else there
// (no data segments, no stack, no allocator: the build checks). Each kernel is
// one pass of f32x4 arithmetic over rows of floats; the stock path was several
// scalar tfjs-wasm kernels, each a full pass over memory (bench/profile.ts).

// Abramowitz & Stegun 7.1.26, as tfjs's own Erf kernel: 1 - erf(z) ~ poly(t) exp(-z^2), t = 1 / (1 + P z), |error| < 1.5e-7.
const P: f32 = 0.3275911;
const A1: f32 = 0.254829592;
const A2: f32 = -0.284496736;
const A3: f32 = 1.421413741;
const A4: f32 = -1.453152027;
const A5: f32 = 1.061405429;
const SQRT1_2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;

/** exp(x) for four lanes (Cephes expf's range reduction and polynomial, relative error ~1e-7); x below -87.3 gives ~1e-38, not 0. */
// @ts-ignore: decorator
@inline function exp4(x: v128): v128 {
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
@inline function gauss4(x: v128): v128 {
  const z = f32x4.mul(x, f32x4.splat(SQRT1_2));
  return exp4(f32x4.neg(f32x4.mul(z, z)));
}

/** Phi(x), the normal CDF, for four lanes, given e = gauss4(x). */
// @ts-ignore: decorator
@inline function cdf4(x: v128, e: v128): v128 {
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
@inline function loadTail(p: usize, k: i32): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (k > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (k > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

// @ts-ignore: decorator
@inline function storeTail(p: usize, v: v128, k: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (k > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (k > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** c + a b: one fused rounding where the engine has relaxed SIMD (the module built with it), else a multiply and an add. */
// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// Every exported kernel takes its share of the work as [from, to) last (elements, rows or (image, head)
// pairs), so that threads can split it (wasm-simd-pool.ts); a share of elements starts at a multiple of 4.

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

// ---- Attention: one kernel a layer for forward, one for backward, over a range of (image, head) pairs. ----
// qkv is [B*T, 3d] (q, k, v side by side, head h at columns h*hd of each); out and dOut [B*T, d]; dqkv
// [B*T, 3d]; probs [B*H, T, Tp], Tp = T rounded up to 4 (the products' widths must be multiples of 4;
// the pad column is 0). Every product is 2-D, row-major, on strided views: no copies but two transposes.

/** dst[c, r] = src[r, c] for r < rows, c < cols (row strides ld, ldd in floats); dst[c, r] = 0 for rows <= r < pad. */
function transpose(src: usize, ld: i32, dst: usize, ldd: i32, rows: i32, cols: i32, pad: i32): void {
  const s = <usize>ld << 2, t = <usize>ldd << 2;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const f0 = src + <usize>r * s, f1 = f0 + s, f2 = f1 + s, f3 = f2 + s;
    let to = dst + (<usize>r << 2);
    for (let c = 0; c < cols; c++, to += t) {
      const co = <usize>c << 2;
      store<f32>(to, load<f32>(f0 + co)); store<f32>(to, load<f32>(f1 + co), 4);
      store<f32>(to, load<f32>(f2 + co), 8); store<f32>(to, load<f32>(f3 + co), 12);
    }
  }
  for (; r < rows; r++) {
    const f = src + <usize>r * s;
    for (let c = 0, to = dst + (<usize>r << 2); c < cols; c++, to += t) store<f32>(to, load<f32>(f + (<usize>c << 2)));
  }
  for (; r < pad; r++) for (let c = 0, to = dst + (<usize>r << 2); c < cols; c++, to += t) store<f32>(to, 0);
}

/** Rows of n floats (stride ld) replaced by softmax(scale x), as tfjs's: exp(scale x - max) / sum. */
function softmaxRows(x: usize, ld: i32, rows: i32, n: i32, scale: f32): void {
  const sv = f32x4.splat(scale);
  const tail = n & 3, body = n - tail, to = <usize>body << 2;
  for (let r = 0; r < rows; r++) {
    const row = x + <usize>r * (<usize>ld << 2);
    let mv = f32x4.splat(-Infinity);
    for (let j = 0; j < body; j += 4) mv = f32x4.max(mv, v128.load(row + (<usize>j << 2)));
    let m = Mathf.max(Mathf.max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), Mathf.max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (let j = body; j < n; j++) m = Mathf.max(m, load<f32>(row + (<usize>j << 2)));
    const off = f32x4.splat(m * scale);
    let acc = f32x4.splat(0);
    for (let j = 0; j < body; j += 4) {
      const o = <usize>j << 2;
      const e = exp4(f32x4.sub(f32x4.mul(v128.load(row + o), sv), off));
      v128.store(row + o, e);
      acc = f32x4.add(acc, e);
    }
    let sum = hsum(acc);
    if (tail) {
      const e = exp4(f32x4.sub(f32x4.mul(loadTail(row + to, tail), sv), off));
      storeTail(row + to, e, tail);
      sum += f32x4.extract_lane(e, 0);
      if (tail > 1) sum += f32x4.extract_lane(e, 1);
      if (tail > 2) sum += f32x4.extract_lane(e, 2);
    }
    const inv = f32x4.splat(<f32>1 / sum);
    for (let j = 0; j < body; j += 4) {
      const o = <usize>j << 2;
      v128.store(row + o, f32x4.mul(v128.load(row + o), inv));
    }
    if (tail) storeTail(row + to, f32x4.mul(loadTail(row + to, tail), inv), tail);
  }
}

/** dp's rows of n floats replaced by scale p (dp - rowsum(dp p)): the softmax's input gradient, times scale. */
function softmaxGradRows(p: usize, dp: usize, ld: i32, rows: i32, n: i32, scale: f32): void {
  const tail = n & 3, body = n - tail, to = <usize>body << 2;
  for (let r = 0; r < rows; r++) {
    const ro = <usize>r * (<usize>ld << 2), pr = p + ro, dr = dp + ro;
    let acc = f32x4.splat(0);
    for (let j = 0; j < body; j += 4) {
      const o = <usize>j << 2;
      acc = f32x4.add(acc, f32x4.mul(v128.load(pr + o), v128.load(dr + o)));
    }
    let dot = hsum(acc);
    if (tail) dot += hsum(f32x4.mul(loadTail(pr + to, tail), loadTail(dr + to, tail)));
    const dv = f32x4.splat(dot), sv = f32x4.splat(scale);
    for (let j = 0; j < body; j += 4) {
      const o = <usize>j << 2;
      v128.store(dr + o, f32x4.mul(sv, f32x4.mul(v128.load(pr + o), f32x4.sub(v128.load(dr + o), dv))));
    }
    if (tail) storeTail(dr + to, f32x4.mul(sv, f32x4.mul(loadTail(pr + to, tail), f32x4.sub(loadTail(dr + to, tail), dv))), tail);
  }
}

/** The scratch one thread needs, in floats: two [T, Tp] matrices and one [hd, Tp]. */
export function attentionScratch(T: i32, hd: i32): i32 {
  const Tp = (T + 3) & ~3;
  return 2 * T * Tp + hd * Tp;
}

/** Forward for pairs [from, to) of B*H (image, head) pairs: out = softmax(q k^T scale) v, probs kept. */
export function attentionForward(qkv: usize, out: usize, probs: usize, scratch: usize, H: i32, T: i32, hd: i32, scale: f32, from: i32, to: i32): void {
  const d = H * hd, Tp = (T + 3) & ~3;
  const kt = scratch; // [hd, Tp]
  for (let n = from; n < to; n++) {
    const b = n / H, h = n % H;
    const q = qkv + ((<usize>b * <usize>T * <usize>(3 * d) + <usize>(h * hd)) << 2);
    const k = q + (<usize>d << 2), v = k + (<usize>d << 2);
    const p = probs + ((<usize>n * <usize>T * <usize>Tp) << 2);
    transpose(k, 3 * d, kt, Tp, T, hd, Tp);
    product(q, 3 * d, kt, Tp, p, Tp, T, Tp, hd); // scores; the pad column is q . 0 = 0
    softmaxRows(p, Tp, T, T, scale);
    product(p, Tp, v, 3 * d, out + ((<usize>b * <usize>T * <usize>d + <usize>(h * hd)) << 2), d, T, hd, T);
  }
}

/**
 * Backward for pairs [from, to): dqkv's q, k and v columns of each pair, from the projection, the
 * probabilities and dOut: dP = dO v^T, dV = P^T dO, dS = scale softmax'(P, dP), dQ = dS k, dK = dS^T q.
 */
export function attentionBackward(qkv: usize, probs: usize, dOut: usize, dqkv: usize, scratch: usize, H: i32, T: i32, hd: i32, scale: f32, from: i32, to: i32): void {
  const d = H * hd, d3 = 3 * d, Tp = (T + 3) & ~3;
  const ds = scratch, xt = ds + ((<usize>T * <usize>Tp) << 2), vt = xt + ((<usize>T * <usize>Tp) << 2);
  for (let n = from; n < to; n++) {
    const b = n / H, h = n % H;
    const rowQ = (<usize>b * <usize>T * <usize>d3 + <usize>(h * hd)) << 2;
    const q = qkv + rowQ, k = q + (<usize>d << 2), v = k + (<usize>d << 2);
    const dq = dqkv + rowQ, dk = dq + (<usize>d << 2), dv = dk + (<usize>d << 2);
    const g = dOut + ((<usize>b * <usize>T * <usize>d + <usize>(h * hd)) << 2);
    const p = probs + ((<usize>n * <usize>T * <usize>Tp) << 2);
    transpose(v, d3, vt, Tp, T, hd, Tp);
    product(g, d, vt, Tp, ds, Tp, T, Tp, hd); // dP
    transpose(p, Tp, xt, Tp, T, T, T); // P^T
    product(xt, Tp, g, d, dv, d3, T, hd, T); // dV = P^T dO
    softmaxGradRows(p, ds, Tp, T, T, scale); // dS, scaled
    product(ds, Tp, k, d3, dq, d3, T, hd, T); // dQ = dS k
    transpose(ds, Tp, xt, Tp, T, T, T); // dS^T
    product(xt, Tp, q, d3, dk, d3, T, hd, T); // dK = dS^T q
  }
}

// ---- The frozen linear layers: C = A W (+ bias), W's columns in panels of 8. ----

/**
 * W [K, N] into panels of 8 columns, [ceil(N / 8), K, 8], the last one padded with zeros: each panel is
 * then K * 32 contiguous bytes (24 KB for K = 768) that stay in L1 while rows of A stream past.
 * For panels [from, to).
 */
export function packPanels(w: usize, dst: usize, K: i32, N: i32, from: i32, to: i32): void {
  for (let p = from; p < to; p++) {
    const j0 = p << 3, n = min(8, N - j0);
    let o = dst + ((<usize>p * <usize>K) << 5);
    for (let k = 0; k < K; k++, o += 32) {
      const row = w + ((<usize>k * <usize>N + <usize>j0) << 2);
      if (n == 8) { v128.store(o, v128.load(row)); v128.store(o, v128.load(row, 16), 16); continue; }
      for (let l = 0; l < 8; l++) store<f32>(o + (<usize>l << 2), l < n ? load<f32>(row + (<usize>l << 2)) : 0);
    }
  }
}

/** W^T packed as packPanels would pack it, from W [N, K] (so W^T is [K, N]): for a layer's input gradient. */
export function packPanelsT(w: usize, dst: usize, K: i32, N: i32, from: i32, to: i32): void {
  for (let p = from; p < to; p++) {
    const j0 = p << 3, n = min(8, N - j0);
    let o = dst + ((<usize>p * <usize>K) << 5);
    for (let k = 0; k < K; k++, o += 32) {
      // W^T[k, j0 + l] = W[j0 + l, k]
      for (let l = 0; l < 8; l++) store<f32>(o + (<usize>l << 2), l < n ? load<f32>(w + ((<usize>(j0 + l) * <usize>K + <usize>k) << 2)) : 0);
    }
  }
}

/** Rows of A processed against one panel at a time: 32 rows of K floats (24-96 KB) stay in L2 across the panels. */
const ROW_BLOCK = 32;

/**
 * C[M, N] = A[M, K] B[K, N] (+ bias [N]; 0: none) for rows [from, to) of A; N a multiple of 4. B is read in
 * panels of 8 columns: row k of panel p at b + p * panelStride + k * rowStride bytes (a plain row-major B:
 * rowStride = 4 ldb, panelStride = 32; packPanels' layout: 32 and 32 K). 4 x 8 outputs a step in registers,
 * A's values broadcast, B's rows loaded as vectors; each multiply-add one instruction with relaxed SIMD.
 * Here that is 40-44 GFLOP/s on one core (21 without the fused multiply-add), where XNNPACK through
 * tfjs-wasm reached 25-42 on two for the linear layers and 15 for attention's products (it repacks B on
 * every call).
 */
function gemm(a: usize, lda: i32, b: usize, rowStride: i32, panelStride: i32, bias: usize, c: usize, ldc: i32, N: i32, K: i32, from: i32, to: i32): void {
  const panels = (N + 7) >> 3, sa = <usize>lda << 2, sc = <usize>ldc << 2, rs = <usize>rowStride;
  const zero = f32x4.splat(0);
  for (let m0 = from; m0 < to; m0 += ROW_BLOCK) {
    const m1 = min(m0 + ROW_BLOCK, to);
    for (let p = 0; p < panels; p++) {
      // A last panel of 4 columns loads and stores one vector a row: B may end right after it.
      const bp0 = b + <usize>p * <usize>panelStride, jo = <usize>p << 5, full = (p << 3) + 8 <= N;
      const b0 = bias ? v128.load(bias + jo) : zero;
      const b1 = bias && full ? v128.load(bias + jo, 16) : zero;
      let i = m0;
      for (; i + 4 <= m1; i += 4) {
        const a0 = a + <usize>i * sa, a1 = a0 + sa, a2 = a1 + sa, a3 = a2 + sa;
        const c0 = c + <usize>i * sc + jo, c1 = c0 + sc, c2 = c1 + sc, c3 = c2 + sc;
        let x00 = b0, x01 = b1, x10 = b0, x11 = b1, x20 = b0, x21 = b1, x30 = b0, x31 = b1;
        let bp = bp0;
        if (full) {
          for (let k = 0; k < K; k++, bp += rs) {
            const ko = <usize>k << 2;
            const w0 = v128.load(bp), w1 = v128.load(bp, 16);
            let s = v128.load32_splat(a0 + ko);
            x00 = madd(s, w0, x00); x01 = madd(s, w1, x01);
            s = v128.load32_splat(a1 + ko);
            x10 = madd(s, w0, x10); x11 = madd(s, w1, x11);
            s = v128.load32_splat(a2 + ko);
            x20 = madd(s, w0, x20); x21 = madd(s, w1, x21);
            s = v128.load32_splat(a3 + ko);
            x30 = madd(s, w0, x30); x31 = madd(s, w1, x31);
          }
          v128.store(c0, x01, 16); v128.store(c1, x11, 16); v128.store(c2, x21, 16); v128.store(c3, x31, 16);
        } else {
          for (let k = 0; k < K; k++, bp += rs) {
            const ko = <usize>k << 2;
            const w0 = v128.load(bp);
            x00 = madd(v128.load32_splat(a0 + ko), w0, x00);
            x10 = madd(v128.load32_splat(a1 + ko), w0, x10);
            x20 = madd(v128.load32_splat(a2 + ko), w0, x20);
            x30 = madd(v128.load32_splat(a3 + ko), w0, x30);
          }
        }
        v128.store(c0, x00); v128.store(c1, x10); v128.store(c2, x20); v128.store(c3, x30);
      }
      for (; i < m1; i++) {
        const a0 = a + <usize>i * sa, c0 = c + <usize>i * sc + jo;
        let x0 = b0, x1 = b1;
        let bp = bp0;
        for (let k = 0; k < K; k++, bp += rs) {
          const s = v128.load32_splat(a0 + (<usize>k << 2));
          x0 = madd(s, v128.load(bp), x0);
          if (full) x1 = madd(s, v128.load(bp, 16), x1);
        }
        v128.store(c0, x0);
        if (full) v128.store(c0, x1, 16);
      }
    }
  }
}

/** C[M, N] = A[M, K] B[K, N], all row-major with row strides lda, ldb, ldc (floats); N a multiple of 4. */
// @ts-ignore: decorator
@inline function product(a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, M: i32, N: i32, K: i32): void {
  gemm(a, lda, b, ldb << 2, 32, 0, c, ldc, N, K, 0, M);
}

/** C[M, N] = A[M, K] W + bias (bias = 0: none) for rows [from, to) of A, W packed by packPanels; N a multiple of 4. */
export function matmulPacked(a: usize, w: usize, bias: usize, c: usize, K: i32, N: i32, from: i32, to: i32): void {
  gemm(a, K, w, 32, K << 5, bias, c, N, N, K, from, to);
}
