/**
 * Multi-head attention's four products as WGSL kernels that read q, k, v
 * straight out of the fused [B*T, 3d] projection and write the heads straight
 * into their columns: no transposes, no q/k/v split, no concat of gradients.
 *
 * Why: on a real GPU a small training step is bound by the host's cost per
 * dispatch (about 50-60 us each on an H200's host), and tfjs ops spend 16 a
 * layer on attention besides the softmax (a transpose, a three-way split, two
 * batched products and a transpose back, and the same backward with a concat).
 * These take 2 forward and 2 backward, plus the fused softmax and its
 * gradient from webgpu-kernels.ts: 6 a layer instead of 16.
 *
 * One tiled program serves every product: C[z] = A[z] B[z] in 32 x 32 tiles,
 * 8 x 8 threads of 4 x 4 outputs each, K in steps of 32 through workgroup
 * memory (the same shape as tfjs's own matmul; tiledProgram says how the tiles
 * are laid out). Each product only says where
 * its operands' elements live (`readA`, `readB`) and where the result goes
 * (`write`), and which index of each operand is contiguous in memory, so that
 * neighbouring threads load neighbouring addresses.
 *
 * With z = b H + h (batch b, head h), S the raw scores, P = softmax(S / sqrt(hd)):
 *   scores  S[z] = Q_h K_h^T                [B, H, T, T]
 *   pv      O_h = P[z] V_h                  into the [B*T, d] output
 *   dp      dP[z] = dO_h V_h^T              [B, H, T, T]
 *   dqkv    dQ_h = dS[z] K_h, dK_h = dS[z]^T Q_h, dV_h = P[z]^T dO_h, into [B*T, 3d]
 * where dS is the softmax's gradient with respect to S (scale included).
 */
import * as tf from '@tensorflow/tfjs';
import { type Args, flat, type Program, run, serialKernels, type Uniform } from './webgpu-program';

export const ATTENTION_SCORES = 'VptAttentionScores';
export const ATTENTION_PV = 'VptAttentionPV';
export const ATTENTION_DP = 'VptAttentionDP';
export const ATTENTION_DQKV = 'VptAttentionDQKV';

const TILE = 32;

/**
 * One product's addressing, in WGSL, per part (a product with several parts
 * computes several results side by side, selected by z): `readA[part]` and
 * `readB[part]` are expressions for A[row, kk] and B[kk, col]; `write` stores
 * `val` at (row, col) and may use `part`. All may use z, b, h and the
 * uniforms T, H, hd, d. `aKFast[part]` / `bKFast[part]`: whether A's (B's)
 * elements are contiguous along k, so that tile loads walk k fastest. `out`:
 * the result's layout, [B, H, T, T] scores, [B*T, d] heads or [B*T, 3d].
 */
interface Product { names: string[]; out: 'scores' | 'heads' | 'qkv'; M: string; N: string; K: string; readA: string[]; readB: string[]; write: string; aKFast: boolean[]; bKFast: boolean[] }

// Row `r` of batch b's tokens in a [B*T, w] matrix, column c: (b T + r) w + c.
const q = (r: string, c: string) => `qkvIn[(b * uniforms.T + ${r}) * 3 * uniforms.d + h * uniforms.hd + ${c}]`;
const k = (r: string, c: string) => `qkvIn[(b * uniforms.T + ${r}) * 3 * uniforms.d + uniforms.d + h * uniforms.hd + ${c}]`;
const v = (r: string, c: string) => `qkvIn[(b * uniforms.T + ${r}) * 3 * uniforms.d + 2 * uniforms.d + h * uniforms.hd + ${c}]`;
const o = (r: string, c: string) => `doIn[(b * uniforms.T + ${r}) * uniforms.d + h * uniforms.hd + ${c}]`;
// Element (r, c) of head z's [T, T] matrix in a [B, H, T, T] tensor.
const sq = (name: string, r: string, c: string) => `${name}[(z * uniforms.T + ${r}) * uniforms.T + ${c}]`;

const PRODUCTS: Record<string, Product> = {
  [ATTENTION_SCORES]: {
    names: ['qkvIn'], out: 'scores', M: 'uniforms.T', N: 'uniforms.T', K: 'uniforms.hd',
    readA: [q('row', 'kk')], readB: [k('col', 'kk')],
    write: `result[(z * uniforms.T + row) * uniforms.T + col] = val;`, aKFast: [true], bKFast: [true],
  },
  [ATTENTION_PV]: {
    names: ['pIn', 'qkvIn'], out: 'heads', M: 'uniforms.T', N: 'uniforms.hd', K: 'uniforms.T',
    readA: [sq('pIn', 'row', 'kk')], readB: [v('kk', 'col')],
    write: `result[(b * uniforms.T + row) * uniforms.d + h * uniforms.hd + col] = val;`, aKFast: [true], bKFast: [false],
  },
  [ATTENTION_DP]: {
    names: ['doIn', 'qkvIn'], out: 'scores', M: 'uniforms.T', N: 'uniforms.T', K: 'uniforms.hd',
    readA: [o('row', 'kk')], readB: [v('col', 'kk')],
    write: `result[(z * uniforms.T + row) * uniforms.T + col] = val;`, aKFast: [true], bKFast: [true],
  },
  // Three parts, one per column block of the [B*T, 3d] gradient: dQ = dS K, dK = dS^T Q, dV = P^T dO.
  [ATTENTION_DQKV]: {
    names: ['dsIn', 'pIn', 'qkvIn', 'doIn'], out: 'qkv', M: 'uniforms.T', N: 'uniforms.hd', K: 'uniforms.T',
    readA: [sq('dsIn', 'row', 'kk'), sq('dsIn', 'kk', 'row'), sq('pIn', 'kk', 'row')],
    readB: [k('kk', 'col'), q('kk', 'col'), o('kk', 'col')],
    write: `result[(b * uniforms.T + row) * 3 * uniforms.d + part * uniforms.d + h * uniforms.hd + col] = val;`,
    aKFast: [true, false, false], bKFast: [false, false, false],
  },
};

// part0, parts: the parts computed (all but for the bench's attrs.part).
const UNIFORMS = 'T : i32, H : i32, hd : i32, d : i32, heads : i32, part0 : i32, parts : i32,';

const Z_ARGS = 'part : i32, z : i32, b : i32, h : i32';

/** readA_i, readB_i (part i) and write as WGSL functions, bounds-checked. */
const accessors = (p: Product) => p.readA.map((_, i) => `
  fn readA_${i}(${Z_ARGS}, row : i32, kk : i32) -> f32 {
    if (row >= ${p.M} || kk >= ${p.K}) { return 0.0; }
    return ${p.readA[i]};
  }
  fn readB_${i}(${Z_ARGS}, kk : i32, col : i32) -> f32 {
    if (kk >= ${p.K} || col >= ${p.N}) { return 0.0; }
    return ${p.readB[i]};
  }`).join('') + `
  fn write(${Z_ARGS}, row : i32, col : i32, val : f32) {
    ${p.write}
  }`;

/**
 * The k loop once per part, the part chosen outside it: a software adapter
 * runs threads in SIMD lanes and, with the choice inside, took every part's
 * loads for each (3x slower).
 */
const serialLoops = (p: Product) => p.readA.map((_, i) => `${i ? ' else ' : ''}${i < p.readA.length - 1 ? `if (part == ${i}) ` : ''}{
      for (var kk = 0; kk < ${p.K}; kk++) {
        let bv = vec4<f32>(readB_${i}(part, z, b, h, kk, col), readB_${i}(part, z, b, h, kk, col + 1),
          readB_${i}(part, z, b, h, kk, col + 2), readB_${i}(part, z, b, h, kk, col + 3));
        acc = fma(vec4<f32>(readA_${i}(part, z, b, h, row, kk)), bv, acc);
      }
    }`).join('');

/**
 * One thread per four neighbouring outputs of a row, no workgroup memory and
 * no barriers: for software adapters, where a barrier costs more than the
 * arithmetic it saves (serialKernels in webgpu-program.ts).
 */
function serialProgram(name: string, p: Product, outShape: number[], total: number): Program {
  return {
    variableNames: p.names,
    outputShape: outShape,
    shaderKey: `${name}_serial`,
    dispatchLayout: flat(outShape),
    dispatch: [Math.ceil(total / 64), 1, 1],
    workgroupSize: [64, 1, 1],
    uniforms: UNIFORMS,
    getUserCode: () => `${accessors(p)}
  fn main(index : i32) {
    let n4 = (${p.N} + 3) / 4;
    if (index >= uniforms.parts * uniforms.heads * ${p.M} * n4) { return; }
    let col = (index % n4) * 4;
    let row = (index / n4) % ${p.M};
    let wz = index / (n4 * ${p.M});
    let part = uniforms.part0 + wz / uniforms.heads;
    let z = wz % uniforms.heads;
    let b = z / uniforms.H;
    let h = z % uniforms.H;
    var acc = vec4<f32>(0.0);
    ${serialLoops(p)}
    for (var j = 0; j < 4; j++) {
      if (col + j < ${p.N}) { write(part, z, b, h, row, col + j, acc[j]); }
    }
  }`,
  };
}

/**
 * The tiled program (the header says how it works). Each thread owns a 4 x 4
 * block of neighbouring outputs, and the tiles are held as vec4s, A k-major
 * (four rows of one k side by side) and B the same (four columns): each k then
 * costs a thread two 16-byte workgroup loads for 16 multiply-adds. The first
 * version read one float per multiply-add pair (threads strided by 8), and on
 * an H100 its products ran at 3-4 TFLOP/s, slower than tfjs's batched matmul.
 * A vec4's slot in its k row is XOR-ed with k % 8: the loads that walk k
 * fastest (one row, 32 neighbouring k) then spread their stores over 8 banks
 * instead of landing all on one.
 *
 * A product of several parts gets the whole k loop once per part, the part's
 * reads and layout fixed in each copy, and the workgroup picks its copy once.
 * With the part chosen inside each load instead, the three-gradient kernel
 * ran at 3 TFLOP/s on an H200 with staged loads, while the one-part products
 * reached 6-11: the branches kept the loads from being issued together.
 * tfjs keeps the workgroup's id in a private variable, which WGSL's uniformity
 * analysis counts as varying per thread, so the part goes through
 * workgroupUniformLoad for the copies' barriers to be allowed.
 */
function tiledProgram(name: string, p: Product, outShape: number[], dims: { M: number; N: number; heads: number; parts: number }, staged: boolean): Program {
  const copies = p.readA.map((_, i) => tiledLoop(p, i, staged));
  return {
    variableNames: p.names,
    outputShape: outShape,
    shaderKey: `${name}_v5${staged ? '_staged' : ''}`,
    dispatchLayout: flat(outShape),
    dispatch: [Math.ceil(dims.N / TILE), Math.ceil(dims.M / TILE), dims.heads * dims.parts],
    workgroupSize: [8, 8, 1],
    uniforms: UNIFORMS,
    getUserCode: () => `
  var<workgroup> tileA : array<vec4<f32>, ${TILE * TILE / 4}>; // [k][row / 4]
  var<workgroup> tileB : array<vec4<f32>, ${TILE * TILE / 4}>; // [k][col / 4]
  var<workgroup> partShared : i32;
${accessors(p)}
  fn slot(kk : i32, i : i32) -> i32 { return kk * ${TILE / 4} + ((i / 4) ^ (kk % 8)); }

  fn main(index : i32) {
    let z = i32(workgroupId.z) % uniforms.heads;
    let b = z / uniforms.H;
    let h = z % uniforms.H;
    let row0 = i32(workgroupId.y) * ${TILE};
    let col0 = i32(workgroupId.x) * ${TILE};
    let tx = i32(localId.x);
    let ty = i32(localId.y);
    let tid = ty * 8 + tx;
    ${copies.length === 1 ? `let part = uniforms.part0;
    ${copies[0]}` : `if (tid == 0) { partShared = uniforms.part0 + i32(workgroupId.z) / uniforms.heads; }
    let part = workgroupUniformLoad(&partShared);
    ${copies.map((c, i) => `${i ? ' else ' : ''}${i < copies.length - 1 ? `if (part == ${i}) ` : ''}{${c}}`).join('')}`}
  }`,
  };
}

/** Part i's k loop and stores, its reads (readA_i, readB_i) and which of their indices is contiguous fixed. */
function tiledLoop(p: Product, i: number, staged: boolean): string {
  const aK = p.aKFast[i], bK = p.bKFast[i];
  const r: Reads = { a: `readA_${i}`, b: `readB_${i}`, ar: aK ? 'slow' : 'fast', ak: aK ? 'fast' : 'slow', bk: bK ? 'fast' : 'slow', bc: bK ? 'slow' : 'fast' };
  return `
    var acc : array<vec4<f32>, 4>;
    ${staged ? stagedLoads(r) : ''}
    for (var k0 = 0; k0 < ${p.K}; k0 += ${TILE}) {
      ${staged ? stagedStores(r) : directLoads(r)}
      workgroupBarrier();
      ${staged ? `if (k0 + ${TILE} < ${p.K}) { ${stagedFetch(r, 'k0 + ' + TILE)} }` : ''}
      for (var kk = 0; kk < ${TILE}; kk++) {
        let a = tileA[kk * ${TILE / 4} + (ty ^ (kk % 8))];
        let bv = tileB[kk * ${TILE / 4} + (tx ^ (kk % 8))];
        acc[0] = fma(vec4<f32>(a.x), bv, acc[0]);
        acc[1] = fma(vec4<f32>(a.y), bv, acc[1]);
        acc[2] = fma(vec4<f32>(a.z), bv, acc[2]);
        acc[3] = fma(vec4<f32>(a.w), bv, acc[3]);
      }
      workgroupBarrier();
    }
    for (var i = 0; i < 4; i++) {
      let row = row0 + ty * 4 + i;
      for (var j = 0; j < 4; j++) {
        let col = col0 + tx * 4 + j;
        if (row < ${p.M} && col < ${p.N}) { write(part, z, b, h, row, col, acc[i][j]); }
      }
    }`;
}

/**
 * One part's reads: the functions, and which of a load's two indices, `fast`
 * (walking contiguous memory across threads) or `slow`, is A's row (ar) and k
 * (ak) and B's k (bk) and column (bc).
 */
interface Reads { a: string; b: string; ar: string; ak: string; bk: string; bc: string }

/**
 * The tiles' loads as first written: each thread loops over its 16 elements of
 * each operand, storing each to workgroup memory as it arrives, the loop's
 * start depending on the thread (so a compiler need not unroll it, and each
 * load waits on the one before it to be stored).
 */
const directLoads = (r: Reads) => `
      for (var e = tid; e < ${TILE * TILE}; e += 64) {
        // Walk whichever index is contiguous in memory fastest across threads.
        let fast = e % ${TILE};
        let slow = e / ${TILE};
        tileA[slot(${r.ak}, ${r.ar})][${r.ar} % 4] = ${r.a}(part, z, b, h, row0 + ${r.ar}, k0 + ${r.ak});
        tileB[slot(${r.bk}, ${r.bc})][${r.bc} % 4] = ${r.b}(part, z, b, h, k0 + ${r.bk}, col0 + ${r.bc});
      }`;

/** Each thread's share of a tile: 16 elements, e = tid + 64 i, so its fast index is tid % 32 whatever i, its slow one tid / 32 + 2 i. */
const LOADS = TILE * TILE / 64;

/** The tile at k0's 16 + 16 elements into registers sa, sb: all loads issued before any is used (no stores between them). */
const stagedFetch = (r: Reads, k0: string) => `
      for (var i = 0; i < ${LOADS}; i++) {
        let slow = slow0 + 2 * i;
        sa[i] = ${r.a}(part, z, b, h, row0 + ${r.ar}, ${k0} + ${r.ak});
        sb[i] = ${r.b}(part, z, b, h, ${k0} + ${r.bk}, col0 + ${r.bc});
      }`;

/**
 * The staged variant (setAttentionLoads): the first tile is fetched before the
 * k loop; each step then stores the fetched registers into workgroup memory
 * and, once the barrier has passed, fetches the next tile before multiplying
 * this one, so the loads' latency overlaps the multiply-adds. The loops have
 * constant trip counts, for the compiler to unroll into registers; unrolled
 * here in the WGSL instead (32 statements per tile), the shader kept
 * SwiftShader's compiler busy for over five minutes.
 */
const stagedLoads = (r: Reads) => `
    let fast = tid % ${TILE};
    let slow0 = tid / ${TILE};
    var sa : array<f32, ${LOADS}>;
    var sb : array<f32, ${LOADS}>;
    ${stagedFetch(r, '0')}`;
const stagedStores = (r: Reads) => `
      for (var i = 0; i < ${LOADS}; i++) {
        let slow = slow0 + 2 * i;
        tileA[slot(${r.ak}, ${r.ar})][${r.ar} % 4] = sa[i];
        tileB[slot(${r.bk}, ${r.bc})][${r.bc} % 4] = sb[i];
      }`;

/**
 * How the tiled program fills its tiles: 'staged' (a tile's loads issued
 * together into registers, the next tile's while this one is multiplied; the
 * default) or 'direct' (each element loaded and stored in turn, as first
 * written). On an H200 staged loads ran the forward products 1.3-3.5x faster
 * (P V at B 32, H 12: 0.65 -> 0.18 ms); `npm run bench -- --gpu --attention`
 * times both.
 */
export type AttentionLoads = 'direct' | 'staged';
let loads: AttentionLoads = 'staged';
/** Choose the tiled program's loads (bench, tests); returns the previous choice. */
export function setAttentionLoads(l: AttentionLoads): AttentionLoads {
  const was = loads;
  loads = l;
  return was;
}

/**
 * attrs: B, H (batch and heads); the inputs as `Product.names`. attrs.part
 * (bench/gpu.ts --attention only): compute that part of a several-part
 * product alone, to time it; the other parts' columns are left unwritten.
 */
function kernel(name: string) {
  const p = PRODUCTS[name];
  return ({ inputs, attrs = {}, backend }: Args): tf.TensorInfo => {
    const { B, H } = attrs;
    const [BT, d3] = inputs.qkvIn.shape, T = BT / B, d = d3 / 3, hd = d / H;
    const outShape = { scores: [B, H, T, T], heads: [BT, d], qkv: [BT, 3 * d] }[p.out];
    const one = attrs.part !== undefined && attrs.part >= 0 && attrs.part < p.readA.length;
    const part0 = one ? attrs.part : 0, parts = one ? 1 : p.readA.length;
    const u: Uniform[] = [T, H, hd, d, B * H, part0, parts].map((x) => ({ type: 'int32', data: [x] }));
    const N = p.out === 'scores' ? T : hd;
    const prog = serialKernels(backend) ? serialProgram(name, p, outShape, parts * B * H * T * Math.ceil(N / 4)) : tiledProgram(name, p, outShape, { M: T, N, heads: B * H, parts }, loads === 'staged');
    return run(backend, prog, p.names.map((n) => inputs[n]), u);
  };
}

export const ATTENTION_KERNELS: [string, (a: Args) => tf.TensorInfo][] =
  [ATTENTION_SCORES, ATTENTION_PV, ATTENTION_DP, ATTENTION_DQKV].map((n) => [n, kernel(n)]);

/** WebGPU's limit on workgroups along z: past it (B H > 21 845) the tfjs-op path is used. */
export const MAX_FUSED_HEADS = Math.floor(65535 / 3);
