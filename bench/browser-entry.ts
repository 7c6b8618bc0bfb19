// Browser side of the bench: start the requested backend, then run the shared case.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { installWasmKernels } from '../src/core/vit/wasm-kernels';
import { simdSummary, startWasmSimd } from '../src/core/vit/wasm-simd';
import { registerWasmThreads } from '../src/worker/wasm-threads-web';
import { installWebgpuKernels } from '../src/core/vit/webgpu-kernels';
import { installReuse } from '../src/core/vit/webgpu-reuse';
import { PRESETS } from '../src/core/vit/config';
import { hostSteps } from './host';
import { runSoak } from './soak';
import { runCase, type BenchCase } from './step';

/**
 * The backend as the studio's worker starts it (backend-chain.ts): webgpu with our fused kernels,
 * wasm with our kernels on every core where the page is cross-origin isolated (here on the page's
 * main thread, not in a worker).
 */
async function start(backend: 'webgpu' | 'webgl' | 'wasm') {
  installWebgpuKernels();
  installWasmKernels();
  if (backend === 'wasm') {
    setWasmPaths({ 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded });
    registerWasmThreads();
  }
  if (!(await tf.setBackend(backend))) throw new Error(`${backend} backend did not start`);
  await tf.ready();
  if (backend === 'webgpu') installReuse(tf.backend());
  if (backend === 'wasm') await startWasmSimd(); // as the studio's engine does (worker/backend-chain.ts)
}

/** The WebGPU adapter's vendor and architecture, e.g. `google swiftshader`. */
async function webgpuAdapter(): Promise<string> {
  const gpu = (navigator as unknown as { gpu: { requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string } } | null> } }).gpu;
  const a = await gpu.requestAdapter();
  return [a?.info?.vendor, a?.info?.architecture].filter(Boolean).join(' ');
}

export async function benchIn(backend: 'webgpu' | 'webgl' | 'wasm', bc: BenchCase) {
  await start(backend);
  let adapter = '';
  if (backend === 'webgpu') {
    adapter = await webgpuAdapter();
  } else if (backend === 'wasm') {
    const n = getThreadsCount();
    adapter = `Chromium worker, ${n} thread${n === 1 ? '' : 's'}`;
  } else {
    const gl = document.createElement('canvas').getContext('webgl2');
    const ext = gl?.getExtension('WEBGL_debug_renderer_info');
    adapter = ext ? String(gl!.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : 'webgl2';
  }
  const result = await runCase(bc);
  // Compact: the table's backend column (e.g. "SIMD+FMA, 1 helper").
  const simd = backend === 'wasm' ? simdSummary(true) : null;
  return { adapter: simd ? `${adapter}, ${simd}` : adapter, result };
}

/** benchIn in a dedicated worker, as the studio runs its engine (bench/browser-worker.ts). */
export function benchInWorker(...args: Parameters<typeof benchIn>): ReturnType<typeof benchIn> {
  const w = new Worker(new URL('./browser-worker.ts', import.meta.url), { type: 'module' });
  return new Promise<Awaited<ReturnType<typeof benchIn>>>((resolve, reject) => {
    w.onmessage = (e) => (e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.ok));
    w.onerror = (e) => reject(new Error(e.message));
    w.postMessage(args);
  }).finally(() => w.terminate());
}

/** Host time of webgpu steps: ViT-Ti/16's 12 layers at 32 px, small enough for SwiftShader to keep up. */
export async function hostIn(rounds: number, block: number) {
  await start('webgpu');
  const ti = PRESETS.find((p) => p.name === 'ViT-Ti/16')!.config;
  return hostSteps(`Chromium, webgpu (${await webgpuAdapter()})`, 'ViT-Ti/16', { ...ti, imageSize: 32 }, 2, rounds, block);
}

export async function soakIn(backend: 'webgpu' | 'webgl') {
  await start(backend);
  return runSoak();
}
