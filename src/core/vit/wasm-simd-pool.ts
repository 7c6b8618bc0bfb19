/**
 * Helper threads for the wasm SIMD kernels (wasm-simd.ts): each kernel's work
 * (elements, rows, or attention's (image, head) pairs) is split between the
 * calling thread and these, which run the same module on the same shared
 * memory. Only where tfjs-wasm runs its threaded build (its memory is then
 * shared); elsewhere the caller does it all.
 *
 * Why: tfjs-wasm's own pool works only inside XNNPACK's products; our kernels
 * (attention, GELU, the norms: a third of a ViT-Ti/16 step) would run on one
 * core of two. The helpers sleep in Atomics.wait between kernels, so they do
 * not compete with XNNPACK's threads, and a kernel's hand-off costs a futex
 * wake (tens of microseconds), about 100 a step.
 *
 * Threads are started by the platform (core has no Worker): the CLI and the
 * studio's training worker each pass a spawner to setSimdHelpers.
 */

/** Starts a thread running `source` (a classic script) and posts it `message` once. */
export type SpawnHelper = (source: string, message: unknown) => { terminate(): void };

/** The helper's whole program: instantiate, report ready, then run the calls it is handed until told to stop. */
export const HELPER_SOURCE = `
const start = ({ module, memory, ctrl, names }) => {
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const c = new Int32Array(ctrl), a = new Float64Array(ctrl, 64);
  Atomics.store(c, 2, 1);
  let seen = 0;
  for (;;) {
    Atomics.wait(c, 0, seen);
    seen = Atomics.load(c, 0);
    if (seen < 0) return;
    let failed = 0;
    try { k[names[c[4]]](...a.subarray(0, c[3])); } catch { failed = 1; }
    Atomics.store(c, 5, failed);
    Atomics.store(c, 1, seen);
    Atomics.notify(c, 1);
  }
};
if (typeof require === 'function') require('node:worker_threads').parentPort.once('message', start);
else self.onmessage = (e) => start(e.data);
`;

// The control block: [0] the call's number (-1: stop), [1] the last call done, [2] ready, [3] argument count,
// [4] the kernel's index in `names`, [5] whether it failed; arguments from byte 64 as float64s.
const SEQ = 0, DONE = 1, READY = 2, COUNT = 3, NAME = 4, FAILED = 5, MAX_ARGS = 24;
/** How long to wait for a helper before calling it lost (a kernel's share takes milliseconds). */
const LOST_MS = 60_000;

interface Helper { ctrl: Int32Array; args: Float64Array; seq: number; thread: { terminate(): void } }

/** The most helpers a kernel's scratch is sized for. */
export const MAX_HELPERS = 7;

let spawn: SpawnHelper | null = null;
let wanted = 0;
const pools = new WeakMap<WebAssembly.Memory, Helper[]>();

/** Use `count` helper threads, started by `spawner` when first needed (0 or null: none; fewer leaves the rest asleep). */
export function setSimdHelpers(count: number, spawner: SpawnHelper | null): void {
  wanted = spawner ? Math.min(MAX_HELPERS, Math.max(0, Math.floor(count))) : 0;
  spawn = spawner;
}

/** The helpers for this memory, started as they are first wanted (each is ready a little later; until then the caller works alone). */
function helpersFor(memory: WebAssembly.Memory, module: WebAssembly.Module, names: readonly string[]): Helper[] {
  let hs = pools.get(memory);
  if (!hs) pools.set(memory, (hs = []));
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  while (shared && spawn && hs.length < wanted) {
    const ctrl = new SharedArrayBuffer(64 + 8 * MAX_ARGS);
    try {
      const thread = spawn(HELPER_SOURCE, { module, memory, ctrl, names });
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
 * Runs kernel `name` over [0, n) split into shares that start at multiples of
 * `align`: `args(from, to, share)` gives the call's arguments (share 0 is the
 * caller's; each share may need its own scratch). Returns once every share is done.
 */
export function parallel(
  memory: WebAssembly.Memory, module: WebAssembly.Module, names: readonly string[], exports: Record<string, (...a: number[]) => void>,
  name: string, n: number, align: number, args: (from: number, to: number, share: number) => number[],
): void {
  const ready = helpersFor(memory, module, names).filter((h) => Atomics.load(h.ctrl, READY) === 1);
  const shares = Math.min(ready.length + 1, Math.ceil(n / align));
  if (shares <= 1) { exports[name](...args(0, n, 0)); return; }
  const cut = (i: number) => (i === shares ? n : Math.round((n * i) / shares / align) * align);
  const handed: Helper[] = [];
  for (let i = 1; i < shares; i++) {
    const h = ready[i - 1], a = args(cut(i), cut(i + 1), i);
    h.args.set(a);
    h.ctrl[COUNT] = a.length;
    h.ctrl[NAME] = names.indexOf(name);
    Atomics.store(h.ctrl, SEQ, ++h.seq);
    Atomics.notify(h.ctrl, SEQ);
    handed.push(h);
  }
  exports[name](...args(0, cut(1), 0));
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
  return (pools.get(memory) ?? []).filter((h) => Atomics.load(h.ctrl, READY) === 1).length;
}
