/**
 * Pick the fastest working tfjs backend: WebGPU, then WebGL, then WASM, then
 * CPU, recording why each earlier one was skipped. Runs in the worker.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { installWasmKernels } from '../core/vit/wasm-kernels';
import { installWebgpuKernels } from '../core/vit/webgpu-kernels';
import { installReuse } from '../core/vit/webgpu-reuse';
import { watchWebgpuDevice } from '../core/webgpu-watch';
import type { BackendInfo, BackendName } from './protocol';

const CHAIN: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
  limits: Record<string, number>;
}

async function webgpuProbe(): Promise<{ adapter: string; limits: Record<string, number> }> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu;
  if (!gpu) throw new Error('navigator.gpu is missing (no WebGPU in this browser, or not a secure context)');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('requestAdapter() returned no adapter');
  const i = adapter.info ?? {};
  const name = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unknown adapter';
  const keys = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'];
  const limits: Record<string, number> = {};
  for (const k of keys) if (typeof adapter.limits[k] === 'number') limits[k] = adapter.limits[k];
  return { adapter: name, limits };
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

export async function startBackend(prefer: BackendName | undefined, onDeviceError: (msg: string) => void): Promise<BackendInfo> {
  installWasmKernels();
  installWebgpuKernels();
  setWasmPaths({ 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded });
  const fallbacks: BackendInfo['fallbacks'] = [];
  const order = prefer ? [prefer, ...CHAIN.filter((b) => b !== prefer)] : CHAIN;
  for (const name of order) {
    try {
      let adapter: string | null = null;
      let limits: Record<string, number> = {};
      if (name === 'webgpu') ({ adapter, limits } = await webgpuProbe());
      if (name === 'webgl' && typeof OffscreenCanvas === 'undefined') throw new Error('OffscreenCanvas is missing');
      if (!(await tf.setBackend(name))) throw new Error('tfjs could not initialise it');
      await tf.ready();
      // A tiny op proves the backend really computes.
      const probe = tf.add(tf.tensor1d([1, 2]), 1);
      const v = await probe.data();
      probe.dispose();
      if (v[0] !== 2 || v[1] !== 3) throw new Error('a test computation returned wrong values');
      if (name === 'webgpu') { installReuse(tf.backend()); watchDevice(onDeviceError); }
      return { backend: name, adapter, limits, fallbacks };
    } catch (e) {
      fallbacks.push({ backend: name, reason: e instanceof Error ? e.message : String(e) });
    }
  }
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
