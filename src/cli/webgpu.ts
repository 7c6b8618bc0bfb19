/**
 * WebGPU in Node: Dawn (the WebGPU implementation inside Chromium) through the
 * optional `webgpu` package, which ships a prebuilt `dawn.node` and drives the
 * machine's Vulkan driver. With it the CLI trains on the same tfjs webgpu
 * backend, and the same shaders, as the studio in the browser, on a real GPU.
 */
import * as tf from '@tensorflow/tfjs';
import { watchWebgpuDevice } from '../core/webgpu-watch';

interface DawnAdapter { info?: { vendor?: string; architecture?: string; description?: string; device?: string } }
interface DawnGpu { requestAdapter(o?: { powerPreference?: string }): Promise<DawnAdapter | null> }
interface DawnModule { create(flags: string[]): DawnGpu; globals: Record<string, unknown> }

let adapterLabel = '';

/** What the webgpu backend runs on, e.g. `nvidia-h200` or `google swiftshader`; empty before `startNodeWebGPU`. */
export function webgpuAdapter(): string {
  return adapterLabel;
}

/**
 * Makes `navigator.gpu` Dawn's and registers tfjs's webgpu backend, which
 * only registers itself when it finds `navigator.gpu` at import. Throws an
 * error that says what is missing: the package, or a Vulkan driver.
 */
export async function startNodeWebGPU(): Promise<string> {
  if (adapterLabel && tf.findBackend('webgpu')) return adapterLabel;
  let dawn: DawnModule;
  try {
    dawn = (await import(/* @vite-ignore */ 'webgpu' as string)) as DawnModule;
  } catch (e) {
    throw new Error(`the webgpu backend in Node needs the optional package "webgpu" (Dawn), which did not load: ${(e as Error).message.split('\n')[0]}; install it with \`npm install webgpu\`, or use --backend wasm`);
  }
  // VPT_DAWN_FLAGS: Dawn's own options, comma-separated, e.g. `backend=vulkan` or `adapter=NVIDIA`;
  // the bench's --host mode uses `backend=null`, an adapter that validates every call and runs nothing.
  const gpu = dawn.create((process.env.VPT_DAWN_FLAGS ?? '').split(',').filter(Boolean));
  // tfjs's webgpu backend reads GPUBufferUsage, GPUMapMode and friends as globals, as in a browser.
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter: Dawn found no usable Vulkan driver (it needs libvulkan.so.1 and a GPU driver; VK_ICD_FILENAMES picks one), use --backend wasm');
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  // Node 20 has no navigator; Node 21+ has one without gpu.
  if (!g.navigator) g.navigator = {};
  Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!tf.findBackendFactory('webgpu')) throw new Error('tfjs did not register its webgpu backend (it was loaded before navigator.gpu existed)');
  const i = adapter.info ?? {};
  // NVIDIA's driver reports vendor "nvidia", no architecture, device "nvidia-h200"; SwiftShader "google", "swiftshader".
  adapterLabel = (i.architecture ? `${i.vendor ?? ''} ${i.architecture}`.trim() : i.device || i.vendor) || i.description || 'unknown adapter';
  return adapterLabel;
}

/** Stop on a GPU fault with the GPU's own words (src/core/webgpu-watch.ts says why a listener is needed). */
export function watchNodeDevice(onError: (message: string) => void): void {
  watchWebgpuDevice((f) => onError(f.kind === 'error'
    ? `the GPU reported an error: ${f.message.split('\n')[0]}`
    : `the GPU device was lost: ${f.message || 'no reason given'}`));
}
