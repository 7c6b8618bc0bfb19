// The bind-group and uniform reuse (src/core/vit/webgpu-reuse.ts) on a stand-in for tfjs's webgpu
// backend: a device that records what it creates, and tfjs 4.x's buffer pool and uniform maker.
// The real thing runs under every Dawn test (tests/unit/node-webgpu.test.ts), where results must
// not change; here each rule is checked on its own.
import { afterEach, describe, expect, it } from 'vitest';
import { installReuse, MAX_BIND_GROUPS, MAX_UNIFORMS, reuseStats, setReuse } from '../../src/core/vit/webgpu-reuse';

const UNIFORM = 0x40, STORAGE = 0x80;
type Buf = { size: number; usage: number; destroyed: boolean; destroy(): void };

function fakeBackend() {
  const made = { groups: 0, layouts: 0, buffers: [] as Buf[], writes: 0 };
  const device = {
    queue: { writeBuffer() { made.writes++; } },
    createBuffer(d: { size: number; usage: number }): Buf {
      const b: Buf = { size: d.size, usage: d.usage, destroyed: false, destroy() { b.destroyed = true; } };
      made.buffers.push(b);
      return b;
    },
    createBindGroup(d: { layout: object; entries: unknown[] }) { made.groups++; return { layout: d.layout, entries: d.entries }; },
    createComputePipeline() { return { getBindGroupLayout: (_i: number) => { made.layouts++; return {}; } }; },
    async createComputePipelineAsync() { return { getBindGroupLayout: (_i: number) => { made.layouts++; return {}; } }; },
  };
  // tfjs-backend-webgpu 4.22's pool and uniforms, reduced to what the reuse relies on.
  const bufferManager = {
    freeBuffers: new Map<string, Buf[]>(),
    acquireBuffer(size: number, usage: number): Buf {
      const list = this.freeBuffers.get(`${size}_${usage}`);
      return list?.pop() ?? device.createBuffer({ size, usage });
    },
    releaseBuffer(b: Buf, reuse = true) {
      const key = `${b.size}_${b.usage}`;
      if (!this.freeBuffers.has(key)) this.freeBuffers.set(key, []);
      if (reuse) this.freeBuffers.get(key)!.push(b); else b.destroy();
    },
    dispose() { for (const l of this.freeBuffers.values()) for (const b of l) b.destroy(); this.freeBuffers = new Map(); },
  };
  const backend = {
    device, bufferManager, uniformPendingDisposal: [] as Buf[],
    makeUniforms(u: { type: string; data: number[] }[]) {
      const size = 4 * u.reduce((n, d) => n + d.data.length, 0);
      const buffer = bufferManager.acquireBuffer(size, UNIFORM);
      device.queue.writeBuffer();
      this.uniformPendingDisposal.push(buffer);
      return { offset: 0, size, buffer };
    },
  };
  return { backend, device, bufferManager, made };
}

const entries = (...bufs: Buf[]) => bufs.map((buffer, binding) => ({ binding, resource: { buffer } }));

afterEach(() => { setReuse(true); });

describe('bind-group reuse', () => {
  it('makes one bind group per layout and buffer ranges, and a new one when any of them differs', () => {
    const { backend, device, made } = fakeBackend();
    installReuse(backend);
    const pipeline = device.createComputePipeline();
    const layout = pipeline.getBindGroupLayout(0);
    const [a, b, c] = [1, 2, 3].map(() => device.createBuffer({ size: 64, usage: STORAGE }));
    const g1 = device.createBindGroup({ layout, entries: entries(a, b) });
    expect(device.createBindGroup({ layout, entries: entries(a, b) })).toBe(g1);
    expect(device.createBindGroup({ layout, entries: entries(a, c) })).not.toBe(g1);
    expect(device.createBindGroup({ layout, entries: entries(b, a) })).not.toBe(g1);
    const ranged = [{ binding: 0, resource: { buffer: a, offset: 0, size: 32 } }, { binding: 1, resource: { buffer: b } }];
    expect(device.createBindGroup({ layout, entries: ranged })).not.toBe(g1);
    expect(device.createBindGroup({ layout: pipeline.getBindGroupLayout(1), entries: entries(a, b) })).not.toBe(g1);
    expect(made.groups).toBe(5);
    expect(reuseStats(backend)).toEqual({ created: 5, reused: 1, size: 5 });
  });

  it('asks each pipeline for a layout once, also for pipelines compiled in parallel', async () => {
    const { backend, device, made } = fakeBackend();
    installReuse(backend);
    const p = device.createComputePipeline(), q = await device.createComputePipelineAsync();
    expect(p.getBindGroupLayout(0)).toBe(p.getBindGroupLayout(0));
    expect(q.getBindGroupLayout(0)).toBe(q.getBindGroupLayout(0));
    expect(made.layouts).toBe(2);
  });

  it('forgets the groups that name a buffer when the buffer is destroyed', () => {
    const { backend, device, made } = fakeBackend();
    installReuse(backend);
    const layout = device.createComputePipeline().getBindGroupLayout(0);
    const [a, b] = [1, 2].map(() => device.createBuffer({ size: 64, usage: STORAGE }));
    const g = device.createBindGroup({ layout, entries: entries(a, b) });
    b.destroy();
    expect(b.destroyed).toBe(true);
    expect(reuseStats(backend)!.size).toBe(0);
    const b2 = device.createBuffer({ size: 64, usage: STORAGE });
    expect(device.createBindGroup({ layout, entries: entries(a, b2) })).not.toBe(g);
    expect(made.groups).toBe(2);
  });

  it('does not cache groups that bind a buffer made before it was installed, or anything but buffers', () => {
    const { backend, device, made } = fakeBackend();
    const old = device.createBuffer({ size: 64, usage: STORAGE });
    installReuse(backend);
    const layout = device.createComputePipeline().getBindGroupLayout(0);
    const fresh = device.createBuffer({ size: 64, usage: STORAGE });
    device.createBindGroup({ layout, entries: entries(old, fresh) });
    device.createBindGroup({ layout, entries: entries(old, fresh) });
    const texture = [{ binding: 0, resource: { texture: true } }];
    device.createBindGroup({ layout, entries: texture });
    device.createBindGroup({ layout, entries: texture });
    expect(made.groups).toBe(4);
    expect(reuseStats(backend)).toMatchObject({ reused: 0, size: 0 });
  });

  it('makes a fresh group for every call while switched off, as tfjs alone does', () => {
    const { backend, device, made } = fakeBackend();
    installReuse(backend);
    const layout = device.createComputePipeline().getBindGroupLayout(0);
    const a = device.createBuffer({ size: 64, usage: STORAGE });
    expect(setReuse(false)).toBe(true);
    device.createBindGroup({ layout, entries: entries(a) });
    device.createBindGroup({ layout, entries: entries(a) });
    expect(made.groups).toBe(2);
  });

  it('starts over past MAX_BIND_GROUPS distinct groups', () => {
    const { backend, device, made } = fakeBackend();
    installReuse(backend);
    const layout = device.createComputePipeline().getBindGroupLayout(0);
    const bufs = Array.from({ length: MAX_BIND_GROUPS + 1 }, () => device.createBuffer({ size: 4, usage: STORAGE }));
    for (const b of bufs) device.createBindGroup({ layout, entries: entries(b) });
    expect(reuseStats(backend)!.size).toBe(1);
    device.createBindGroup({ layout, entries: entries(bufs[0]) });
    expect(made.groups).toBe(MAX_BIND_GROUPS + 2);
  });

  it('installs once per backend and device, and leaves other backends alone', () => {
    const { backend, device } = fakeBackend();
    installReuse(backend);
    const wrapped = device.createBindGroup, uniforms = backend.makeUniforms;
    installReuse(backend);
    expect(device.createBindGroup).toBe(wrapped);
    expect(backend.makeUniforms).toBe(uniforms);
    // A backend started afresh on the same device: its own pool and uniforms are taken, the device is not wrapped twice.
    const again = fakeBackend();
    const restarted = { ...again.backend, device };
    installReuse(restarted);
    expect(device.createBindGroup).toBe(wrapped);
    expect(restarted.makeUniforms).not.toBe(again.backend.makeUniforms);
    expect(() => installReuse({})).not.toThrow();
    expect(() => installReuse(null)).not.toThrow();
    expect(reuseStats({})).toBeUndefined();
  });
});

describe('buffer pool order', () => {
  it('hands out the oldest free buffer of a size, whatever order they came back in', () => {
    const { backend, bufferManager } = fakeBackend();
    installReuse(backend);
    const bufs = [0, 1, 2, 3].map(() => bufferManager.acquireBuffer(16, STORAGE));
    for (const i of [2, 0, 3, 1]) bufferManager.releaseBuffer(bufs[i]);
    expect([0, 1, 2, 3].map(() => bufferManager.acquireBuffer(16, STORAGE))).toEqual(bufs);
    // Another size keeps its own list; a buffer released without reuse is destroyed, as before.
    const other = bufferManager.acquireBuffer(32, STORAGE);
    bufferManager.releaseBuffer(bufs[1], false);
    expect(bufs[1].destroyed).toBe(true);
    bufferManager.releaseBuffer(other);
    expect(bufferManager.acquireBuffer(32, STORAGE)).toBe(other);
  });
});

describe('uniform reuse', () => {
  const u = (n: number) => [{ type: 'float32', data: [NaN] }, { type: 'int32', data: [n, 1] }];

  it('keeps one buffer per distinct content, written once and never given back to the pool', () => {
    const { backend, made } = fakeBackend();
    installReuse(backend);
    const first = backend.makeUniforms(u(7));
    expect(backend.uniformPendingDisposal).toEqual([]);
    expect(backend.makeUniforms(u(7))).toBe(first);
    const other = backend.makeUniforms(u(8));
    expect(other.buffer).not.toBe(first.buffer);
    // Same numbers, other types: other bytes.
    expect(backend.makeUniforms([{ type: 'int32', data: [NaN] }, { type: 'int32', data: [7, 1] }])).not.toBe(first);
    expect(made.writes).toBe(3);
  });

  it('writes every dispatch\'s uniforms while switched off', () => {
    const { backend, made } = fakeBackend();
    installReuse(backend);
    setReuse(false);
    backend.makeUniforms(u(7));
    backend.makeUniforms(u(7));
    expect(made.writes).toBe(2);
    expect(backend.uniformPendingDisposal).toHaveLength(2);
  });

  it('past MAX_UNIFORMS contents, gives its buffers back only after the next submit, as tfjs does', () => {
    const { backend } = fakeBackend();
    installReuse(backend);
    for (let i = 0; i < MAX_UNIFORMS; i++) backend.makeUniforms(u(i));
    expect(backend.uniformPendingDisposal).toHaveLength(0);
    backend.makeUniforms(u(-1));
    expect(backend.uniformPendingDisposal).toHaveLength(MAX_UNIFORMS);
  });
});
