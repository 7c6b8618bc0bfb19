// Browser side of the bench: start the requested GPU backend, then run the shared case.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { installWebgpuKernels } from '../src/core/vit/webgpu-kernels';
import { installReuse } from '../src/core/vit/webgpu-reuse';
import { PRESETS } from '../src/core/vit/config';
import { hostSteps } from './host';
import { runSoak } from './soak';
import { runCase, type BenchCase } from './step';

/** The backend as the studio's worker starts it: on webgpu with our fused kernels (backend-chain.ts). */
async function start(backend: 'webgpu' | 'webgl') {
  installWebgpuKernels();
  if (!(await tf.setBackend(backend))) throw new Error(`${backend} backend did not start`);
  await tf.ready();
  if (backend === 'webgpu') installReuse(tf.backend());
}

/** The WebGPU adapter's vendor and architecture, e.g. `google swiftshader`. */
async function webgpuAdapter(): Promise<string> {
  const gpu = (navigator as unknown as { gpu: { requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string } } | null> } }).gpu;
  const a = await gpu.requestAdapter();
  return [a?.info?.vendor, a?.info?.architecture].filter(Boolean).join(' ');
}

export async function benchIn(backend: 'webgpu' | 'webgl', bc: BenchCase) {
  await start(backend);
  let adapter = '';
  if (backend === 'webgpu') {
    adapter = await webgpuAdapter();
  } else {
    const gl = document.createElement('canvas').getContext('webgl2');
    const ext = gl?.getExtension('WEBGL_debug_renderer_info');
    adapter = ext ? String(gl!.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : 'webgl2';
  }
  return { adapter, result: await runCase(bc) };
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
