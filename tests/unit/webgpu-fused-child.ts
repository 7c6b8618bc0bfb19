// Child process for node-webgpu.test.ts (Dawn needs its Vulkan environment when the process starts):
// the fused WGSL kernels against the plain tfjs ops on the same webgpu backend, forward and gradient,
// then a whole VPT-deep gradient on the fixture backbone both ways. Prints one JSON object.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/cli/backend';
import { nchwToNhwc } from '../../src/core/image/layout';
import { Rng } from '../../src/core/train/rng';
import { activationBytesPerImage } from '../../src/core/train/memory';
import { batchGradients, forwardOf, vptGradients, type HostBatch } from '../../src/core/train/step';
import { disposeVars as disposeTuned, initState, makeVars } from '../../src/core/tuning/params';
import { parseSpec, protocolOf } from '../../src/core/tuning/registry';
import { disposeVars, initVpt, promptHook, toVars } from '../../src/core/tuning/vpt';
import { loadBackbone } from '../../src/core/vit/load';
import { FrozenViT } from '../../src/core/vit/model';
import { setFusedBlocks } from '../../src/core/vit/fused-block';
import { batchedAttention, fusedAttention } from '../../src/core/vit/attention';
import { ATTENTION_DQKV, setAttentionLoads } from '../../src/core/vit/webgpu-attention';
import { FrozenLinear, frozenLayerNorm, gelu, plainFrozenLayerNorm, plainGelu, scaledSoftmax } from '../../src/core/vit/ops';
import { setMatmulTiling, type Tiling } from '../../src/core/vit/webgpu-matmul';
import { fusedKernels, runFused, setFusedKernels } from '../../src/core/vit/webgpu-kernels';
import { setSerialKernels } from '../../src/core/vit/webgpu-program';
import { reuseStats, setReuse } from '../../src/core/vit/webgpu-reuse';
import { readSafetensors } from '../../src/core/io/safetensors';
import { maxRelErr as relErr } from './rel-err';

await useBackend('webgpu');
const out: Record<string, unknown> = { fused: fusedKernels() };


/** Value and input gradient of sum(f(x) w), for a fixed random w. */
async function valueAndGrad(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, w: tf.Tensor) {
  const { value, grad } = tf.valueAndGrad((xx: tf.Tensor) => tf.sum(tf.mul(f(xx), w)))(x);
  const y = tf.tidy(() => f(x));
  const r = { y: await y.data(), dx: await grad.data(), loss: (await value.data())[0] };
  tf.dispose([value, grad, y]);
  return r;
}

/**
 * The fused op on webgpu against the plain one on cpu: the largest relative error of the value and
 * of the gradient. The reference runs on cpu because tfjs's own webgpu Softmax writes out of bounds
 * past 65 535 rows (the last value comes out wrong), which the fused kernel must not copy.
 */
type Op = (x: tf.Tensor, ...params: tf.Tensor[]) => tf.Tensor;
async function compare(name: string, fused: Op, plain: Op, shape: number[], spread = 2, params: Float32Array[] = []) {
  const host = tf.tidy(() => [tf.mul(tf.randomNormal(shape, 0.3, 1, 'float32', 7), spread), tf.randomNormal(shape, 0, 1, 'float32', 8)]);
  const [xs, ws] = await Promise.all(host.map((t) => t.data()));
  tf.dispose(host);
  const x = tf.tensor(xs, shape), w = tf.tensor(ws, shape), p = params.map((v) => tf.tensor1d(v));
  const before = tf.memory().numTensors;
  const profile = await tf.profile(async () => { await valueAndGrad((xx) => fused(xx, ...p), x, w); });
  const a = await valueAndGrad((xx) => fused(xx, ...p), x, w);
  const leaked = tf.memory().numTensors - before;
  tf.dispose([x, w, ...p]);
  await tf.setBackend('cpu');
  const xc = tf.tensor(xs, shape), wc = tf.tensor(ws, shape), pc = params.map((v) => tf.tensor1d(v));
  const b = await valueAndGrad((xx) => plain(xx, ...pc), xc, wc);
  tf.dispose([xc, wc, ...pc]);
  await tf.setBackend('webgpu');
  out[name] = { value: relErr(a.y, b.y), grad: relErr(a.dx, b.dx), kernels: profile.kernelNames.filter((k) => k.startsWith('Vpt')), leaked };
}

/** Attention from the fused [B*T, 3d] projection: the fused kernels against the batched tfjs ops on cpu. */
async function compareAttention(B: number, H: number, T: number, hd: number, variant: string) {
  const d = H * hd;
  const host = tf.tidy(() => [tf.randomNormal([B * T, 3 * d], 0, 1, 'float32', 21), tf.randomNormal([B * T, d], 0, 1, 'float32', 22)]);
  const [xs, ws] = await Promise.all(host.map((t) => t.data()));
  tf.dispose(host);
  const run = async (f: (q: tf.Tensor2D, B: number, H: number) => tf.Tensor2D) => {
    const x = tf.tensor2d(xs as Float32Array, [B * T, 3 * d]), w = tf.tensor2d(ws as Float32Array, [B * T, d]);
    const before = tf.memory().numTensors;
    const g = (xx: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor2D, B, H), w));
    const profile = await tf.profile(async () => { tf.grad(g)(x).dispose(); });
    const dx = tf.grad(g)(x), y = tf.tidy(() => f(x, B, H));
    const r = { y: await y.data(), dx: await dx.data(), kernels: profile.kernelNames.filter((k) => k.startsWith('Vpt')) };
    tf.dispose([dx, y]);
    const leaked = tf.memory().numTensors - before;
    tf.dispose([x, w]);
    return { ...r, leaked };
  };
  const a = await run(fusedAttention);
  await tf.setBackend('cpu');
  const b = await run(batchedAttention);
  await tf.setBackend('webgpu');
  out[`attention ${B}x${H}x${T}x${hd} ${variant}`] = { value: relErr(a.y, b.y), grad: relErr(a.dx, b.dx), kernels: a.kernels, leaked: a.leaked };
}
/**
 * The bench's one-part dispatch of the three-gradient kernel (attrs.part, bench/attention-gpu.ts)
 * writes exactly that part's columns of the whole: the largest difference there, over the parts.
 */
async function compareParts(B: number, H: number, T: number, hd: number, variant: string) {
  // Inputs of their own per variant: a pooled buffer from another call's whole result must not pass for this one's.
  const d = H * hd, attrs = { B, H }, seed = ({ serial: 41, tiled: 51 } as Record<string, number>)[variant] ?? 61;
  const ins = tf.tidy(() => ({ dsIn: tf.randomNormal([B, H, T, T], 0, 1, 'float32', seed), pIn: tf.randomUniform([B, H, T, T], 0, 1, 'float32', seed + 1), qkvIn: tf.randomNormal([B * T, 3 * d], 0, 1, 'float32', seed + 2), doIn: tf.randomNormal([B * T, d], 0, 1, 'float32', seed + 3) }));
  const all = runFused(ATTENTION_DQKV, ins, attrs);
  let diff = 0;
  for (let part = 0; part < 3; part++) {
    const one = runFused(ATTENTION_DQKV, ins, { ...attrs, part });
    const [a, b] = tf.tidy(() => [tf.slice(all, [0, part * d], [B * T, d]), tf.slice(one, [0, part * d], [B * T, d])]);
    diff = Math.max(diff, relErr(await a.data(), await b.data()));
    tf.dispose([one, a, b]);
  }
  tf.dispose([all, ...Object.values(ins)]);
  (out.parts as Record<string, number>)[variant] = diff;
}
out.parts = {};
const eps = 1e-6;
// Both variants of the row and attention kernels: SwiftShader picks the barrier-free ("serial")
// ones by itself, real GPUs the workgroup ones ("tiled"), forced here.
const wasLoads = setAttentionLoads('direct');
for (const serial of [true, false]) {
  setSerialKernels(serial);
  const v = serial ? 'serial' : 'tiled';
  // The last shape has more than 65 535 rows: tfjs folds such a dispatch into 2-D.
  for (const shape of [[3, 17, 48], [2, 5, 200], [66000, 4]]) {
    const n = shape[shape.length - 1];
    const g = Float32Array.from({ length: n }, (_, i) => 1 + 0.3 * Math.sin(i)), b = Float32Array.from({ length: n }, (_, i) => 0.2 * Math.cos(3 * i));
    const ln = (f: typeof frozenLayerNorm): Op => (x, gg, bb) => f(x, gg as tf.Tensor1D, bb as tf.Tensor1D, eps);
    await compare(`layerNorm ${shape.join('x')} ${v}`, ln(frozenLayerNorm), ln(plainFrozenLayerNorm), shape, 2, [g, b]);
  }
  const plainSoftmax = (s: number) => (x: tf.Tensor) => tf.softmax(tf.mul(x, s));
  for (const [shape, s] of [[[2, 3, 19, 19], 0.125], [[4, 300], 0.5], [[66000, 3], 0.25]] as const) {
    await compare(`scaledSoftmax ${shape.join('x')} ${v}`, (x) => scaledSoftmax(x, s), plainSoftmax(s), [...shape], 4);
  }
  // Rows and columns that fill no tile (T < 32), and ones that leave a part tile in every direction.
  await compareAttention(2, 3, 19, 8, v);
  await compareAttention(3, 4, 70, 33, v);
  await compareParts(3, 4, 70, 33, v);
}
// The tiled attention with its tiles' loads staged through registers (the default; above, 'direct'), on
// shapes whose k runs over one tile, part of one, and several with a part tile last (T = 70: 32 + 32 + 6).
setSerialKernels(false);
setAttentionLoads('staged');
await compareAttention(2, 3, 19, 8, 'staged');
await compareAttention(3, 4, 70, 33, 'staged');
await compareParts(3, 4, 70, 33, 'staged');
setAttentionLoads(wasLoads);
setSerialKernels(null);
await compare('gelu 5x333', gelu, plainGelu, [5, 333], 3);

/**
 * A frozen linear layer x W + b, value and input gradient (dy W^T), on our tiled matmul (the tile
 * forced: SwiftShader keeps tfjs's by itself) against tfjs's ops on cpu.
 */
async function compareLinear(M: number, K: number, N: number, tile: Tiling) {
  const host = tf.tidy(() => [tf.randomNormal([M, K], 0, 1, 'float32', 31), tf.randomNormal([K, N], 0, 1, 'float32', 32), tf.randomNormal([N], 0, 1, 'float32', 33), tf.randomNormal([M, N], 0, 1, 'float32', 34)]);
  const [xs, ws, bs, gs] = await Promise.all(host.map((t) => t.data()));
  tf.dispose(host);
  const run = async () => {
    const x = tf.tensor2d(xs as Float32Array, [M, K]), w = tf.tensor2d(ws as Float32Array, [K, N]), b = tf.tensor1d(bs as Float32Array), g = tf.tensor2d(gs as Float32Array, [M, N]);
    const layer = new FrozenLinear(w, b);
    layer.transposed(); // made once and kept by the layer, so made before counting
    const before = tf.memory().numTensors;
    const f = (xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx as tf.Tensor2D), g));
    const profile = await tf.profile(async () => { tf.grad(f)(x).dispose(); });
    const dx = tf.grad(f)(x), y = tf.tidy(() => layer.apply(x));
    // Every call (kernelNames lists each name once).
    const r = { y: await y.data(), dx: await dx.data(), kernels: profile.kernels.map((k) => k.name).filter((k) => k.startsWith('Vpt')) };
    tf.dispose([dx, y]);
    const leaked = tf.memory().numTensors - before;
    layer.dispose();
    tf.dispose([x, g]);
    return { ...r, leaked };
  };
  const was = setMatmulTiling(tile);
  const a = await run();
  setMatmulTiling(was);
  await tf.setBackend('cpu');
  const b = await run();
  await tf.setBackend('webgpu');
  out[`linear ${M}x${K}x${N} tile ${tile}`] = { value: relErr(a.y, b.y), grad: relErr(a.dx, b.dx), kernels: a.kernels, leaked: a.leaked };
}
// Part tiles in every direction, K not a multiple of the 16-deep k step; then several whole tiles.
for (const tile of [64, 128] as const) {
  await compareLinear(70, 36, 44, tile);
  await compareLinear(300, 52, 136, tile);
}

/** VPT's prompt insert (layer 0) and overwrite (later layers): value and the gradients to tokens and prompts. */
async function comparePrompts(name: string, B: number, T: number, L: number, p: number, d: number, layer: number) {
  const Tout = layer === 0 ? T + p : T;
  const host = tf.tidy(() => [tf.randomNormal([B, T, d], 0, 1, 'float32', 11), tf.randomNormal([L, p, d], 0, 1, 'float32', 12), tf.randomNormal([B, Tout, d], 0, 1, 'float32', 13)]);
  const [xs, ps, ws] = await Promise.all(host.map((t) => t.data()));
  tf.dispose(host);
  const run = async () => {
    const x = tf.tensor3d(xs as Float32Array, [B, T, d]), P = tf.tensor3d(ps as Float32Array, [L, p, d]), w = tf.tensor3d(ws as Float32Array, [B, Tout, d]);
    const before = tf.memory().numTensors;
    const f = (xx: tf.Tensor, pp: tf.Tensor) => promptHook(pp)(xx as tf.Tensor3D, layer);
    const profile = await tf.profile(async () => { tf.dispose(tf.grads((xx: tf.Tensor, pp: tf.Tensor) => tf.sum(tf.mul(f(xx, pp), w)))([x, P])); });
    const [gx, gp] = tf.grads((xx: tf.Tensor, pp: tf.Tensor) => tf.sum(tf.mul(f(xx, pp), w)))([x, P]);
    const y = tf.tidy(() => f(x, P));
    const r = { y: await y.data(), gx: await gx.data(), gp: await gp.data(), kernels: profile.kernelNames.filter((k) => k.startsWith('Vpt')) };
    tf.dispose([gx, gp, y]);
    const leaked = tf.memory().numTensors - before;
    tf.dispose([x, P, w]);
    return { ...r, leaked };
  };
  const a = await run();
  await tf.setBackend('cpu');
  const b = await run();
  await tf.setBackend('webgpu');
  out[name] = { value: relErr(a.y, b.y), grad: Math.max(relErr(a.gx, b.gx), relErr(a.gp, b.gp)), kernels: a.kernels, leaked: a.leaked };
}
await comparePrompts('prompts insert 3x5x6', 3, 5, 4, 2, 6, 0);
await comparePrompts('prompts overwrite 3x7x6', 3, 7, 4, 2, 6, 2);

// A whole VPT-deep gradient on the fixture's tiny random ViT, fused and plain, and the official one.
const FIX = resolve(import.meta.dirname, '../../../shared/fixtures/vpt-reference');
const bb = await loadBackbone({ name: join(FIX, 'backbone.npz'), bytes: readFileSync(join(FIX, 'backbone.npz')) });
const model = new FrozenViT(bb.weights);
model.prepareBackward();
const cases = readSafetensors(readFileSync(join(FIX, 'case.safetensors')), 'case.safetensors').tensors;
const img = cases.get('input.images_nchw')!;
const [B, C, H, W] = img.shape;
const batch: HostBatch = {
  inputs: nchwToNhwc(img.data as Float32Array, B, C, H, W), rowShape: [H, W, C], labels: Int32Array.from(cases.get('input.labels')!.data),
  weights: new Float32Array(B).fill(1), size: B,
};
const vars = toVars(initVpt(bb.weights.config, 'deep', 4, 5, new Rng(1)));
const grads = async () => {
  const r = vptGradients(model, vars, batch, { microBatch: B, promptDropout: 0, rng: new Rng(0) });
  const v = { loss: await r.loss.data(), prompts: await r.grads.get('prompts')!.data() };
  r.loss.dispose(); r.correct.dispose(); r.grads.forEach((g) => g.dispose());
  return v;
};
const before = tf.memory().numTensors;
const f = await grads();
setFusedKernels(false);
const p = await grads();
setFusedKernels(true);
out.model = { loss: relErr(f.loss, p.loss), prompts: relErr(f.prompts, p.prompts), leaked: tf.memory().numTensors - before };
// Frozen blocks as one gradient node each (src/core/vit/fused-block.ts, the default above) against the
// same kernels on the tape, one node per op: the same answer, with the residual adds in the LayerNorm gradients.
// Both variants of the LayerNorm gradient: SwiftShader's own (one thread a row, as `f` ran) and a GPU's.
const blockProfile = await tf.profile(async () => { await grads(); });
setFusedBlocks(false);
const taped = await grads();
setSerialKernels(false);
const tapedTiled = await grads();
setFusedBlocks(true);
const tiled = await grads();
setSerialKernels(null);
out.blocks = {
  loss: Math.max(relErr(f.loss, taped.loss), relErr(tiled.loss, tapedTiled.loss)), prompts: Math.max(relErr(f.prompts, taped.prompts), relErr(tiled.prompts, tapedTiled.prompts)),
  gradAdds: blockProfile.kernels.filter((k) => k.name === 'VptLayerNormGradAdd').length, layers: bb.weights.config.numLayers,
};
// The same with every linear layer on our tiled matmul (d = 48: K and N are multiples of 4).
setMatmulTiling(64);
const tiledProfile = await tf.profile(async () => { await grads(); });
const t = await grads();
setMatmulTiling('auto');
out.modelTiled = { loss: relErr(t.loss, p.loss), prompts: relErr(t.prompts, p.prompts), matmuls: tiledProfile.kernels.filter((k) => k.name === 'VptMatMul').length, layers: bb.weights.config.numLayers, leaked: tf.memory().numTensors - before };
// Bind groups and uniform buffers reused from step to step (src/core/vit/webgpu-reuse.ts), against fresh ones.
const reused0 = reuseStats(tf.backend())?.reused ?? 0;
const again = await grads();
setReuse(false);
const fresh = await grads();
setReuse(true);
const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));
out.reuse = { reused: (reuseStats(tf.backend())?.reused ?? 0) - reused0, identical: same(again.loss, fresh.loss) && same(again.prompts, fresh.prompts) && same(again.prompts, f.prompts) };
disposeVars(vars);
model.dispose();

// The planner's fused-path estimate against the measured peak per image: tiny-vit-mnist, VPT-deep p = 10.
const TINY = resolve(import.meta.dirname, '../../../shared/models/tiny-vit-mnist');
const tiny = await loadBackbone({ name: 'model.safetensors', bytes: readFileSync(join(TINY, 'model.safetensors')), config: JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')) });
const tm = new FrozenViT(tiny.weights);
tm.prepareBackward();
const spec = parseSpec('vpt-deep-10'), proto = protocolOf(spec.name), n = 2, S = tiny.weights.config.imageSize;
out.memory = [];
for (const recompute of [false, true]) {
  const tv = makeVars(proto, initState(proto, tiny.weights, spec, 3, new Rng(1)), tiny.weights.config);
  const b: HostBatch = { inputs: Float32Array.from({ length: n * S * S * 3 }, (_, i) => Math.sin(i)), rowShape: [S, S, 3], labels: Int32Array.from({ length: n }, (_, i) => i % 3), weights: new Float32Array(n).fill(1), size: n };
  const base = tf.memory().numBytes;
  const prof = await tf.profile(() => { const r = batchGradients(forwardOf(tm, proto, tv, { recompute }), tv, b, n); return [r.loss, r.correct, ...r.grads.values()]; });
  tf.dispose(prof.result as tf.Tensor[]);
  (out.memory as unknown[]).push({ recompute, measured: (prof.peakBytes - base) / n, estimate: activationBytesPerImage(tiny.weights.config, 10, recompute, 'fused') });
  disposeTuned(tv);
}
tm.dispose();
console.log(JSON.stringify(out));
