/**
 * tfjs-backend-wasm's multi-threaded build, started in Node.
 *
 * Why: stock tfjs-wasm refuses threads in Node (`WASM_HAS_MULTITHREAD_SUPPORT`
 * is hard-wired false there, tfjs issue #3830), so the CLI computed on one core
 * while XNNPACK can split every matmul across cores. The threaded build's
 * Emscripten glue does support Node (it runs its pthreads on worker_threads);
 * what is browser-only is how tfjs starts it. Three things differ here:
 *  - the pthread worker script: tfjs hands Emscripten a blob: URL, which Node's
 *    Worker cannot load, so the script is written to a temporary file;
 *  - the main script each pthread evaluates: a file path instead of a Blob;
 *  - the thread cap: tfjs caps XNNPACK's pool at half the logical cores that
 *    `emscripten_num_logical_cores` reports (it assumes hyper-threading), which
 *    is one thread on a 2-core machine, so that import reports twice the
 *    threads asked for.
 * Measured on 2 vCPUs: a [1656,768]x[768,768] matmul 20 -> 38 GFLOP/s.
 * Results are the same as the single-threaded build's, to the byte: XNNPACK
 * splits a matmul by output tiles, never along the summed dimension
 * (tests/unit/wasm-threads.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { setSimdHelpers, type SpawnHelper } from '../core/vit/wasm-simd-pool';
import { addTfjsBridge, MAX_WASM_THREADS, type ThreadedFactory as Factory, type ThreadedModule } from '../core/wasm-bridge';

export { MAX_WASM_THREADS };
/** The default: every core, up to the build's pool. */
export const defaultWasmThreads = (): number => Math.min(availableParallelism(), MAX_WASM_THREADS);

const require = createRequire(import.meta.url);

let workerDir: string | null = null;
/** Node's Worker needs a file: write tfjs's pthread worker script once per process, removed at exit. */
function workerScript(): string {
  if (workerDir === null) {
    workerDir = mkdtempSync(join(tmpdir(), 'vpt-wasm-'));
    const dir = workerDir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const file = join(workerDir, 'pthread-worker.cjs');
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as { wasmWorkerContents: string };
  // The exported string holds real newlines where the script has "\n" escapes (tfjs undoes this the same way).
  writeFileSync(file, wasmWorkerContents.replace(/\n/g, '\\n'));
  return file;
}

async function startModule(threads: number): Promise<ThreadedModule> {
  const glue = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const factory = require(glue) as Factory;
  const binary = readFileSync(join(dirname(glue), 'tfjs-backend-wasm-threaded-simd.wasm'));
  const worker = workerScript();
  // The glue takes Worker from worker_threads as it starts. Node workers inherit the parent's
  // execArgv (under tsx, its TypeScript loader) and the pool's script is plain JavaScript, so
  // the pool starts without them.
  const threadsModule = require('node:worker_threads') as { Worker: new (f: string | URL, o?: object) => object };
  const NodeWorker = threadsModule.Worker;
  threadsModule.Worker = class extends NodeWorker {
    constructor(file: string | URL, options?: object) { super(file, { ...options, execArgv: [] }); }
  };
  let module: ThreadedModule;
  // A failed instantiation never settles the factory's promise: race it against the failure.
  let failed: (e: unknown) => void = () => {};
  const failure = new Promise<never>((_, reject) => { failed = reject; });
  try {
    module = await Promise.race([failure, factory({
      locateFile: (path: string) => (path.endsWith('.worker.js') ? worker : join(dirname(glue), path)),
      // Each pthread evaluates this script itself (importScripts reads a path in Node).
      mainScriptUrlOrBlob: glue,
      instantiateWasm(info: { env: Record<string, unknown> }, receive: (i: WebAssembly.Instance, m: WebAssembly.Module) => void) {
        // tfjs's C side allows min(asked, cores / 2) threads; report enough cores for the threads asked for.
        info.env.emscripten_num_logical_cores = () => 2 * threads;
        WebAssembly.instantiate(binary, info as WebAssembly.Imports).then((r) => receive(r.instance, r.module), failed);
        return {};
      },
    })]);
  } finally {
    threadsModule.Worker = NodeWorker;
  }
  return addTfjsBridge(module);
}

/** The threads the registered 'wasm' backend was made for (1: tfjs's own single-threaded registration). */
let registered = 1;
let stockFactory: (() => tf.KernelBackend | Promise<tf.KernelBackend>) | null = null;

/**
 * Makes the 'wasm' backend compute on `threads` threads: the threaded build
 * for 2 or more, tfjs's own single-threaded build for 1. Kernels are
 * registered by backend name, so all of tfjs-wasm's kernels and ours apply to
 * either. Call before the backend first starts; a later call with another count
 * replaces the backend, disposing its tensors.
 */
export function setWasmThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new Error(`threads must be a whole number from 1 to ${MAX_WASM_THREADS}, got ${threads}`);
  }
  if (registered === threads) return;
  // Our SIMD kernels split their work with threads - 1 helpers of their own (wasm-simd-pool.ts).
  setSimdHelpers(threads - 1, spawnHelper);
  stockFactory ??= tf.findBackendFactory('wasm');
  tf.removeBackend('wasm');
  registered = threads;
  if (threads === 1) {
    tf.registerBackend('wasm', stockFactory, 2);
    return;
  }
  setThreadsCount(threads);
  tf.registerBackend('wasm', async () => {
    const module = await startModule(threads);
    const backend = new BackendWasm(module as unknown as ConstructorParameters<typeof BackendWasm>[0]);
    // XNNPACK's pool threads wait on a futex between matmuls and keep a ref on Node's event
    // loop; unref them so the process can end when its work is done.
    for (const w of module.PThread.runningWorkers) w.unref?.();
    return backend;
  }, 2);
}

/** The threads XNNPACK really uses on the current wasm backend (1 for the single-threaded build). */
/** A SIMD helper on a worker thread, unref'd so that a finished CLI exits while it sleeps. */
export const spawnHelper: SpawnHelper = (source, message) => {
  const w = new Worker(source, { eval: true });
  w.unref();
  w.postMessage(message);
  return { terminate: () => void w.terminate() };
};

export function wasmThreads(): number {
  const b = tf.engine().backend as unknown as { wasm?: ThreadedModule };
  return b.wasm?.tfjs?.getThreadsCount() ?? 1;
}
