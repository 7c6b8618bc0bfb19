/**
 * Reuse of WebGPU bind groups and uniform buffers from one training step to the next.
 *
 * tfjs's webgpu backend creates a fresh bind group for every dispatch and asks
 * the pipeline for its bind-group layout each time. Those two host calls are
 * the dearest part of a dispatch (in Node's Dawn, 35 and 8 us of about 130;
 * setting the pipeline and dispatching take 11), and small models' GPU steps
 * are bound by host time per dispatch. A training step repeats the same
 * dispatches on the same pooled buffers, step after step, so this wraps the
 * device to create a bind group with the same layout and buffer ranges once,
 * and reuse it. A bind group names buffers, not their contents (tfjs writes
 * each dispatch's uniforms into its buffer before it runs), so reuse is exact.
 *
 * Two things make the same dispatch get the same buffers each step:
 * - the pool hands out the free buffer of a size that was seen first, instead of
 *   the one released last: tfjs releases buffers in batches at each submit,
 *   and its last-in-first-out lists came out in a new order every step (a third
 *   of the bind groups were found again; with this, all of them from the fifth step);
 * - each pipeline's layout is asked for once (each call returns a new object).
 *
 * A bind group keeps its buffers alive, so the cache forgets every group that
 * names a buffer when tfjs destroys it, caches only groups whose buffers it saw
 * created (it can hook their destruction), and starts over past MAX_BIND_GROUPS.
 */

interface GpuBuffer { destroy(): void }
interface BufferBinding { buffer: GpuBuffer; offset?: number; size?: number }
interface Descriptor { layout: object; entries: { binding: number; resource: unknown }[] }
interface Pipeline { getBindGroupLayout(i: number): object }
interface Device {
  createBindGroup(d: Descriptor): object;
  createBuffer(d: unknown): GpuBuffer;
  createComputePipeline(d: unknown): Pipeline;
  createComputePipelineAsync(d: unknown): Promise<Pipeline>;
}
/** tfjs-backend-webgpu 4.x's buffer pool: free buffers by `${size}_${usage}`, last one handed out first. */
interface BufferPool {
  freeBuffers: Map<string, GpuBuffer[]>;
  releaseBuffer(b: GpuBuffer & { size: number; usage: number }, reuse?: boolean): void;
}

/** Past this many distinct bind groups the cache starts over (a long run of changing shapes). */
export const MAX_BIND_GROUPS = 8192;

/** Bind groups created and found again on a backend's device (for the tests and the bench). */
export interface ReuseStats { created: number; reused: number; size: number }
const stats = new WeakMap<object, ReuseStats>();
let enabled = true;

export function reuseStats(backend: unknown): ReuseStats | undefined {
  const device = (backend as { device?: object } | null)?.device;
  return device ? stats.get(device) : undefined;
}

/** Turn reuse off or on (the bench and the tests compare both); returns the previous setting. */
export function setReuse(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

// A number for every object the caches key on (layouts, buffers), in order of first sight.
const ids = new WeakMap<object, number>();
let nextId = 1;
const idOf = (o: object) => {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = nextId++));
  return id;
};
const backends = new WeakSet<object>();

/**
 * A map keyed by a short list of numbers, compared bit for bit (NaN included),
 * found by a hash of their bits: building a string key cost 4-5 us a dispatch
 * here, most of what the caches spent. Callers write the key into `key` and
 * pass its length.
 */
class NumberKeyed<V> {
  readonly key = new Float64Array(256);
  private readonly bits = new Int32Array(this.key.buffer);
  private readonly buckets = new Map<number, { bits: Int32Array; value: V }[]>();
  size = 0;

  private hash(n: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < 2 * n; i++) h = Math.imul(h ^ this.bits[i], 0x01000193);
    return h;
  }

  private find(list: { bits: Int32Array }[] | undefined, n: number) {
    if (!list) return -1;
    outer: for (let j = 0; j < list.length; j++) {
      const b = list[j].bits;
      if (b.length !== 2 * n) continue;
      for (let i = 0; i < 2 * n; i++) if (b[i] !== this.bits[i]) continue outer;
      return j;
    }
    return -1;
  }

  get(n: number): V | undefined {
    const list = this.buckets.get(this.hash(n));
    const j = this.find(list, n);
    return j < 0 ? undefined : list![j].value;
  }

  /** Adds the value under the key now in `key`; returns a handle for `delete`. */
  set(n: number, value: V): { h: number; bits: Int32Array } {
    const h = this.hash(n), bits = this.bits.slice(0, 2 * n);
    const list = this.buckets.get(h);
    if (list) list.push({ bits, value }); else this.buckets.set(h, [{ bits, value }]);
    this.size++;
    return { h, bits };
  }

  delete(handle: { h: number; bits: Int32Array }): void {
    const list = this.buckets.get(handle.h);
    const j = list ? list.findIndex((e) => e.bits === handle.bits) : -1;
    if (j < 0) return;
    list!.splice(j, 1);
    if (!list!.length) this.buckets.delete(handle.h);
    this.size--;
  }

  values(): V[] {
    return [...this.buckets.values()].flatMap((l) => l.map((e) => e.value));
  }

  clear(): void {
    this.buckets.clear();
    this.size = 0;
  }
}

/**
 * Make a tfjs webgpu backend reuse bind groups and uniform buffers (call it
 * with `tf.backend()` once webgpu is current; again after a restart, which
 * makes a new backend and device). The device is wrapped once, the backend's
 * pool and uniforms once. Anything else (another backend, a descriptor that
 * binds a texture) is left alone.
 */
export function installReuse(backend: unknown): void {
  const b = backend as { device?: Device; bufferManager?: Partial<BufferPool> };
  const device = b?.device;
  if (!device || typeof device.createBindGroup !== 'function' || backends.has(b)) return;
  backends.add(b);
  reuseUniforms(b);
  orderPool(b.bufferManager);
  if (!stats.has(device)) wrapDevice(device);
}

function wrapDevice(device: Device): void {
  const s: ReuseStats = { created: 0, reused: 0, size: 0 };
  stats.set(device, s);
  const groups = new NumberKeyed<object>();
  type Handle = ReturnType<typeof groups.set>;
  // Buffers made through the wrapped device, and the groups that name each.
  const ours = new WeakSet<object>();
  const byBuffer = new Map<number, Handle[]>();
  const clear = () => { groups.clear(); byBuffer.clear(); s.size = 0; };

  const createBuffer = device.createBuffer.bind(device);
  device.createBuffer = (desc: unknown) => {
    const buffer = createBuffer(desc);
    ours.add(buffer);
    idOf(buffer);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      const id = ids.get(buffer)!;
      for (const k of byBuffer.get(id) ?? []) groups.delete(k);
      byBuffer.delete(id);
      s.size = groups.size;
      destroy();
    };
    return buffer;
  };

  const createBindGroup = device.createBindGroup.bind(device);
  device.createBindGroup = (desc: Descriptor) => {
    const entries = desc.entries;
    if (!enabled || 1 + 4 * entries.length > groups.key.length) { s.created++; return createBindGroup(desc); }
    const key = groups.key;
    let n = 0;
    key[n++] = idOf(desc.layout);
    for (const e of entries) {
      const r = e.resource as BufferBinding;
      if (!r || typeof r !== 'object' || !ours.has(r.buffer)) { s.created++; return createBindGroup(desc); }
      key[n++] = e.binding; key[n++] = ids.get(r.buffer)!; key[n++] = r.offset ?? 0; key[n++] = r.size ?? -1;
    }
    const hit = groups.get(n);
    if (hit) { s.reused++; return hit; }
    if (groups.size >= MAX_BIND_GROUPS) clear();
    const group = createBindGroup(desc);
    s.created++;
    const handle = groups.set(n, group);
    s.size = groups.size;
    for (const e of entries) {
      const id = ids.get((e.resource as BufferBinding).buffer)!;
      const handles = byBuffer.get(id);
      if (handles) handles.push(handle); else byBuffer.set(id, [handle]);
    }
    return group;
  };

  const memoLayout = (p: Pipeline): Pipeline => {
    const get = p.getBindGroupLayout.bind(p);
    const layouts = new Map<number, object>();
    p.getBindGroupLayout = (i: number) => {
      if (!enabled) return get(i);
      let l = layouts.get(i);
      if (!l) layouts.set(i, (l = get(i)));
      return l;
    };
    return p;
  };
  const createComputePipeline = device.createComputePipeline.bind(device);
  device.createComputePipeline = (desc: unknown) => memoLayout(createComputePipeline(desc));
  const createComputePipelineAsync = device.createComputePipelineAsync.bind(device);
  device.createComputePipelineAsync = async (desc: unknown) => memoLayout(await createComputePipelineAsync(desc));
}

/**
 * Keep each of the pool's free lists in order of first sight, newest first,
 * so that `pop` hands out the oldest free buffer of a size whatever order the
 * buffers came back in. Left alone if the pool is not shaped as expected
 * (another tfjs version): reuse is then rarer, never wrong.
 */
function orderPool(pool: Partial<BufferPool> | undefined): void {
  if (!pool || !(pool.freeBuffers instanceof Map) || typeof pool.releaseBuffer !== 'function') return;
  const release = pool.releaseBuffer.bind(pool);
  pool.releaseBuffer = (buffer, reuse) => {
    release(buffer, reuse);
    const list = pool.freeBuffers!.get(`${buffer.size}_${buffer.usage}`);
    if (!list || list[list.length - 1] !== buffer) return;
    const id = idOf(buffer);
    let i = list.length - 1;
    while (i > 0 && idOf(list[i - 1]) < id) { list[i] = list[i - 1]; i--; }
    list[i] = buffer;
  };
}

type UniformData = { type: string; data: number[] };
type UniformBinding = { offset: number; size: number; buffer: GpuBuffer };
interface UniformMaker {
  makeUniforms(u: UniformData[]): UniformBinding;
  uniformPendingDisposal: GpuBuffer[];
}

/** Past this many distinct uniform contents they go back to the pool and the cache starts over. */
export const MAX_UNIFORMS = 4096;

/**
 * Each dispatch's uniforms (shapes, strides, sizes and the program's own
 * values) are the same every step, yet tfjs packs them, takes a buffer from
 * its pool and writes it for every dispatch (about 15 us of host time). Keep
 * one buffer per distinct content instead, written once: a cached buffer is
 * never rewritten, so every dispatch that binds it reads what it expects.
 */
function reuseUniforms(backend: unknown): void {
  const b = backend as Partial<UniformMaker>;
  if (typeof b.makeUniforms !== 'function' || !Array.isArray(b.uniformPendingDisposal)) return;
  const make = b.makeUniforms.bind(b);
  const cache = new NumberKeyed<UniformBinding>();
  const TYPES: Record<string, number> = { float32: 1, int32: 2, uint32: 3 };
  b.makeUniforms = (u: UniformData[]) => {
    if (!enabled) return make(u);
    // The key: each field's type, length and values (an empty field is packed as [1] by tfjs; kept apart, harmlessly).
    const key = cache.key;
    let n = 0;
    for (const d of u) {
      if (n + 2 + d.data.length > key.length) return make(u);
      key[n++] = TYPES[d.type] ?? 0;
      key[n++] = d.data.length;
      for (const v of d.data) key[n++] = v;
    }
    const hit = cache.get(n);
    if (hit) return hit;
    if (cache.size >= MAX_UNIFORMS) {
      // Back to the pool only after the next submit, as tfjs does: a dispatch still being recorded may bind them.
      for (const c of cache.values()) b.uniformPendingDisposal!.push(c.buffer);
      cache.clear();
    }
    const binding = make(u);
    // tfjs queued the buffer for release after the next submit; keep it instead.
    const pending = b.uniformPendingDisposal!;
    if (pending[pending.length - 1] !== binding.buffer) return binding;
    pending.pop();
    cache.set(n, binding);
    return binding;
  };
}
