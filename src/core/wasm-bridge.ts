/**
 * The bridge tfjs-backend-wasm's own `init()` builds on its Emscripten module
 * (backend_wasm.js), for the places that start tfjs's threaded build
 * themselves: the CLI in Node (cli/wasm-threads.ts) and the studio's worker
 * in a cross-origin isolated page (worker/wasm-threads-web.ts). `BackendWasm`
 * expects it at `module.tfjs`.
 */
/** tfjs's threaded build has a pool of 8 pthread workers: XNNPACK can use at most that many threads. */
export const MAX_WASM_THREADS = 8;

/** The threaded build's Emscripten factory (tfjs-backend-wasm-threaded-simd.js). */
export type ThreadedFactory = (config: Record<string, unknown>) => Promise<ThreadedModule>;

export interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread: { runningWorkers: { unref?(): void }[]; terminateAllThreads?(): void };
  tfjs?: Record<string, (...a: number[]) => number>;
}

export function addTfjsBridge(module: ThreadedModule): ThreadedModule {
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  return module;
}
