/**
 * Helper threads for the wasm SIMD kernels (wasm-simd.ts): each kernel's work
 * (elements, rows, or attention's (image, head) pairs) is shared, in chunks,
 * between the calling thread and these, which run the same module on the same
 * shared memory. Only where tfjs-wasm runs its threaded build (its memory is
 * then shared); elsewhere the caller does it all.
 *
 * Why: tfjs-wasm's own thread pool works only inside XNNPACK's kernels; ours
 * (the linear products, attention, GELU, the norms: almost all of a step)
 * would run on one core. The helpers sleep in Atomics.wait between kernels,
 * so they do not compete with XNNPACK's threads, and a kernel's hand-off
 * costs a futex wake (tens of microseconds), about 100 a step.
 *
 * Threads are started by the platform (core has no Worker): the CLI and the
 * studio's training worker each pass a spawner to setSimdHelpers.
 */

/** Starts a thread running `source` (a classic script) and posts it `message` once. */
export type SpawnHelper = (source: string, message: unknown) => { terminate(): void };

/**
 * The helper's whole program: instantiate, report ready, then for each call it is handed take chunks of the
 * work from the shared queue until none is left; until told to stop. The last two arguments are the chunk.
 */
export const HELPER_SOURCE = `
const start = ({ module, memory, ctrl, queue, names }) => {
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const c = new Int32Array(ctrl), a = new Float64Array(ctrl, 64), q = new Int32Array(queue);
  Atomics.store(c, 2, 1);
  let seen = 0;
  for (;;) {
    Atomics.wait(c, 0, seen);
    seen = Atomics.load(c, 0);
    if (seen < 0) return;
    let failed = 0;
    try {
      const f = k[names[c[4]]], args = Array.from(a.subarray(0, c[3])), n = args.length, end = q[1], chunk = q[2];
      for (let s = Atomics.add(q, 0, chunk); s < end; s = Atomics.add(q, 0, chunk)) {
        args[n - 2] = s;
        args[n - 1] = Math.min(s + chunk, end);
        f(...args);
      }
    } catch { failed = 1; }
    Atomics.store(c, 5, failed);
    Atomics.store(c, 1, seen);
    Atomics.notify(c, 1);
  }
};
if (typeof require === 'function') require('node:worker_threads').parentPort.once('message', start);
else self.onmessage = (e) => start(e.data);
`;

// A helper's control block: [0] the call's number (-1: stop), [1] the last call done, [2] ready, [3] argument
// count, [4] the kernel's index in `names`, [5] whether it failed; arguments from byte 64 as float64s.
// The pool's queue: [0] the next unclaimed index, [1] the end, [2] the chunk.
const SEQ = 0, DONE = 1, READY = 2, COUNT = 3, NAME = 4, FAILED = 5, MAX_ARGS = 24;
/** How long to wait for a helper before calling it lost (a kernel's share takes milliseconds). */
const LOST_MS = 60_000;

interface Helper { ctrl: Int32Array; args: Float64Array; seq: number; thread: { terminate(): void } }

/** The most helper threads: with the calling thread, tfjs-wasm's own most (MAX_WASM_THREADS, 8). */
const MAX_HELPERS = 7;

let spawn: SpawnHelper | null = null;
let wanted = 0;
interface Pool { memory: WebAssembly.Memory; helpers: Helper[]; queue: Int32Array }
/**
 * The one memory with helpers. A new memory means tfjs-wasm was started afresh (the studio restarts the
 * engine after running out of memory): the old memory's helpers are stopped, else they would keep that
 * memory, gigabytes perhaps, alive.
 */
let pool: Pool | null = null;

/** This memory's pool, made on first use. */
function poolOf(memory: WebAssembly.Memory): Pool {
  if (pool?.memory !== memory) {
    if (pool) stopHelpers(pool);
    pool = { memory, helpers: [], queue: new Int32Array(new SharedArrayBuffer(16)) };
  }
  return pool;
}

function stopHelpers(p: Pool): void {
  for (const h of p.helpers) {
    Atomics.store(h.ctrl, SEQ, -1);
    Atomics.notify(h.ctrl, SEQ);
    h.thread.terminate();
  }
  p.helpers.length = 0;
}

/** How many helper threads are alive (started and not stopped), ready or not (tests). */
export const liveHelpers = (): number => pool?.helpers.length ?? 0;

/** Use `count` helper threads, started by `spawner` when first needed (0 or null: none; fewer leaves the rest asleep). */
export function setSimdHelpers(count: number, spawner: SpawnHelper | null): void {
  wanted = spawner ? Math.min(MAX_HELPERS, Math.max(0, Math.floor(count))) : 0;
  spawn = spawner;
}

/** The helpers for this memory, started as they are first wanted (each is ready a little later; until then the caller works alone). */
function helpersFor(memory: WebAssembly.Memory, module: WebAssembly.Module, names: readonly string[]): Helper[] {
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  if (!shared) return [];
  const { helpers: hs, queue } = poolOf(memory);
  while (spawn && hs.length < wanted) {
    const ctrl = new SharedArrayBuffer(64 + 8 * MAX_ARGS);
    try {
      const thread = spawn(HELPER_SOURCE, { module, memory, ctrl, queue: queue.buffer, names });
      hs.push({ ctrl: new Int32Array(ctrl), args: new Float64Array(ctrl, 64), seq: 0, thread });
    } catch {
      spawn = null; // no threads here after all: the caller works alone
    }
  }
  return hs.slice(0, wanted);
}

let canWait: boolean | null = null;
/** Blocks until c[i] is no longer v: Atomics.wait where the thread may block, else spinning (a page's main thread). */
function waitChange(c: Int32Array, i: number, v: number, until: number): boolean {
  if (canWait === null) {
    try { Atomics.wait(c, 15, 1, 0); canWait = true; } catch { canWait = false; }
  }
  while (Atomics.load(c, i) === v) {
    if (performance.now() > until) return false;
    if (canWait) Atomics.wait(c, i, v, 50);
  }
  return true;
}

/**
 * Runs kernel `name` over [0, n): the calling thread and the ready helpers
 * take chunks (starting at multiples of `align`) from a shared counter until
 * none is left, so a thread that runs slower, or wakes late, simply takes
 * fewer (on this machine the calling thread's share often ran 1.5x slower
 * than a helper's). `args(from, to, share)` gives a call's arguments, from
 * and to last (share 0 is the caller's, 1 the first helper's...; each may
 * need its own scratch); at most `maxShares` threads take part. Returns once
 * every chunk is done.
 */
export function parallel(
  memory: WebAssembly.Memory, module: WebAssembly.Module, names: readonly string[], exports: Record<string, (...a: number[]) => void>,
  name: string, n: number, align: number, args: (from: number, to: number, share: number) => number[], maxShares = Infinity,
): void {
  const ready = helpersFor(memory, module, names).filter((h) => Atomics.load(h.ctrl, READY) === 1);
  const shares = Math.min(ready.length + 1, Math.ceil(n / align), maxShares);
  if (shares <= 1) { exports[name](...args(0, n, 0)); return; }
  // About 8 chunks a thread: enough to even out, few enough that a chunk's call costs nothing.
  const chunk = Math.max(align, Math.ceil(n / (8 * shares) / align) * align);
  const q = poolOf(memory).queue;
  q[1] = n;
  q[2] = chunk;
  Atomics.store(q, 0, 0);
  const handed = ready.slice(0, shares - 1);
  handed.forEach((h, i) => {
    const a = args(0, 0, i + 1);
    h.args.set(a);
    h.ctrl[COUNT] = a.length;
    h.ctrl[NAME] = names.indexOf(name);
    Atomics.store(h.ctrl, SEQ, ++h.seq);
    Atomics.notify(h.ctrl, SEQ);
  });
  const f = exports[name], a = args(0, 0, 0);
  for (let s = Atomics.add(q, 0, chunk); s < n; s = Atomics.add(q, 0, chunk)) {
    a[a.length - 2] = s;
    a[a.length - 1] = Math.min(s + chunk, n);
    f(...a);
  }
  const until = performance.now() + LOST_MS;
  for (const h of handed) {
    if (!waitChange(h.ctrl, DONE, h.seq - 1, until)) throw new Error(`wasm SIMD helper thread did not finish ${name} within ${LOST_MS / 1000} s`);
    if (h.ctrl[FAILED]) throw new Error(`wasm SIMD helper thread failed in ${name}`);
  }
}

/**
 * Starts the helpers for this memory now and waits (up to `timeoutMs`) until they are ready; returns how many
 * are. A browser starts a nested worker only while its parent's event loop turns, which a training loop's
 * awaits may not do for a long time: so backends start them here, when they start.
 */
export async function startHelpers(memory: WebAssembly.Memory, module: WebAssembly.Module, names: readonly string[], timeoutMs = 10_000): Promise<number> {
  const hs = helpersFor(memory, module, names), until = performance.now() + timeoutMs;
  while (hs.some((h) => Atomics.load(h.ctrl, READY) !== 1) && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
  return readyHelpers(memory);
}

/** The number of helpers now ready for this memory (tests and the bench). */
export function readyHelpers(memory: WebAssembly.Memory): number {
  if (pool?.memory !== memory) return 0;
  return pool.helpers.slice(0, wanted).filter((h) => Atomics.load(h.ctrl, READY) === 1).length;
}
