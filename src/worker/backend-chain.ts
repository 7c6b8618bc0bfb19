/**
 * Pick the fastest working tfjs backend: WebGPU, then WebGL, then WASM, then
 * CPU, recording why each earlier one was skipped. A GPU API that is only
 * emulated on the CPU (software-gpu.ts) is tried after WASM, unless asked for
 * by name (`?backend=webgpu`). Runs in the worker.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { installWasmKernels } from '../core/vit/wasm-kernels';
import { simdKind, startWasmSimd, wasmSimdKernels } from '../core/vit/wasm-simd';
import { installWebgpuKernels } from '../core/vit/webgpu-kernels';
import { installReuse } from '../core/vit/webgpu-reuse';
import { watchWebgpuDevice } from '../core/webgpu-watch';
import type { BackendInfo, BackendName } from './protocol';
import { softwareGpu } from './software-gpu';
import { registerWasmThreads, wasmThreadsFailure, type WasmThreadOptions } from './wasm-threads-web';

const CHAIN: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  /** Where browsers had it before `info.isFallbackAdapter`. */
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
}

interface Probe { adapter: string; limits: Record<string, number>; software: boolean }

async function webgpuProbe(): Promise<Probe> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu;
  if (!gpu) throw new Error('navigator.gpu is missing (no WebGPU in this browser, or not a secure context)');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('requestAdapter() returned no adapter');
  const i = adapter.info ?? {};
  const name = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unknown adapter';
  const keys = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'];
  const limits: Record<string, number> = {};
  for (const k of keys) if (typeof adapter.limits[k] === 'number') limits[k] = adapter.limits[k];
  return { adapter: name, limits, software: softwareGpu(name, i.isFallbackAdapter ?? adapter.isFallbackAdapter) };
}

/** The WebGL renderer's name (the unmasked one where the browser gives it), from a throwaway context. */
function webglProbe(): Probe {
  if (typeof OffscreenCanvas === 'undefined') throw new Error('OffscreenCanvas is missing');
  const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
  if (!gl) throw new Error('no WebGL 2 context');
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  const name = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return { adapter: name, limits: {}, software: softwareGpu(name) };
}

/** What the page shows for wasm: its threads, its kernels ("SIMD+FMA": ours, wasm-simd.ts), and why there is only one thread where threads failed. */
function threadsLabel(n: number): string {
  const why = wasmThreadsFailure(), kind = simdKind();
  return `${n} thread${n === 1 ? '' : 's'}${kind ? `, ${kind}` : ''}${why ? ` (the threaded build did not start: ${why})` : ''}`;
}

function watchDevice(onError: (msg: string) => void): void {
  watchWebgpuDevice((f) => onError(f.kind === 'error' ? `WebGPU error: ${f.message}` : `WebGPU device lost: ${f.message}`));
}

/**
 * Whether the current WebGPU device is lost. A readback can fail before the
 * device's `lost` promise has been seen, so ask the promise itself.
 */
export async function webgpuDeviceLost(): Promise<boolean> {
  if (tf.getBackend() !== 'webgpu') return false;
  const dev = (tf.backend() as unknown as { device?: { lost?: Promise<unknown> } }).device;
  if (!dev?.lost) return false;
  return Promise.race([dev.lost.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
}

/**
 * Start the backend afresh after a device loss or out-of-memory: the engine
 * is reset (every tensor and backend instance dropped, factories kept), so the
 * webgpu factory asks for a new device. Callers rebuild their tensors from host data.
 */
export async function restartBackend(onError: (msg: string) => void): Promise<void> {
  const name = tf.getBackend();
  tf.engine().reset();
  if (!(await tf.setBackend(name))) throw new Error(`the ${name} backend could not be restarted`);
  await tf.ready();
  if (name === 'webgpu') { installReuse(tf.backend()); watchDevice(onError); }
}

export async function startBackend(prefer: BackendName | undefined, onDeviceError: (msg: string) => void, wasm: WasmThreadOptions = {}): Promise<BackendInfo> {
  installWasmKernels();
  installWebgpuKernels();
  setWasmPaths({ 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded });
  registerWasmThreads(wasm);
  const fallbacks: BackendInfo['fallbacks'] = [];
  const deferred: BackendName[] = [];
  const attempt = async (name: BackendName, allowSoftware: boolean): Promise<BackendInfo | null> => {
    try {
      const probe = name === 'webgpu' ? await webgpuProbe() : name === 'webgl' ? webglProbe() : null;
      if (probe?.software && !allowSoftware) {
        fallbacks.push({ backend: name, reason: `${probe.adapter} is a software renderer (the GPU emulated on the CPU), where WebAssembly computes several times faster; add ?backend=${name} to the address to use it anyway` });
        deferred.push(name);
        return null;
      }
      if (!(await tf.setBackend(name))) throw new Error('tfjs could not initialise it');
      await tf.ready();
      // A tiny op proves the backend really computes.
      const t = tf.add(tf.tensor1d([1, 2]), 1);
      const v = await t.data();
      t.dispose();
      if (v[0] !== 2 || v[1] !== 3) throw new Error('a test computation returned wrong values');
      if (name === 'webgpu') { installReuse(tf.backend()); watchDevice(onDeviceError); }
      if (name === 'wasm') await startWasmSimd();
      const adapter = name === 'wasm' ? threadsLabel(getThreadsCount()) : probe?.adapter ?? null;
      return { backend: name, adapter, limits: probe?.limits ?? {}, fallbacks: fallbacks.filter((f) => f.backend !== name), simd: wasmSimdKernels() };
    } catch (e) {
      fallbacks.push({ backend: name, reason: e instanceof Error ? e.message : String(e) });
      return null;
    }
  };
  const order = prefer ? [prefer, ...CHAIN.filter((b) => b !== prefer)] : CHAIN;
  for (const name of order) {
    // Emulated GPUs still beat tfjs's plain-JavaScript cpu backend: they come before it.
    if (name === 'cpu') for (const d of deferred.splice(0)) { const got = await attempt(d, true); if (got) return got; }
    const got = await attempt(name, name === prefer);
    if (got) return got;
  }
  for (const d of deferred) { const got = await attempt(d, true); if (got) return got; }
  throw new Error(`no tfjs backend works here: ${fallbacks.map((f) => `${f.backend}: ${f.reason}`).join('; ')}`);
}

/**
 * Compile every shader a graph needs before it runs (tfjs-backend-webgpu's
 * compile-only mode: kernels are built, not executed, so outputs are
 * garbage and nothing may be read or assigned meanwhile). Elsewhere a no-op.
 */
export async function precompileWebgpu(graph: () => void): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  tf.env().set('WEBGPU_ENGINE_COMPILE_ONLY', true);
  try {
    tf.tidy(graph);
  } finally {
    tf.env().set('WEBGPU_ENGINE_COMPILE_ONLY', false);
  }
  await (tf.backend() as unknown as { checkCompileCompletionAsync(): Promise<void> }).checkCompileCompletionAsync();
}
