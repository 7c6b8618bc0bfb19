// Attention forward and backward over (image, head) pairs (kernels.as.ts).
import { exp4, hsum, loadTail, storeTail } from './math.as';
import { product } from './gemm.as';

// ---- Attention: one kernel a layer for forward, one for backward, over a range of (image, head) pairs. ----
// qkv is [B*T, 3d] (q, k, v side by side, head h at columns h*hd of each); out and dOut [B*T, d]; dqkv
// [B*T, 3d]; probs [B*H, T, Tp], Tp = T rounded up to 4 (the products' widths must be multiples of 4;
// the pad column is 0). Every product is 2-D, row-major, on strided views: no copies but transposes (k^T forward;
// v^T, P^T and dS^T backward).

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
