/**
 * Fused WGSL kernels for tfjs-backend-webgpu: LayerNorm with constant g, b;
 * exact GELU; softmax of scaled scores; VPT's prompt slots. Each has a
 * forward and a backward kernel (the prompts two: tokens and prompts), one
 * dispatch each. Attention's products are in webgpu-attention.ts and the
 * linear layers' in webgpu-matmul.ts; all are registered here.
 *
 * Why: a small training step on a real GPU is bound by the host's cost per
 * kernel call (about 50-60 us of tfjs and Dawn work each, measured on an
 * H200), not by the GPU. Written with tfjs ops, one LayerNorm forward and
 * backward is 17 dispatches, GELU 12, the scaled softmax 7 and a layer's
 * prompt slots about 15; fused, a ViT-Ti/16 step goes from about 1 160
 * dispatches to 480 (403 with attention fused), and 89-93 ms to 40-49 ms at
 * batch 8 (before attention was fused). The backward
 * kernels recompute the row statistics (mean, 1/std) and Phi(x) from the
 * saved input instead of keeping them, so they save memory too. The row
 * kernels have a barrier-free variant for software adapters
 * (webgpu-program.ts, serialKernels).
 *
 * The programs follow tfjs-backend-webgpu's program interface (the object
 * `runWebGPUProgram` takes); nothing here imports that package, so the core
 * stays backend-free. The kernels are registered for 'webgpu' only; ops.ts
 * and tuning/vpt.ts use them where they are registered and fall back to the
 * plain tfjs ops everywhere else. Checked against the plain path to 1e-5
 * (tests/unit/node-webgpu.test.ts, on Dawn).
 */
import * as tf from '@tensorflow/tfjs';
import { ATTENTION_KERNELS } from './webgpu-attention';
import { MATMUL_KERNELS } from './webgpu-matmul';
import { type Args, flat, type Program, run, serialKernels, type Uniform } from './webgpu-program';

export const LAYER_NORM = 'VptLayerNorm';
export const LAYER_NORM_GRAD = 'VptLayerNormGrad';
export const LAYER_NORM_GRAD_ADD = 'VptLayerNormGradAdd';
export const GELU = 'VptGelu';
export const GELU_GRAD = 'VptGeluGrad';
export const SCALED_SOFTMAX = 'VptScaledSoftmax';
export const SCALED_SOFTMAX_GRAD = 'VptScaledSoftmaxGrad';
export const PROMPT_SET = 'VptPromptSet';
export const PROMPT_SET_GRAD_X = 'VptPromptSetGradX';
export const PROMPT_SET_GRAD_P = 'VptPromptSetGradP';

/**
 * Tree reductions over the workgroup: a sum of one or two values at once (T is
 * f32 or vec2<f32>), and a maximum. Called from uniform control flow only:
 * every invocation reaches every barrier. With one thread per row they are the
 * value itself, and there are no barriers at all.
 */
const reduceSnippet = (wg: number, T: string) => wg === 1 ? `
  fn rowSum(v : ${T}, tid : i32) -> ${T} { return v; }
  fn rowMax(v : f32, tid : i32) -> f32 { return v; }` : `
  var<workgroup> red : array<${T}, ${wg}>;
  fn rowSum(v : ${T}, tid : i32) -> ${T} {
    red[tid] = v;
    workgroupBarrier();
    for (var s = ${wg / 2}; s > 0; s = s >> 1u) {
      if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
      workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier(); // red is written again by the next call
    return total;
  }
  var<workgroup> redMax : array<f32, ${wg}>;
  fn rowMax(v : f32, tid : i32) -> f32 {
    redMax[tid] = v;
    workgroupBarrier();
    for (var s = ${wg / 2}; s > 0; s = s >> 1u) {
      if (tid < s) { redMax[tid] = max(redMax[tid], redMax[tid + s]); }
      workgroupBarrier();
    }
    let m = redMax[0];
    workgroupBarrier();
    return m;
  }`;

/**
 * One workgroup per row of the last axis (or, with `serial`, one thread per
 * row). The row comes from the global index (tfjs folds a dispatch of more
 * than 65 535 workgroups into 2-D); workgroups past the last row run with an
 * empty row so that they still meet every barrier.
 */
function rowProgram(name: string, names: string[], shape: number[], T: string, body: (wg: number) => string, serial: boolean): Program {
  const cols = shape[shape.length - 1], rows = tf.util.sizeFromShape(shape) / cols;
  // Power-of-two workgroups for the tree sum; wider rows get more threads, as tfjs's own softmax
  // does, and short rows fewer, so that few threads idle.
  const wg = serial ? 1 : cols >= 4096 ? 256 : Math.min(64, Math.max(4, 2 ** Math.ceil(Math.log2(cols))));
  return {
    variableNames: names,
    outputShape: shape,
    shaderKey: `${name}_${wg}`,
    dispatchLayout: flat(shape),
    dispatch: serial ? [Math.ceil(rows / 64), 1, 1] : [rows, 1, 1],
    workgroupSize: [serial ? 64 : wg, 1, 1],
    uniforms: 'eps : f32, scale : f32, rows : i32, cols : i32,',
    getUserCode: () => `${reduceSnippet(wg, T)}
  fn main(index : i32) {
    let tid = ${serial ? '0' : 'i32(localId.x)'};
    let row = index / ${serial ? 1 : wg};
    let cols = uniforms.cols;
    let n = select(0, cols, row < uniforms.rows);
    let base = row * cols;
    let fcols = f32(cols);
    ${body(wg)}
  }`,
  };
}

/** y = (x - mean) / sqrt(var + eps) g + b per row; biased variance, two passes, as torch.nn.LayerNorm. */
const layerNormBody = (wg: number) => `
    var s = 0.0;
    for (var c = tid; c < n; c += i32(${wg})) { s += xIn[base + c]; }
    let mean = rowSum(s, tid) / fcols;
    var q = 0.0;
    for (var c = tid; c < n; c += i32(${wg})) { let d = xIn[base + c] - mean; q += d * d; }
    let r = inverseSqrt(rowSum(q, tid) / fcols + uniforms.eps);
    for (var c = tid; c < n; c += i32(${wg})) {
      result[base + c] = (xIn[base + c] - mean) * r * gamma[c] + beta[c];
    }`;

/**
 * dx = r (dy g - mean(dy g) - x^ mean(dy g x^)), x^ = (x - mean) r, with mean and r recomputed from x;
 * with `add`, plus resIn: a residual stream's gradient summed in, one dispatch instead of two (fused-block.ts).
 */
const layerNormGradBody = (add: boolean) => (wg: number) => `
    var s = 0.0;
    for (var c = tid; c < n; c += i32(${wg})) { s += xIn[base + c]; }
    let mean = rowSum(vec2<f32>(s, 0.0), tid).x / fcols;
    var q = 0.0;
    for (var c = tid; c < n; c += i32(${wg})) { let d = xIn[base + c] - mean; q += d * d; }
    let r = inverseSqrt(rowSum(vec2<f32>(q, 0.0), tid).x / fcols + uniforms.eps);
    var acc = vec2<f32>(0.0, 0.0);
    for (var c = tid; c < n; c += i32(${wg})) {
      let gdy = dyIn[base + c] * gamma[c];
      acc += vec2<f32>(gdy, gdy * (xIn[base + c] - mean) * r);
    }
    let m = rowSum(acc, tid) / fcols;
    for (var c = tid; c < n; c += i32(${wg})) {
      let gdy = dyIn[base + c] * gamma[c];
      result[base + c] = (gdy - m.x - (xIn[base + c] - mean) * r * m.y) * r${add ? ' + resIn[base + c]' : ''};
    }`;

/** softmax(scale z) per row: max, sum of exponentials, write. */
const softmaxBody = (wg: number) => `
    var mx = -3.402823e+38f;
    for (var c = tid; c < n; c += i32(${wg})) { mx = max(mx, zIn[base + c] * uniforms.scale); }
    let top = rowMax(mx, tid);
    var e = 0.0;
    for (var c = tid; c < n; c += i32(${wg})) { e += exp(zIn[base + c] * uniforms.scale - top); }
    let total = rowSum(e, tid);
    for (var c = tid; c < n; c += i32(${wg})) {
      result[base + c] = exp(zIn[base + c] * uniforms.scale - top) / total;
    }`;

/** dz = scale P (dP - rowsum(dP P)). */
const softmaxGradBody = (wg: number) => `
    var s = 0.0;
    for (var c = tid; c < n; c += i32(${wg})) { s += dpIn[base + c] * pIn[base + c]; }
    let dot = rowSum(s, tid);
    for (var c = tid; c < n; c += i32(${wg})) {
      result[base + c] = uniforms.scale * pIn[base + c] * (dpIn[base + c] - dot);
    }`;

const ERF = `
  fn erfApprox(a : f32) -> f32 {
    // Abramowitz and Stegun 7.1.26, with tfjs's constants: the same erf as tfjs's own Erf kernel.
    let t = 1.0 / (1.0 + ${tf.backend_util.ERF_P} * abs(a));
    return sign(a) * (1.0 - (((((${tf.backend_util.ERF_A5} * t + ${tf.backend_util.ERF_A4}) * t) + ${tf.backend_util.ERF_A3}) * t
      + ${tf.backend_util.ERF_A2}) * t + ${tf.backend_util.ERF_A1}) * t * exp(-a * a));
  }`;

/** One invocation per output value; `code` sees `index` (in bounds) and the program's uniforms. */
function elementwise(name: string, names: string[], shape: number[], code: string, uniforms?: string, prelude = ''): Program {
  const wg = 64;
  return {
    variableNames: names,
    outputShape: shape,
    shaderKey: name,
    dispatchLayout: flat(shape),
    dispatch: [Math.ceil(tf.util.sizeFromShape(shape) / wg), 1, 1],
    workgroupSize: [wg, 1, 1],
    size: true,
    uniforms,
    getUserCode: () => `${prelude}
  fn main(index : i32) {
    if (index < uniforms.size) {
      ${code}
    }
  }`,
  };
}

function rowKernel(name: string, names: string[], T: string, body: (wg: number) => string, out: string) {
  return ({ inputs, attrs = {}, backend }: Args): tf.TensorInfo => {
    const ins = names.map((n) => inputs[n]);
    const shape = inputs[out].shape;
    const cols = shape[shape.length - 1];
    const p = rowProgram(name, names, shape, T, body, serialKernels(backend));
    const uniforms: Uniform[] = [
      { type: 'float32', data: [attrs.eps ?? 0] }, { type: 'float32', data: [attrs.scale ?? 1] },
      { type: 'int32', data: [tf.util.sizeFromShape(shape) / cols] }, { type: 'int32', data: [cols] },
    ];
    return run(backend, p, ins, uniforms);
  };
}

function geluKernel(name: string, names: string[], expr: string) {
  const code = `let a = xIn[index];
      let cdf = erfApprox(a * ${Math.SQRT1_2}) * 0.5 + 0.5;
      ${expr}`;
  return ({ inputs, backend }: Args): tf.TensorInfo =>
    run(backend, elementwise(name, names, inputs.xIn.shape, code, undefined, ERF), names.map((n) => inputs[n]));
}

/**
 * VPT's prompt slots: tokens [B, T, d] and every layer's prompts [L, p, d] to
 * [CLS], layer `layer`'s p prompts, then the rest; `insert` (layer 0) puts
 * them before the patch tokens, else they overwrite tokens 1..p. Forward is
 * one kernel where tfjs ops take six (slices, a broadcast, a concat); the
 * gradient to the tokens and to the prompts one each, where the tape takes
 * about nine (a split, pads, a sum over the batch, adds).
 */
const PROMPT_UNIFORMS = 'layer : i32, p : i32, shift : i32, tIn : i32, tOut : i32, d : i32, batch : i32,';
const promptCode = {
  // out [B, tOut, d]
  set: `let c = index % uniforms.d; let t = (index / uniforms.d) % uniforms.tOut; let b = index / (uniforms.d * uniforms.tOut);
      if (t == 0) { result[index] = xIn[b * uniforms.tIn * uniforms.d + c]; }
      else if (t <= uniforms.p) { result[index] = pIn[(uniforms.layer * uniforms.p + t - 1) * uniforms.d + c]; }
      else { result[index] = xIn[(b * uniforms.tIn + t - uniforms.shift) * uniforms.d + c]; }`,
  // out [B, tIn, d]: the tokens' gradient; overwritten slots get none
  gradX: `let c = index % uniforms.d; let t = (index / uniforms.d) % uniforms.tIn; let b = index / (uniforms.d * uniforms.tIn);
      if (uniforms.shift == 0 && t >= 1 && t <= uniforms.p) { result[index] = 0.0; }
      else { let ts = select(t + uniforms.shift, 0, t == 0); result[index] = dyIn[(b * uniforms.tOut + ts) * uniforms.d + c]; }`,
  // out [L, p, d]: the prompts' gradient, summed over the batch, zero for the other layers
  gradP: `let c = index % uniforms.d; let j = (index / uniforms.d) % uniforms.p; let l = index / (uniforms.d * uniforms.p);
      var s = 0.0;
      if (l == uniforms.layer) {
        for (var b = 0; b < uniforms.batch; b++) { s += dyIn[(b * uniforms.tOut + 1 + j) * uniforms.d + c]; }
      }
      result[index] = s;`,
};

/** attrs: layer, insert (0 or 1), L, p (the prompts' shape) and tIn (tokens before the op). */
function promptKernel(name: string, names: string[], code: string, out: 'tokens' | 'x' | 'prompts') {
  return ({ inputs, attrs = {}, backend }: Args): tf.TensorInfo => {
    const { layer, insert, L, p, tIn } = attrs;
    const [B, , d] = inputs[names[0]].shape;
    const shift = insert ? p : 0, tOut = tIn + shift;
    const shape = out === 'tokens' ? [B, tOut, d] : out === 'x' ? [B, tIn, d] : [L, p, d];
    const u: Uniform[] = [layer, p, shift, tIn, tOut, d, B].map((v) => ({ type: 'int32', data: [v] }));
    return run(backend, elementwise(name, names, shape, code, PROMPT_UNIFORMS), names.map((n) => inputs[n]), u);
  };
}

const KERNELS: [string, (a: Args) => tf.TensorInfo][] = [
  [LAYER_NORM, rowKernel(LAYER_NORM, ['xIn', 'gamma', 'beta'], 'f32', layerNormBody, 'xIn')],
  [LAYER_NORM_GRAD, rowKernel(LAYER_NORM_GRAD, ['xIn', 'gamma', 'dyIn'], 'vec2<f32>', layerNormGradBody(false), 'xIn')],
  [LAYER_NORM_GRAD_ADD, rowKernel(LAYER_NORM_GRAD_ADD, ['xIn', 'gamma', 'dyIn', 'resIn'], 'vec2<f32>', layerNormGradBody(true), 'xIn')],
  [SCALED_SOFTMAX, rowKernel(SCALED_SOFTMAX, ['zIn'], 'f32', softmaxBody, 'zIn')],
  [SCALED_SOFTMAX_GRAD, rowKernel(SCALED_SOFTMAX_GRAD, ['pIn', 'dpIn'], 'f32', softmaxGradBody, 'pIn')],
  // x Phi(x); dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
  [GELU, geluKernel(GELU, ['xIn'], 'result[index] = a * cdf;')],
  [GELU_GRAD, geluKernel(GELU_GRAD, ['xIn', 'dyIn'], `result[index] = dyIn[index] * (cdf + a * ${1 / Math.sqrt(2 * Math.PI)} * exp(a * a * -0.5));`)],
  [PROMPT_SET, promptKernel(PROMPT_SET, ['xIn', 'pIn'], promptCode.set, 'tokens')],
  [PROMPT_SET_GRAD_X, promptKernel(PROMPT_SET_GRAD_X, ['dyIn'], promptCode.gradX, 'x')],
  [PROMPT_SET_GRAD_P, promptKernel(PROMPT_SET_GRAD_P, ['dyIn'], promptCode.gradP, 'prompts')],
  ...ATTENTION_KERNELS,
  ...MATMUL_KERNELS,
];

let installed = false;

/** Register the kernels for 'webgpu'. Safe to call more than once, and before or without the backend. */
export function installWebgpuKernels(): void {
  if (installed) return;
  for (const [kernelName, f] of KERNELS) {
    if (!tf.getKernel(kernelName, 'webgpu')) tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: f as unknown as tf.KernelFunc });
  }
  installed = true;
}

/** Whether the fused kernels run on the current backend (and are switched on). */
export function fusedKernels(): boolean {
  return fusedEnabled && tf.getBackend() === 'webgpu' && !!tf.getKernel(LAYER_NORM, 'webgpu');
}

let fusedEnabled = true;

/** Turn the fused kernels off or on (tests and the bench compare both paths); returns the previous setting. */
export function setFusedKernels(on: boolean): boolean {
  const was = fusedEnabled;
  fusedEnabled = on;
  return was;
}

/** Run one of the kernels above through the engine (so tf.profile and tf.memory see it). */
export function runFused(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): tf.Tensor {
  return tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}
