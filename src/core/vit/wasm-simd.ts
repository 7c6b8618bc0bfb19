/**
 * wasm's own SIMD kernels (simd/*.as.ts, built into simd/binary.ts), registered with tfjs-backend-wasm:
 * - the frozen linear layers' products (`VptSimdPack`, `VptSimdLinear`), their weights packed in panels;
 * - attention forward and backward, one kernel a layer each (`VptSimdAttention`, `VptSimdAttentionGrad`);
 * - GELU and the frozen LayerNorms, under the names webgpu's fused kernels use, with the same inputs and
 *   attributes: `runFused(GELU, ...)` runs whichever the backend has.
 *
 * Why: with tfjs's ops a ViT-Ti/16 step (p = 10, batch 8; bench/profile.ts) spent about 1.0 s in XNNPACK's
 * linear products (no fused multiply-add in tfjs-wasm 4.22), 0.9 s in attention's per-head products and
 * bookkeeping, and 0.3 s in GELU and the norms (scalar or one-thread tfjs-wasm kernels, Erf alone 110 ms).
 * Here the products multiply-add in one instruction where relaxed SIMD runs, about twice XNNPACK's rate a
 * core, and each of the rest is one pass; the gradients recompute what they need from the input (Phi(x),
 * the row statistics), so a block saves x and h only. README's speed section has the figures.
 *
 * The module imports tfjs-wasm's own memory, so the kernels read and write tensors where they lie: no
 * copies. Each kernel's work is shared with helper threads where tfjs-wasm runs threaded
 * (wasm-simd-pool.ts). Where WebAssembly SIMD is missing (tfjs-wasm then loads its plain build), nothing is
 * registered and the tfjs-op versions run (ops.ts, attention.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { RELAXED_PLAIN, RELAXED_SHARED, SIMD_PLAIN, SIMD_SHARED } from './simd/binary';
import { parallel, readyHelpers, startHelpers } from './wasm-simd-pool';
import { GELU, GELU_GRAD, LAYER_NORM, LAYER_NORM_GRAD, LAYER_NORM_GRAD_ADD } from './webgpu-kernels';

/** The parts of tfjs-wasm's backend object used here. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  getMemoryOffset(dataId: tf.DataId): number;
  // The threaded build creates its memory in JavaScript; the others export it.
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory }; _malloc(bytes: number): number; _free(ptr: number): void };
}

interface Kernels {
  gelu(x: number, y: number, from: number, to: number): void;
  geluGrad(x: number, dy: number, dx: number, from: number, to: number): void;
  layerNorm(x: number, g: number, b: number, y: number, d: number, eps: number, from: number, to: number): void;
  layerNormGrad(x: number, g: number, dy: number, res: number, dx: number, d: number, eps: number, from: number, to: number): void;
  attentionScratch(T: number, hd: number): number;
  attentionForward(qkv: number, out: number, probs: number, scratch: number, H: number, T: number, hd: number, scale: number, from: number, to: number): void;
  attentionBackward(qkv: number, probs: number, dOut: number, dqkv: number, scratch: number, H: number, T: number, hd: number, scale: number, from: number, to: number): void;
  packPanels(w: number, dst: number, K: number, N: number, from: number, to: number): void;
  packPanelsT(w: number, dst: number, K: number, N: number, from: number, to: number): void;
  matmulPacked(a: number, w: number, bias: number, c: number, K: number, N: number, from: number, to: number): void;
}
/** The kernels a helper thread may be handed (wasm-simd-pool.ts), by index. */
const NAMES = ['gelu', 'geluGrad', 'layerNorm', 'layerNormGrad', 'attentionForward', 'attentionBackward', 'packPanels', 'packPanelsT', 'matmulPacked'] as const;

const bytesOf = (b64: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const modules = new Map<string, WebAssembly.Module>();
interface Bound { memory: WebAssembly.Memory; module: WebAssembly.Module; k: Kernels }
const instances = new WeakMap<WebAssembly.Memory, Bound>();

/** The backend's WebAssembly memory, if this tfjs-wasm build lets us reach it. */
const memoryOf = (b: WasmBackend): WebAssembly.Memory | undefined => b.wasm?.wasmMemory ?? b.wasm?.asm?.memory;

/** The kernels bound to this backend's memory (one instance per memory; a memory that grows stays the same object). */
function simdOf(b: WasmBackend): Bound {
  const memory = memoryOf(b);
  if (!memory) throw new Error('tfjs-backend-wasm: its WebAssembly memory is not reachable (an unknown tfjs-wasm build?)');
  let bound = instances.get(memory);
  if (!bound) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const relaxed = relaxedSupported();
    const key = `${shared}${relaxed}`;
    let module = modules.get(key);
    if (!module) modules.set(key, (module = new WebAssembly.Module(bytesOf(relaxed ? (shared ? RELAXED_SHARED : RELAXED_PLAIN) : (shared ? SIMD_SHARED : SIMD_PLAIN)))));
    bound = { memory, module, k: new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels };
    instances.set(memory, bound);
  }
  return bound;
}

/**
 * Kernel `name` over [0, n), shared with the helper threads where there are any (chunks start at multiples
 * of `align`; at most `shares` threads, each with its own share index, take part).
 */
function split(s: Bound, name: typeof NAMES[number], n: number, align: number, args: (from: number, to: number, share: number) => number[], shares = Infinity): void {
  parallel(s.memory, s.module, NAMES, s.k as unknown as Record<string, (...a: number[]) => void>, name, n, align, args, shares);
}

type Args = { inputs: Record<string, tf.TensorInfo>; attrs: { eps?: number }; backend: unknown };
const size = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

/** A kernel with one output of its first input's shape: `run` gets the kernels, the output's and inputs' byte offsets. */
function kernel(names: string[], run: (s: Bound, out: number, ptrs: number[], x: tf.TensorInfo, eps: number) => void): tf.KernelFunc {
  return ((args: Args) => {
    const b = args.backend as WasmBackend;
    const ins = names.map((n) => args.inputs[n]);
    const out = b.makeOutput([...ins[0].shape], 'float32');
    if (size(out) > 0) run(simdOf(b), b.getMemoryOffset(out.dataId), ins.map((t) => b.getMemoryOffset(t.dataId)), ins[0], args.attrs.eps ?? 0);
    return out;
  }) as unknown as tf.KernelFunc;
}

const rowsOf = (x: tf.TensorInfo) => size(x) / x.shape[x.shape.length - 1];
const lastOf = (x: tf.TensorInfo) => x.shape[x.shape.length - 1];

export const SIMD_ATTENTION = 'VptSimdAttention';
export const SIMD_ATTENTION_GRAD = 'VptSimdAttentionGrad';

type AttentionArgs = { inputs: Record<string, tf.TensorInfo>; attrs: { B: number; H: number }; backend: unknown };

/** The shape of attention over B images, H heads, from a [B*T, 3d] projection; the probabilities' rows are padded to 4. */
function attentionShape(qkv: tf.TensorInfo, B: number, H: number) {
  const [BT, d3] = qkv.shape, T = BT / B, d = d3 / 3, hd = d / H;
  if (qkv.shape.length !== 2 || !Number.isInteger(T) || !Number.isInteger(hd) || hd % 4 !== 0) {
    throw new Error(`${SIMD_ATTENTION}: [${qkv.shape}] is not B = ${B} images of H = ${H} heads with a head width divisible by 4`);
  }
  return { T, d, hd, Tp: (T + 3) & ~3, scale: 1 / Math.sqrt(hd) };
}

/**
 * Runs `f` with a scratch buffer of `floats` floats on the heap for each thread that can take part now
 * (`shares` of them: `f` must not use more), freed after.
 */
function withScratch(b: WasmBackend, s: Bound, floats: number, f: (ptr: number, bytes: number, shares: number) => void): void {
  const bytes = floats * 4, shares = 1 + readyHelpers(s.memory);
  const ptr = b.wasm._malloc(bytes * shares);
  if (!ptr) throw new Error(`${SIMD_ATTENTION}: out of wasm memory for ${bytes * shares} bytes of scratch`);
  try { f(ptr, bytes, shares); } finally { b.wasm._free(ptr); }
}

/** qkv [B*T, 3d] -> out [B*T, d] and the probabilities [B*H, T, Tp] (the pad column 0), which the gradient needs. */
function attentionKernel({ inputs: { qkv }, attrs: { B, H }, backend }: AttentionArgs): tf.TensorInfo[] {
  const b = backend as WasmBackend, { T, d, hd, Tp, scale } = attentionShape(qkv, B, H);
  const out = b.makeOutput([B * T, d], 'float32'), probs = b.makeOutput([B * H, T, Tp], 'float32');
  const s = simdOf(b), at = (t: tf.TensorInfo) => b.getMemoryOffset(t.dataId);
  withScratch(b, s, s.k.attentionScratch(T, hd), (ptr, bytes, shares) => split(s, 'attentionForward', B * H, 1, (from, to, share) =>
    [at(qkv), at(out), at(probs), ptr + share * bytes, H, T, hd, scale, from, to], shares));
  return [out, probs];
}

/** (qkv, probs, dOut) -> dqkv [B*T, 3d]. */
function attentionGradKernel({ inputs: { qkv, probs, dOut }, attrs: { B, H }, backend }: AttentionArgs): tf.TensorInfo {
  const b = backend as WasmBackend, { T, d, hd, Tp, scale } = attentionShape(qkv, B, H);
  if (!tf.util.arraysEqual(probs.shape, [B * H, T, Tp]) || !tf.util.arraysEqual(dOut.shape, [B * T, d])) {
    throw new Error(`${SIMD_ATTENTION_GRAD}: probabilities [${probs.shape}] or gradient [${dOut.shape}] do not fit [${qkv.shape}]`);
  }
  const dqkv = b.makeOutput([...qkv.shape], 'float32');
  const s = simdOf(b), at = (t: tf.TensorInfo) => b.getMemoryOffset(t.dataId);
  withScratch(b, s, s.k.attentionScratch(T, hd), (ptr, bytes, shares) => split(s, 'attentionBackward', B * H, 1, (from, to, share) =>
    [at(qkv), at(probs), at(dOut), at(dqkv), ptr + share * bytes, H, T, hd, scale, from, to], shares));
  return dqkv;
}

export const SIMD_PACK = 'VptSimdPack';
export const SIMD_LINEAR = 'VptSimdLinear';

/** w [K, N] (or, transposed, w^T of w [N, K]) -> [ceil(N / 8), K, 8]: the layout SIMD_LINEAR takes. */
function packKernel({ inputs: { w }, attrs: { transposed }, backend }: { inputs: { w: tf.TensorInfo }; attrs: { transposed: boolean }; backend: unknown }): tf.TensorInfo {
  const b = backend as WasmBackend;
  if (w.shape.length !== 2 || w.dtype !== 'float32') throw new Error(`${SIMD_PACK}: takes a float32 matrix, got ${w.dtype} [${w.shape}]`);
  const [K, N] = transposed ? [w.shape[1], w.shape[0]] : w.shape, panels = Math.ceil(N / 8);
  const out = b.makeOutput([panels, K, 8], 'float32');
  if (panels * K > 0) split(simdOf(b), transposed ? 'packPanelsT' : 'packPanels', panels, 1, (from, to) => [b.getMemoryOffset(w.dataId), b.getMemoryOffset(out.dataId), K, N, from, to]);
  return out;
}

/** x [M, K] times a packed [K, N] (+ bias [N]) -> [M, N]; N a multiple of 4. */
function linearKernel({ inputs: { x, w, bias }, attrs: { N }, backend }: { inputs: { x: tf.TensorInfo; w: tf.TensorInfo; bias?: tf.TensorInfo }; attrs: { N: number }; backend: unknown }): tf.TensorInfo {
  const b = backend as WasmBackend;
  const [M, K] = x.shape;
  if (x.shape.length !== 2 || w.shape[1] !== K || w.shape[0] !== Math.ceil(N / 8) || N % 4 !== 0 || (bias && bias.shape[0] !== N)) {
    throw new Error(`${SIMD_LINEAR}: [${x.shape}] times packed [${w.shape}] to ${N} columns${bias ? ` plus [${bias.shape}]` : ''} do not fit`);
  }
  const out = b.makeOutput([M, N], 'float32'), at = (t: tf.TensorInfo) => b.getMemoryOffset(t.dataId);
  if (M * N > 0) split(simdOf(b), 'matmulPacked', M, 4, (from, to) => [at(x), at(w), bias ? at(bias) : 0, at(out), K, N, from, to]);
  return out;
}

const KERNELS: [string, tf.KernelFunc][] = [
  [SIMD_PACK, packKernel as unknown as tf.KernelFunc],
  [SIMD_LINEAR, linearKernel as unknown as tf.KernelFunc],
  [GELU, kernel(['xIn'], (s, out, [x], t) => split(s, 'gelu', size(t), 4, (from, to) => [x, out, from, to]))],
  [GELU_GRAD, kernel(['xIn', 'dyIn'], (s, out, [x, dy], t) => split(s, 'geluGrad', size(t), 4, (from, to) => [x, dy, out, from, to]))],
  [LAYER_NORM, kernel(['xIn', 'gamma', 'beta'], (s, out, [x, g, b], t, eps) =>
    split(s, 'layerNorm', rowsOf(t), 1, (from, to) => [x, g, b, out, lastOf(t), eps, from, to]))],
  [LAYER_NORM_GRAD, kernel(['xIn', 'gamma', 'dyIn'], (s, out, [x, g, dy], t, eps) =>
    split(s, 'layerNormGrad', rowsOf(t), 1, (from, to) => [x, g, dy, 0, out, lastOf(t), eps, from, to]))],
  [LAYER_NORM_GRAD_ADD, kernel(['xIn', 'gamma', 'dyIn', 'resIn'], (s, out, [x, g, dy, res], t, eps) =>
    split(s, 'layerNormGrad', rowsOf(t), 1, (from, to) => [x, g, dy, res, out, lastOf(t), eps, from, to]))],
  [SIMD_ATTENTION, attentionKernel as unknown as tf.KernelFunc],
  [SIMD_ATTENTION_GRAD, attentionGradKernel as unknown as tf.KernelFunc],
];

let enabled = true;
let supported: boolean | null = null;

/** Whether this engine runs WebAssembly SIMD (our module validates). */
function simdSupported(): boolean {
  if (supported === null) {
    try { supported = WebAssembly.validate(bytesOf(SIMD_PLAIN)); } catch { supported = false; }
  }
  return supported;
}

let relaxed: boolean | null = null;

/**
 * Whether this engine runs relaxed SIMD (its fused multiply-add: the products about twice as fast here). Chrome
 * has it from 114, Node from 22; the CLI turns it on in Node 20's V8 (src/cli/backend.ts). VPT_WASM_FMA=0 in
 * Node's environment leaves it off (the bench compares both).
 */
export function relaxedSupported(): boolean {
  if (relaxed === null) {
    const off = typeof process !== 'undefined' && process.env?.VPT_WASM_FMA === '0';
    relaxed = !off && relaxedSimdValidates();
  }
  return relaxed;
}

/** Whether the engine validates relaxed SIMD now (not cached: the CLI turns it on in Node 20 first, where needed). */
export function relaxedSimdValidates(): boolean {
  try { return WebAssembly.validate(bytesOf(RELAXED_PLAIN)); } catch { return false; }
}

/** Register the kernels for 'wasm' where SIMD runs. Safe to call more than once, and before the backend starts. */
export function installWasmSimd(): void {
  if (!simdSupported()) return;
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
}

/**
 * Whether GELU and the frozen norms run on these kernels now: the backend is
 * wasm, its memory reachable (else the tfjs ops run) and the kernels on.
 */
export function wasmSimdKernels(): boolean {
  if (!enabled || tf.getBackend() !== 'wasm' || !tf.getKernel(GELU, 'wasm')) return false;
  return !!memoryOf(tf.backend() as unknown as WasmBackend);
}

/** Once wasm has started: instantiate the kernels and start their helper threads (wasm-simd-pool.ts); returns how many are ready. */
export async function startWasmSimd(): Promise<number> {
  if (!wasmSimdKernels()) return 0;
  const s = simdOf(tf.backend() as unknown as WasmBackend);
  return startHelpers(s.memory, s.module, NAMES);
}

/** Which kernels wasm runs: "SIMD+FMA" (relaxed SIMD's fused multiply-add), "SIMD", or null (tfjs's ops). */
export function simdKind(): 'SIMD+FMA' | 'SIMD' | null {
  return wasmSimdKernels() ? (relaxedSupported() ? 'SIMD+FMA' : 'SIMD') : null;
}

/**
 * What the kernels run with, for logs and the bench: "SIMD kernels with fused multiply-add, 1 helper thread"
 * (compact: "SIMD+FMA, 1 helper"; helpers count once started), or null where they do not run.
 */
export function simdSummary(compact = false): string | null {
  const kind = simdKind();
  if (!kind) return null;
  const memory = memoryOf(tf.backend() as unknown as WasmBackend);
  const n = memory ? readyHelpers(memory) : 0;
  if (compact) return `${kind}${n ? `, ${n} helper${n === 1 ? '' : 's'}` : ''}`;
  return `SIMD kernels${kind === 'SIMD+FMA' ? ' with fused multiply-add' : ''}${n ? `, ${n} helper thread${n === 1 ? '' : 's'}` : ''}`;
}

/** Turn the kernels off or on (tests and the bench compare both paths); returns the previous setting. */
export function setWasmSimd(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}
