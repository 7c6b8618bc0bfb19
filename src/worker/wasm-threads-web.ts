/**
 * tfjs-backend-wasm's multi-threaded build, started in the studio's worker.
 *
 * Why not tfjs's own start: where the page is cross-origin isolated, tfjs
 * hands each pthread `'var WasmBackendModuleThreadedSimd = ' +
 * factory.toString()` as its main script. In a bundled (minified) build that
 * function's text names variables of the bundle around it, so every pthread
 * failed ("e is not defined") and the backend never started: the page hung
 * at "Starting the engine". Here the pthreads get the glue script's original
 * text (`?raw`), and, as in the CLI (cli/wasm-threads.ts), XNNPACK is told of
 * twice the threads asked for (tfjs caps its pool at half the logical cores,
 * assuming two hardware threads per core: one thread on 2 cores).
 * Where the threads do not start (in time), wasm starts single-threaded and
 * `wasmThreadsFailure()` says why.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendWasm, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import * as glue from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js';
import glueSource from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js?raw';
import { wasmWorkerContents } from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { setSimdHelpers, type SpawnHelper } from '../core/vit/wasm-simd-pool';
import { addTfjsBridge, MAX_WASM_THREADS, type ThreadedFactory as Factory, type ThreadedModule } from '../core/wasm-bridge';
/** A pthread that cannot load its script never reports it: give up on threads after this. */
const START_TIMEOUT_MS = 30_000;
/** How long after a failed start the pool's own error reports are still kept from the page. */
const ERROR_GRACE_MS = 5_000;

type Imports = { env: Record<string, unknown> };

let failure: string | null = null;
let registered = 0;

/** Why the threaded build did not start, if it did not (wasm then computes on one thread). */
export const wasmThreadsFailure = (): string | null => failure;

/** `threads`: at most this many (else every core); `breakThreads`: the tests' fault, pthreads whose script throws. */
export interface WasmThreadOptions { threads?: number; breakThreads?: boolean }

async function startThreaded(threads: number, broken: boolean): Promise<ThreadedModule> {
  const factory = ((glue as unknown as { default?: Factory }).default ?? glue) as unknown as Factory;
  // The exported string holds real newlines where the script has "\n" escapes (tfjs undoes this the same way).
  const workerUrl = URL.createObjectURL(new Blob([wasmWorkerContents.replace(/\n/g, '\\n')], { type: 'text/javascript' }));
  let failed: (e: unknown) => void = () => {};
  const failing = new Promise<never>((_, reject) => { failed = reject; });
  // Emscripten rethrows a pthread's error in this worker, where it would reach the page as the
  // engine's own failure: while the threads start, such an error means "no threads", not "no engine".
  const onError = (ev: ErrorEvent) => {
    ev.preventDefault();
    const inner = ev.error as { message?: unknown } | null; // Emscripten rethrows the thread's own ErrorEvent
    failed(new Error(`a thread failed: ${typeof inner?.message === 'string' ? inner.message : ev.message}`));
  };
  self.addEventListener('error', onError);
  const timer = setTimeout(() => failed(new Error(`its ${threads} threads did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
  // Emscripten uses this object as its Module: PThread appears on it.
  const config = {
    locateFile: (path: string) => (path.endsWith('.worker.js') ? workerUrl : path),
    mainScriptUrlOrBlob: new Blob([broken ? 'throw new Error("injected fault: this thread\'s script fails")' : glueSource], { type: 'text/javascript' }),
    onAbort: (what: unknown) => failed(new Error(`it aborted: ${String(what)}`)),
    instantiateWasm(info: Imports, receive: (i: WebAssembly.Instance, m: WebAssembly.Module) => void) {
      info.env.emscripten_num_logical_cores = () => 2 * threads;
      // Streaming needs the server to say application/wasm; some static hosts do not.
      WebAssembly.instantiateStreaming(fetch(wasmThreaded), info as WebAssembly.Imports)
        .catch(() => fetch(wasmThreaded).then((r) => r.arrayBuffer()).then((b) => WebAssembly.instantiate(b, info as WebAssembly.Imports)))
        .then((r) => receive(r.instance, r.module), failed);
      return {};
    },
  };
  try {
    const module = addTfjsBridge(await Promise.race([failing, factory(config)]));
    self.removeEventListener('error', onError);
    return module;
  } catch (e) {
    // Stop the pool. Each of its workers reports its own failure, some after this one: keep
    // those from reaching the page for a while longer.
    (config as { PThread?: ThreadedModule['PThread'] }).PThread?.terminateAllThreads?.();
    setTimeout(() => self.removeEventListener('error', onError), ERROR_GRACE_MS);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** A SIMD helper in a nested dedicated worker, from a blob: URL (its whole program is the string). */
const spawnHelper: SpawnHelper = (source, message) => {
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  const w = new Worker(url);
  w.postMessage(message);
  return { terminate: () => { w.terminate(); URL.revokeObjectURL(url); } };
};

/**
 * Make the 'wasm' backend compute on every core (up to MAX_WASM_THREADS), or
 * on `threads` of them, where the page is cross-origin isolated; elsewhere, or
 * on one core, tfjs's own single-threaded start. Returns the threads asked
 * for. Call before wasm first starts; a `threads` that is not a whole number
 * of at least 1 is an error.
 */
export function registerWasmThreads({ threads: limit, breakThreads = false }: WasmThreadOptions = {}): number {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new Error(`threads must be a whole number of at least 1, got ${limit}`);
  if (registered) return registered;
  // tfjs's own threaded start is the broken one above: never let it run.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const threads = isolated ? Math.min(navigator.hardwareConcurrency || 1, MAX_WASM_THREADS, limit ?? Infinity) : 1;
  registered = threads;
  if (threads < 2) return 1;
  // Our SIMD kernels split their work with threads - 1 helpers of their own (core/vit/wasm-simd-pool.ts);
  // they join only once the threaded build runs (its memory is shared), so a fallback to one thread leaves them out.
  setSimdHelpers(threads - 1, spawnHelper);
  const stock = tf.findBackendFactory('wasm');
  tf.removeBackend('wasm');
  setThreadsCount(threads);
  tf.registerBackend('wasm', async () => {
    try {
      return new BackendWasm(await startThreaded(threads, breakThreads) as unknown as ConstructorParameters<typeof BackendWasm>[0]);
    } catch (e) {
      failure = e instanceof Error ? e.message : String(e);
      setThreadsCount(1);
      return stock();
    }
  }, 2);
  return threads;
}
