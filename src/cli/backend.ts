/** tfjs backend for Node: wasm (default; every core), webgpu (a real GPU through Dawn, when installed) or cpu (reference). */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../core/vit/wasm-kernels';
import { relaxedSimdValidates, startWasmSimd } from '../core/vit/wasm-simd';
import { installWebgpuKernels } from '../core/vit/webgpu-kernels';
import { installReuse } from '../core/vit/webgpu-reuse';
import { setFlagsFromString } from 'node:v8';
import { startNodeWebGPU, watchNodeDevice, webgpuAdapter } from './webgpu';
import { defaultWasmThreads, MAX_WASM_THREADS, setWasmThreads, wasmThreads } from './wasm-threads';

export type NodeBackend = 'wasm' | 'cpu' | 'webgpu';

// WebAssembly relaxed SIMD: its fused multiply-add doubles our wasm kernels' products (wasm-simd.ts). On by
// default from V8 11.4 (Chrome 114, Node 22); Node 20's V8 has it complete behind this flag, read when a
// module is compiled, so setting it now (before any) is enough. Only where it is off: a V8 that no longer
// knows the flag would print an error for it. Where it stays off, the plain SIMD build runs.
if (!relaxedSimdValidates()) setFlagsFromString('--experimental-wasm-relaxed-simd');

/**
 * Starts `name`. For wasm, `threads` is how many cores XNNPACK computes on:
 * the `VPT_THREADS` environment variable when not given, else every core (up
 * to MAX_WASM_THREADS). The count is fixed once wasm has started in this process; asking for
 * another one restarts the backend, which disposes its tensors.
 */
export async function useBackend(name: NodeBackend, threads?: number): Promise<string> {
  // tfjs prints a hint about tfjs-node on first use; it is noise on a CLI's stderr.
  installWasmKernels();
  installWebgpuKernels();
  const n = name === 'wasm' ? resolveThreads(threads) : 1;
  if (name === 'wasm') setWasmThreads(n);
  if (name === 'webgpu') await startNodeWebGPU();
  const warn = console.warn;
  const said: string[] = [];
  console.warn = (...a: unknown[]) => { said.push(a.map(String).join(' ')); };
  try {
    if (!(await tf.setBackend(name))) {
      // The threaded build needs worker threads and a temporary file for their script; where
      // that fails, one thread still trains.
      if (name !== 'wasm' || n === 1) throw new Error(`could not start the ${name} backend (${said.at(-1) ?? 'no reason given'})`);
      process.stderr.write(`warning: wasm could not start on ${n} threads (${said.at(-1)?.split('\n')[0] ?? 'no reason given'}); computing on one\n`);
      setWasmThreads(1);
      if (!(await tf.setBackend(name))) throw new Error(`could not start the ${name} backend (${said.at(-1) ?? 'no reason given'})`);
    }
    await tf.ready();
    if (name === 'wasm') await startWasmSimd();
    if (name === 'webgpu') {
      installReuse(tf.backend());
      watchNodeDevice((message) => {
        process.stderr.write(`error: ${message}; stopping (files written before this point are intact)\n`);
        process.exit(1);
      });
    }
  } finally {
    console.warn = warn;
  }
  return tf.getBackend();
}

/** The backend in use, as logs and summaries name it: `wasm (2 threads)`, `webgpu (nvidia-h200)`, `cpu`. */
export function describeBackend(): string {
  const name = tf.getBackend();
  if (name === 'webgpu') return `webgpu (${webgpuAdapter()})`;
  if (name !== 'wasm') return name;
  const n = wasmThreads();
  return `wasm (${n} thread${n === 1 ? '' : 's'})`;
}

/** The threads asked for: `threads` when given, else `VPT_THREADS`, else every core (up to MAX_WASM_THREADS). */
export function resolveThreads(threads?: number): number {
  return threads ?? envThreads() ?? defaultWasmThreads();
}

function envThreads(): number | undefined {
  const v = process.env.VPT_THREADS;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`VPT_THREADS must be a whole number of threads (1 or more), got "${v}"`);
  return Math.min(n, MAX_WASM_THREADS);
}
