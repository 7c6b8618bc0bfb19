/** tfjs backend for Node: wasm (fast, default) or cpu (reference). */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../core/vit/wasm-kernels';

export type NodeBackend = 'wasm' | 'cpu';

export async function useBackend(name: NodeBackend): Promise<string> {
  // tfjs prints a hint about tfjs-node on first use; it is noise on a CLI's stderr.
  installWasmKernels();
  const warn = console.warn;
  console.warn = () => {};
  try {
    if (!(await tf.setBackend(name))) throw new Error(`could not start the ${name} backend`);
    await tf.ready();
  } finally {
    console.warn = warn;
  }
  return tf.getBackend();
}
