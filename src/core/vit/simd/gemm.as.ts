// The GEMM micro-kernel and the frozen linear layers' packed products (kernels.as.ts).
import { madd } from './math.as';

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
@inline export function product(a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, M: i32, N: i32, K: i32): void {
  gemm(a, lda, b, ldb << 2, 32, 0, c, ldc, N, K, 0, M);
}

/** C[M, N] = A[M, K] W + bias (bias = 0: none) for rows [from, to) of A, W packed by packPanels; N a multiple of 4. */
export function matmulPacked(a: usize, w: usize, bias: usize, c: usize, K: i32, N: i32, from: i32, to: i32): void {
  gemm(a, K, w, 32, K << 5, bias, c, N, N, K, from, to);
}
