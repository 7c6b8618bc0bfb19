// Browser side of the bench: start webgpu, then run the shared case.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { runCase, type BenchCase } from './step';

export async function benchWebgpu(bc: BenchCase) {
  if (!(await tf.setBackend('webgpu'))) throw new Error('webgpu backend did not start');
  await tf.ready();
  const gpu = (navigator as unknown as { gpu: { requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string } } | null> } }).gpu;
  const a = await gpu.requestAdapter();
  return { adapter: [a?.info?.vendor, a?.info?.architecture].filter(Boolean).join(' '), result: await runCase(bc) };
}
