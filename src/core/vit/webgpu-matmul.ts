/**
 * The frozen linear layers' products, C = A B (+ bias) for 2-D A [M, K] and
 * B [K, N], as a WGSL kernel with more work per thread than tfjs's own.
 *
 * Why: on a real GPU the linear layers are most of a large step (ViT-B/16
 * batch 32 on an H100: 98 of 149 ms of kernel time, forward and backward),
 * and tfjs's matmul runs them at its ceiling, 23 TFLOP/s there, about a third
 * of the card's float32 rate. Its threads each compute 4 x 4 outputs of a
 * 32 x 32 tile: every k costs a thread 2 workgroup-memory loads per 16
 * multiply-adds, and each element it loads from global memory serves 32
 * outputs. Here each of 256 threads computes 8 x 8 outputs of a 128 x 128
 * tile (or 64 threads of a 64 x 64 tile): 4 loads of 16 bytes per 64
 * multiply-adds, each element loaded serving 128 (64) outputs. That pays on
 * the products with wide outputs, a ViT's qkv and fc1 forward and fc2's
 * gradient (matmulTiling says where, with the H100's figures).
 *
 * Layout: K in steps of 16 through workgroup memory, A's tile stored k-major
 * (four rows of one k side by side as a vec4) and B's as it is, so a thread's
 * inner step reads two vec4s of A (rows 4 ty.. and BM/2 + 4 ty..) and two of
 * B (columns 4 tx.. and BN/2 + 4 tx..), and a warp's loads fall on distinct
 * banks or broadcast. The 128-wide tiles together take 16 KiB, all the
 * workgroup memory WebGPU guarantees. Operands are read as vec4s, so K and N must be multiples
 * of 4 (every ViT width is; otherwise tfjs's kernel runs).
 */
import * as tf from '@tensorflow/tfjs';
import { type Args, flat, type Program, run, type Uniform } from './webgpu-program';

export const MATMUL = 'VptMatMul';

const BK = 16;

/** A tile's side: 128 (16 x 16 threads of 8 x 8 outputs) or 64 (8 x 8 threads). */
export type Tiling = 64 | 128;

/**
 * The tile for an [M, K] x [K, N] product, or null for tfjs's kernel.
 * Measured on an H100 (bench --gpu --matmul, GFLOP/s, tfjs / ours with 128 /
 * with 64): the 128-wide tile wins where the output is wide against K and
 * there are enough tiles to fill the GPU: [6624, 768] x [768, 3072] 23.1 /
 * 28.4 / 25.5, x [768, 2304] 22.9 / 26.4, [1656, 768] x [768, 2304] 18.0 /
 * 22.3, [13248, 192] x [192, 768] 19.7 / 22.7. Where N is narrow against K
 * tfjs's smaller tiles keep more of the GPU busy: [1656, 3072] x [3072, 768]
 * 17.3 / 13.0 / 13.2, [1656, 768] x [768, 192] 8.3 / 3.1 / 4.0. In between
 * (N = K, 3072 -> 768 at large M) they are even. The 64-wide tile won only a
 * few narrow shapes by 5-15% and is not chosen by itself.
 */
export function matmulTiling(M: number, K: number, N: number): Tiling | null {
  if (forced === 'off' || K % 4 || N % 4) return null;
  if (forced !== 'auto') return forced;
  return chooseTile(M, K, N, (tf.backend() as { adapterInfo?: { vendor?: string } }).adapterInfo?.vendor);
}

/**
 * The rule above, for a GPU of the given vendor (WebGPU's adapter info). Only
 * NVIDIA's is measured; other GPUs keep tfjs's kernel until `npm run bench --
 * --gpu --matmul` shows ours pays there too (their registers, workgroup memory
 * and scheduling differ). Software adapters (vendor "google" for SwiftShader)
 * never get it: their barriers cost microseconds per workgroup.
 */
export function chooseTile(M: number, K: number, N: number, vendor: string | undefined): Tiling | null {
  if (vendor !== 'nvidia' || K % 4 || N % 4) return null;
  return N >= 2 * K && Math.ceil(M / 128) * Math.ceil(N / 128) >= 200 ? 128 : null;
}

let forced: 'auto' | 'off' | Tiling = 'auto';

/** 'off': tfjs's matmul; 64 or 128: that tile wherever K and N allow (tests, bench); 'auto': by shape. Returns the previous setting. */
export function setMatmulTiling(t: 'auto' | 'off' | Tiling): 'auto' | 'off' | Tiling {
  const was = forced;
  forced = t;
  return was;
}

/** The inner step, unrolled: rows from a0 (first half) and a1 (second), columns from b0 and b1. */
function innerStep(): string {
  const lines: string[] = [];
  for (let i = 0; i < 8; i++) {
    const a = `${i < 4 ? 'a0' : 'a1'}.${'xyzw'[i % 4]}`;
    lines.push(`acc[${2 * i}] = fma(vec4<f32>(${a}), b0, acc[${2 * i}]); acc[${2 * i + 1}] = fma(vec4<f32>(${a}), b1, acc[${2 * i + 1}]);`);
  }
  return lines.join('\n        ');
}

/** The stores, unrolled (a private array indexed by a loop variable can end up in slow memory). */
function writes(wx: number, wy: number, bias: boolean): string {
  const lines: string[] = [];
  for (let i = 0; i < 8; i++) {
    const row = i < 4 ? `row0 + ty * 4 + ${i}` : `row0 + ${4 * wy} + ty * 4 + ${i - 4}`;
    lines.push(`{
      let row = ${row};
      if (row < uniforms.M) {
        if (c0 < uniforms.N) { result[row * n4 + c0 / 4] = acc[${2 * i}]${bias ? ' + bias0' : ''}; }
        if (c1 < uniforms.N) { result[row * n4 + c1 / 4] = acc[${2 * i + 1}]${bias ? ' + bias1' : ''}; }
      }
    }`);
  }
  return `let c0 = col0 + tx * 4;
    let c1 = col0 + ${4 * wx} + tx * 4;
    ${bias ? `var bias0 = vec4<f32>(0.0);
    var bias1 = vec4<f32>(0.0);
    if (c0 < uniforms.N) { bias0 = bias[c0 / 4]; }
    if (c1 < uniforms.N) { bias1 = bias[c1 / 4]; }` : ''}
    ${lines.join('\n    ')}`;
}

function program(M: number, N: number, tile: Tiling, bias: boolean): Program {
  const wx = tile / 8, wy = tile / 8, BM = 8 * wy, BN = 8 * wx, AW = BM / 4, BW = BN / 4, threads = wx * wy;
  const aLoads = (BM * BK / 4) / threads, bLoads = (BK * BN / 4) / threads;
  return {
    variableNames: bias ? ['a', 'b', 'bias'] : ['a', 'b'],
    outputShape: [M, N],
    shaderKey: `${MATMUL}_${tile}${bias ? '_bias' : ''}`,
    dispatchLayout: flat([M, N]),
    dispatch: [Math.ceil(N / BN), Math.ceil(M / BM), 1],
    workgroupSize: [wx, wy, 1],
    outputComponent: 4,
    variableComponents: bias ? [4, 4, 4] : [4, 4],
    uniforms: 'M : i32, N : i32, K : i32,',
    getUserCode: () => `
  var<workgroup> tileA : array<vec4<f32>, ${BK * AW}>; // [k][row / 4]
  var<workgroup> tileB : array<vec4<f32>, ${BK * BW}>; // [k][col / 4]

  fn main(index : i32) {
    let tx = i32(localId.x);
    let ty = i32(localId.y);
    let tid = ty * ${wx} + tx;
    let row0 = i32(workgroupId.y) * ${BM};
    let col0 = i32(workgroupId.x) * ${BN};
    let k4 = uniforms.K / 4;
    let n4 = uniforms.N / 4;
    var acc : array<vec4<f32>, 16>;
    for (var k0 = 0; k0 < uniforms.K; k0 += ${BK}) {
      // A: each thread a vec4 along k of one row, stored as four k rows of the k-major tile.
      for (var i = 0; i < ${aLoads}; i++) {
        let e = tid + i * ${threads};
        let r = e / ${BK / 4};
        let kq = e % ${BK / 4};
        var v = vec4<f32>(0.0);
        if (row0 + r < uniforms.M && k0 + kq * 4 < uniforms.K) { v = a[(row0 + r) * k4 + k0 / 4 + kq]; }
        let s = kq * ${4 * AW} + r / 4;
        let c = r % 4;
        tileA[s][c] = v.x;
        tileA[s + ${AW}][c] = v.y;
        tileA[s + ${2 * AW}][c] = v.z;
        tileA[s + ${3 * AW}][c] = v.w;
      }
      // B: each thread a vec4 along a row, as it is.
      for (var i = 0; i < ${bLoads}; i++) {
        let e = tid + i * ${threads};
        let kk = e / ${BW};
        let cq = e % ${BW};
        var v = vec4<f32>(0.0);
        if (k0 + kk < uniforms.K && col0 + cq * 4 < uniforms.N) { v = b[(k0 + kk) * n4 + col0 / 4 + cq]; }
        tileB[kk * ${BW} + cq] = v;
      }
      workgroupBarrier();
      for (var kk = 0; kk < ${BK}; kk++) {
        let a0 = tileA[kk * ${AW} + ty];
        let a1 = tileA[kk * ${AW} + ${wy} + ty];
        let b0 = tileB[kk * ${BW} + tx];
        let b1 = tileB[kk * ${BW} + ${wx} + tx];
        ${innerStep()}
      }
      workgroupBarrier();
    }
    ${writes(wx, wy, bias)}
  }`,
  };
}

/** inputs a [M, K], b [K, N], optionally bias [N]; attrs.tile from matmulTiling. */
function matmulKernel({ inputs, attrs = {}, backend }: Args): tf.TensorInfo {
  const { a, b, bias } = inputs;
  const [M, K] = a.shape, N = b.shape[1];
  const tile = attrs.tile as Tiling;
  if ((tile !== 64 && tile !== 128) || a.shape.length !== 2 || b.shape[0] !== K || K % 4 || N % 4 || (bias && bias.shape[0] !== N)) {
    throw new Error(`${MATMUL}: cannot multiply [${a.shape}] by [${b.shape}] in ${tile}-wide tiles`);
  }
  const u: Uniform[] = [M, N, K].map((x) => ({ type: 'int32', data: [x] }));
  return run(backend, program(M, N, tile, !!bias), bias ? [a, b, bias] : [a, b], u);
}

export const MATMUL_KERNELS: [string, (a: Args) => tf.TensorInfo][] = [[MATMUL, matmulKernel]];
