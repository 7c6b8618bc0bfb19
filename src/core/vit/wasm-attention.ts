/**
 * Three small kernels for tfjs-backend-wasm that do the per-head attention's
 * bookkeeping in one pass over the wasm heap, so that only its products
 * (XNNPACK) and softmaxes remain tfjs kernels (attention.ts, headwise form).
 *
 * Why: with tfjs ops, each head of each image took three to four strided
 * slices, a scale, and up to three transposes per pass, and the softmax's
 * gradient four more kernels; about 9 000 kernel calls a ViT-Ti/16 step, and
 * tfjs-wasm's transpose and broadcasting kernels are scalar loops (a [207, 207]
 * transpose 130 us, a row-broadcast subtract 60-180 us; bench/profile.ts put
 * the lot at about a fifth of the step). Here:
 * - `VptHeadBlocks` copies column blocks of one image's rows out of a
 *   [rows, cols] tensor, each as is or transposed, optionally scaled: every
 *   operand a head's products need, in the layout XNNPACK takes (2-D, second
 *   operand untransposed), in one kernel;
 * - `VptPlaceBlocks` writes blocks (as is or transposed) into one new
 *   [rows, cols] tensor: the heads' outputs into [B*T, d], their gradients
 *   into [B*T, 3d];
 * - `VptSoftmaxGrad` is the softmax's backward, scaled:
 *   scale * p * (dp - rowsum(dp * p)), and optionally its transpose.
 * All are float32 copies and multiply-adds in JavaScript on views of the heap
 * (the threaded build's heap is shared; the kernels run on the main thread,
 * like tfjs-wasm's own JavaScript-side kernels).
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-wasm's backend object used here. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  getMemoryOffset(dataId: tf.DataId): number;
  wasm: { HEAPU8: Uint8Array };
}

/** A block of one image's rows: columns [col, col + width), copied transposed or not, times scale. */
export interface Block { col: number; width: number; transposed: boolean; scale?: number }

/** Where a block goes: its first row and column in the output ([rows, width], or [width, rows] when transposed). */
export interface Place { row: number; col: number; transposed: boolean }

export const HEAD_BLOCKS = 'VptHeadBlocks';
export const PLACE_BLOCKS = 'VptPlaceBlocks';
export const SOFTMAX_GRAD = 'VptSoftmaxGrad';

/** The whole heap as floats, taken after every output is allocated (allocation may grow, and so detach, the heap). */
const heapOf = (b: WasmBackend) => new Float32Array(b.wasm.HEAPU8.buffer);
const at = (b: WasmBackend, t: tf.TensorInfo) => b.getMemoryOffset(t.dataId) >>> 2;

/**
 * dst[j * rows + r] = s * src[r * stride + j] for r < rows, j < w. Four rows
 * at a time: about twice as fast as one in V8 here (1.6 against 3 ns an element).
 */
function transposeInto(heap: Float32Array, src: number, stride: number, dst: number, rows: number, w: number, s: number): void {
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const f0 = src + r * stride, f1 = f0 + stride, f2 = f1 + stride, f3 = f2 + stride;
    for (let j = 0, t = dst + r; j < w; j++, t += rows) {
      heap[t] = heap[f0 + j] * s; heap[t + 1] = heap[f1 + j] * s; heap[t + 2] = heap[f2 + j] * s; heap[t + 3] = heap[f3 + j] * s;
    }
  }
  for (; r < rows; r++) for (let j = 0, f = src + r * stride, t = dst + r; j < w; j++, t += rows) heap[t] = heap[f + j] * s;
}

function checkFloat(kernel: string, ...ts: tf.TensorInfo[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`${kernel} takes float32 tensors, got ${t.dtype}`);
}

type Args<I, A> = { inputs: I; attrs: A; backend: unknown };

function headBlocks({ inputs: { x }, attrs: { row0, rows, blocks }, backend }: Args<{ x: tf.TensorInfo }, { row0: number; rows: number; blocks: Block[] }>): tf.TensorInfo[] {
  checkFloat(HEAD_BLOCKS, x);
  const [R, C] = x.shape;
  if (x.shape.length !== 2 || row0 < 0 || row0 + rows > R) throw new Error(`${HEAD_BLOCKS}: rows ${row0}..${row0 + rows} outside [${x.shape}]`);
  for (const k of blocks) if (k.col < 0 || k.col + k.width > C) throw new Error(`${HEAD_BLOCKS}: columns ${k.col}..${k.col + k.width} outside [${x.shape}]`);
  const b = backend as WasmBackend;
  const outs = blocks.map((k) => b.makeOutput(k.transposed ? [k.width, rows] : [rows, k.width], 'float32'));
  const heap = heapOf(b), src = at(b, x);
  blocks.forEach((k, i) => {
    const dst = at(b, outs[i]), w = k.width, s = k.scale ?? 1, from = src + row0 * C + k.col;
    if (k.transposed) transposeInto(heap, from, C, dst, rows, w, s);
    else {
      for (let r = 0; r < rows; r++) {
        const f = from + r * C, to = dst + r * w;
        if (s === 1) heap.copyWithin(to, f, f + w);
        else for (let j = 0; j < w; j++) heap[to + j] = heap[f + j] * s;
      }
    }
  });
  return outs;
}

function placeBlocks({ inputs, attrs: { shape, places }, backend }: Args<Record<string, tf.TensorInfo>, { shape: [number, number]; places: Place[] }>): tf.TensorInfo {
  const blocks = places.map((_, i) => inputs[`x${i}`]);
  checkFloat(PLACE_BLOCKS, ...blocks);
  const [R, C] = shape;
  let covered = 0;
  places.forEach((p, i) => {
    const [a, c] = blocks[i].shape, rows = p.transposed ? c : a, w = p.transposed ? a : c;
    if (p.row < 0 || p.row + rows > R || p.col < 0 || p.col + w > C) throw new Error(`${PLACE_BLOCKS}: a [${blocks[i].shape}] block at (${p.row}, ${p.col}) is outside [${shape}]`);
    covered += rows * w;
  });
  // The output is not cleared: the blocks must tile it (overlaps would show as too much coverage).
  if (covered !== R * C) throw new Error(`${PLACE_BLOCKS}: blocks cover ${covered} of ${R * C} elements`);
  const b = backend as WasmBackend;
  const out = b.makeOutput([R, C], 'float32');
  const heap = heapOf(b), dst = at(b, out);
  places.forEach((p, i) => {
    const src = at(b, blocks[i]);
    if (!p.transposed) {
      const [rows, w] = blocks[i].shape;
      for (let r = 0; r < rows; r++) heap.copyWithin(dst + (p.row + r) * C + p.col, src + r * w, src + (r + 1) * w);
    } else {
      const [w, rows] = blocks[i].shape;
      for (let r = 0; r < rows; r++) {
        const to = dst + (p.row + r) * C + p.col;
        for (let j = 0, from = src + r; j < w; j++, from += rows) heap[to + j] = heap[from];
      }
    }
  });
  return out;
}

function softmaxGrad({ inputs: { p, dp }, attrs: { scale, transposed }, backend }: Args<{ p: tf.TensorInfo; dp: tf.TensorInfo }, { scale: number; transposed: boolean }>): tf.TensorInfo[] {
  checkFloat(SOFTMAX_GRAD, p, dp);
  if (p.shape.length !== 2 || p.shape[0] !== p.shape[1] || !tf.util.arraysEqual(p.shape, dp.shape)) throw new Error(`${SOFTMAX_GRAD}: shapes [${p.shape}] and [${dp.shape}] differ or are not square`);
  const b = backend as WasmBackend;
  const out = b.makeOutput(p.shape, 'float32'), outT = transposed ? b.makeOutput(p.shape, 'float32') : null;
  const heap = heapOf(b), P = at(b, p), D = at(b, dp), O = at(b, out);
  const n = p.shape[0];
  // Four columns a step (four partial sums): 1.5x faster in V8 here than one (124-175 against 215-254 us for 207 x 207).
  for (let r = 0; r < n; r++) {
    const pr = P + r * n, dr = D + r * n, or = O + r * n;
    let d0 = 0, d1 = 0, d2 = 0, d3 = 0, j = 0;
    for (; j + 4 <= n; j += 4) {
      d0 += heap[dr + j] * heap[pr + j]; d1 += heap[dr + j + 1] * heap[pr + j + 1];
      d2 += heap[dr + j + 2] * heap[pr + j + 2]; d3 += heap[dr + j + 3] * heap[pr + j + 3];
    }
    for (; j < n; j++) d0 += heap[dr + j] * heap[pr + j];
    const dot = d0 + d1 + d2 + d3;
    for (j = 0; j + 4 <= n; j += 4) {
      heap[or + j] = scale * heap[pr + j] * (heap[dr + j] - dot); heap[or + j + 1] = scale * heap[pr + j + 1] * (heap[dr + j + 1] - dot);
      heap[or + j + 2] = scale * heap[pr + j + 2] * (heap[dr + j + 2] - dot); heap[or + j + 3] = scale * heap[pr + j + 3] * (heap[dr + j + 3] - dot);
    }
    for (; j < n; j++) heap[or + j] = scale * heap[pr + j] * (heap[dr + j] - dot);
  }
  if (!outT) return [out];
  transposeInto(heap, O, n, at(b, outT), n, n, 1);
  return [out, outT];
}

let installed = false;

/** Register the three kernels for wasm (once; harmless before wasm has started). */
export function installWasmAttention(): void {
  if (installed) return;
  const k = (kernelName: string, kernelFunc: unknown) => tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc });
  k(HEAD_BLOCKS, headBlocks);
  k(PLACE_BLOCKS, placeBlocks);
  k(SOFTMAX_GRAD, softmaxGrad);
  installed = true;
}

/** `blocks` of rows [row0, row0 + rows) of x, in order. */
export function headBlocksOf(x: tf.Tensor2D, row0: number, rows: number, blocks: Block[]): tf.Tensor2D[] {
  return tf.engine().runKernel(HEAD_BLOCKS, { x }, { row0, rows, blocks } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor2D[];
}

/** A new [R, C] tensor tiled by `blocks` at `places`. */
export function placeBlocksOf(blocks: tf.Tensor2D[], places: Place[], shape: [number, number]): tf.Tensor2D {
  const inputs = Object.fromEntries(blocks.map((t, i) => [`x${i}`, t]));
  return tf.engine().runKernel(PLACE_BLOCKS, inputs, { shape, places } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/**
 * scale * p * (dp - rowsum(dp * p)): the gradient of softmax's (square) input,
 * times scale; with `transposed`, also its transpose.
 */
export function softmaxGradOf(p: tf.Tensor2D, dp: tf.Tensor2D, scale: number, transposed = false): tf.Tensor2D[] {
  return tf.engine().runKernel(SOFTMAX_GRAD, { p, dp }, { scale, transposed }) as unknown as tf.Tensor2D[];
}
