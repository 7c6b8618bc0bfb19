/**
 * Kernel replacements for tfjs-backend-wasm, installed once per process.
 *
 * Slice: tfjs-wasm 4.22's Slice first copies the WHOLE input out of the wasm
 * heap (`backend.readSync`) and then copies the slice out of that copy. Taking
 * one head ([1, 207, 207]) out of [24, 207, 207] therefore moved 4 MB to keep
 * 171 KB, and the per-head attention does that 4 600 times per ViT-Ti step:
 * bench/profile.ts showed Slice at 36% of the step's kernel time. This version
 * reads the input in place (a view on the heap), so a slice costs only what it
 * keeps.
 *
 * SplitV (the gradient of every concat, e.g. VPT-deep's prompt slots) slices
 * with the stock Slice above, so each piece copied the whole input too: 2.75-3.6
 * ms a layer for [8, 207, 192] in a ViT-Ti/16 step, 0.45-0.55 ms now that it
 * takes its pieces with the in-place slice.
 *
 * Identity: tfjs-wasm copies the tensor; the cpu, webgl and webgpu backends
 * share the data and count references (as wasm's own Reshape does). The
 * engine clones, through Identity, every tensor a kernel saves for its
 * gradient and every tensor a custom gradient saves, so on wasm each of those
 * was a full copy (about 100 ms of a ViT-Ti/16 training step, and the memory).
 * Tensors are immutable, so sharing is safe.
 *
 * Same results, to the byte (tests/unit/kernels.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { installWasmAttention } from './wasm-attention';
import { installWasmSimd } from './wasm-simd';

/** The parts of tfjs-wasm's backend object this file uses (it is not exported as a type we can import in core). */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: tf.DataId): void;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type SliceArgs = { inputs: { x: tf.TensorInfo }; attrs: { begin: number | number[]; size?: number | number[] }; backend: unknown };

function makeSlice(fallback: tf.KernelFunc): tf.KernelFunc {
  // Named, so that a test can tell this kernel is the one registered.
  return (function sliceInPlace(args: SliceArgs) {
    const { inputs: { x }, attrs, backend } = args;
    // Strings live outside the heap: the stock kernel handles them.
    if (x.dtype === 'string') return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
    const b = backend as WasmBackend;
    // Allocate the output first: makeOutput may grow the heap, which detaches any view taken before it.
    const out = b.makeOutput(size, x.dtype);
    const n = size.reduce((a, s) => a * s, 1);
    if (n === 0) return out;
    const src = b.typedArrayFromHeap(x), dst = b.typedArrayFromHeap(out);
    const strides = tf.util.computeStrides(x.shape);
    if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
      const at = tf.slice_util.computeFlatOffset(begin, strides);
      dst.set(src.subarray(at, at + n));
      return out;
    }
    // Strided: copy the innermost run of each outer index (an odometer over the outer dimensions).
    const rank = x.shape.length, inner = size[rank - 1];
    const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
    for (let o = 0; o < n; o += inner) {
      let at = begin[rank - 1];
      for (let d = 0; d < rank - 1; d++) at += (begin[d] + idx[d]) * strides[d];
      dst.set(src.subarray(at, at + inner), o);
      for (let d = rank - 2; d >= 0; d--) {
        if (++idx[d] < size[d]) break;
        idx[d] = 0;
      }
    }
    return out;
  }) as unknown as tf.KernelFunc;
}

/** SplitV as tfjs-wasm writes it (SplitV.js), on the in-place slice. */
function makeSplitV(slice: tf.KernelFunc): tf.KernelFunc {
  return (function splitInPlace(args: { inputs: { x: tf.TensorInfo }; attrs: { numOrSizeSplits: number | number[]; axis: number | number[] }; backend: unknown }) {
    const { inputs: { x }, attrs: { numOrSizeSplits, axis }, backend } = args;
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[ax] = s;
      const piece = slice({ inputs: { x }, attrs: { begin: [...begin], size }, backend } as unknown as Parameters<tf.KernelFunc>[0]);
      begin[ax] += s;
      return piece;
    });
  }) as unknown as tf.KernelFunc;
}

function makeIdentity(fallback: tf.KernelFunc): tf.KernelFunc {
  return (function identityShared(args: { inputs: { x: tf.TensorInfo }; backend: unknown }) {
    const { x } = args.inputs;
    if (x.dtype === 'string') return fallback(args as unknown as Parameters<tf.KernelFunc>[0]);
    (args.backend as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }) as unknown as tf.KernelFunc;
}

let installed = false;

/**
 * Replace the slow stock kernels and add the per-head attention's
 * (wasm-attention.ts). Safe to call more than once and before the
 * wasm backend is used; a no-op where tfjs-wasm is not loaded.
 */
export function installWasmKernels(): void {
  if (installed) return;
  const stock = tf.getKernel('Slice', 'wasm');
  if (!stock) return;
  tf.unregisterKernel('Slice', 'wasm');
  const slice = makeSlice(stock.kernelFunc);
  tf.registerKernel({ kernelName: 'Slice', backendName: 'wasm', kernelFunc: slice });
  tf.unregisterKernel('SplitV', 'wasm');
  tf.registerKernel({ kernelName: 'SplitV', backendName: 'wasm', kernelFunc: makeSplitV(slice) });
  const identity = tf.getKernel('Identity', 'wasm')!;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ kernelName: 'Identity', backendName: 'wasm', kernelFunc: makeIdentity(identity.kernelFunc) });
  installWasmAttention();
  installWasmSimd();
  installed = true;
}
