/**
 * Capture and replay of a training step's WebGPU commands.
 *
 * Why: on a real GPU a small model's step is bound by the host. An H200's
 * host takes about 58 us to issue each of a ViT-Ti/16 step's 368 dispatches
 * through tfjs (engine, tape, buffer pool, shader keys, uniforms), 21 ms a
 * step for a few ms of GPU work; setting a pipeline and a bind group and
 * dispatching costs a small fraction of that. Once the step's shapes are
 * fixed, every step issues the same dispatches on the same buffers
 * (webgpu-reuse.ts makes the pool hand them out in the same order), so one
 * step's commands are captured and later steps encode just those.
 *
 * What makes a replay compute what a tfjs step would:
 * - Host data reaches the GPU only through the step's own input buffers
 *   (train/replay.ts writes images, labels, weights, the optimiser's numbers
 *   and dropout's masks there before each step). A capture that sees any
 *   other write (a number the step computes on the host, a uniform written
 *   the first time) is refused: a replay would repeat the old values.
 * - Every buffer the commands touch is classified at the end of the capture:
 *   the inputs; the trained variables' buffers before the step (read) and
 *   after it (written); the step's outputs (loss, hits); buffers the pool holds
 *   free (intermediates), which are taken out of the pool for as long as the
 *   capture lives, so that nothing else is ever handed them; and the rest,
 *   held by live tensors (frozen weights, held scalars) or cached uniforms,
 *   which the commands may only read. A capture that writes a held buffer, or
 *   reads an intermediate it has not written first, is refused.
 * - A replay first copies each variable's current value into the buffer the
 *   commands read it from; the commands then write the new value into the
 *   buffer the variable holds. If a variable was given another buffer since
 *   (assigned from outside), or a held buffer goes back to the pool or is
 *   destroyed, the capture is dropped and the step runs through tfjs again.
 *
 * Nothing here computes anything: a replay issues the captured pipelines and
 * bind groups in the same order, so its results are bit-identical to a tfjs
 * step's (tests/unit/node-webgpu.test.ts with webgpu-replay-child.ts, on Dawn).
 */
import type * as tf from '@tensorflow/tfjs';

/** The slice of GPUBuffer, of the device and of tfjs-backend-webgpu 4.x this uses (no DOM types in the core). */
export interface Buf { size: number; usage: number; destroy(): void }
interface Pass {
  setPipeline(p: object): void;
  setBindGroup(i: number, g: object, offsets?: unknown): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}
interface Encoder {
  beginComputePass(d?: { timestampWrites?: unknown }): Pass;
  copyBufferToBuffer(src: Buf, so: number, dst: Buf, dOff: number, size: number): void;
  finish(): object;
}
interface Device {
  createCommandEncoder(d?: unknown): Encoder;
  createBindGroup(d: { entries: { binding: number; resource: unknown }[] }): object;
  createBuffer(d: { size: number; usage: number; mappedAtCreation?: boolean }): Buf;
  queue: { writeBuffer(b: Buf, ...rest: unknown[]): void; submit(c: object[]): void };
}
interface TensorData { resource?: unknown; values?: unknown; external?: boolean }
export interface Backend {
  device: Device;
  queue: Device['queue'];
  commandEncoder: Encoder | null;
  computePassEncoder: Pass | null;
  activeTimers?: unknown;
  tensorMap: { get(id: object): TensorData | undefined };
  bufferManager: { freeBuffers: Map<string, Buf[]>; numFreeBuffers: number; releaseBuffer(b: Buf, reuse?: boolean): void };
  endComputePassEncoder(): void;
  submitQueue(): void;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  uploadToGPU(id: object): void;
}

type Dispatch = { pipeline: object; group: object; x: number; y: number; z: number };
type Copy = { src: Buf; so: number; dst: Buf; dOff: number; size: number };
type Command = { dispatch: Dispatch; copy?: undefined } | { copy: Copy; dispatch?: undefined };

/** One backend's wrapping: captures while `capture` is set, and watches buffers for the captures alive. */
interface Hooks {
  capture: Capture | null;
  /** Buffers live captures depend on; a release to the pool or a destroy of one drops them. */
  watched: Map<Buf, Set<Replay>>;
  /** Which buffers each bind group binds, in binding order (binding 0 is tfjs's output). */
  groups: WeakMap<object, (Buf | null)[]>;
}
interface Capture { commands: Command[]; refused: string | null; uploads: Upload[] }

/** Host data a captured step uploaded (tfjs's ones and zeros in gradients, small ops it ran on the CPU), in a buffer of the capture's own. */
export interface Upload { dtype: string; shape: number[]; data: Float32Array | Int32Array; buffer: Buf }

/** Whether two captures uploaded the same data, bit for bit, in the same order. */
export function sameUploads(a: Upload[], b: Upload[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((u, i) => {
    const v = b[i];
    if (u.dtype !== v.dtype || u.shape.join() !== v.shape.join() || u.data.length !== v.data.length) return false;
    const x = new Int32Array(u.data.buffer, u.data.byteOffset, u.data.length), y = new Int32Array(v.data.buffer, v.data.byteOffset, v.data.length);
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
    return true;
  });
}

const hooked = new WeakMap<object, Hooks>();
const STORAGE = 0x80, COPY_SRC = 0x4, COPY_DST = 0x8, UNIFORM = 0x40; // GPUBufferUsage

/** A buffer tfjs can read as a tensor's storage and we can copy and write, of at least 4 bytes. */
export const storageBuffer = (device: Pick<Device, 'createBuffer'>, bytes: number): Buf =>
  device.createBuffer({ size: Math.max(4, bytes), usage: STORAGE | COPY_SRC | COPY_DST });

/** Whether `backend` is tfjs's webgpu backend in the shape this module knows (else nothing is captured). */
export function replayable(backend: unknown): backend is Backend {
  const b = backend as Partial<Backend> | null;
  return !!b && !!b.device && typeof b.submitQueue === 'function' && typeof b.endComputePassEncoder === 'function'
    && !!b.bufferManager && b.bufferManager.freeBuffers instanceof Map && typeof b.uploadToGPU === 'function' && !!b.tensorMap;
}

function hooksOf(b: Backend): Hooks {
  let h = hooked.get(b);
  if (h) return h;
  h = { capture: null, watched: new Map(), groups: new WeakMap() };
  hooked.set(b, h);
  const hooks = h;
  const dev = b.device;
  const refuse = (why: string) => { if (hooks.capture && !hooks.capture.refused) hooks.capture.refused = why; };

  const createBindGroup = dev.createBindGroup.bind(dev);
  dev.createBindGroup = (d) => {
    const g = createBindGroup(d);
    if (hooks.capture) hooks.groups.set(g, d.entries.map((e) => (e.resource as { buffer?: Buf } | null)?.buffer ?? null));
    return g;
  };
  const createBuffer = dev.createBuffer.bind(dev);
  dev.createBuffer = (d) => {
    if (d.mappedAtCreation) refuse('an upload of host data');
    return createBuffer(d);
  };
  const writeBuffer = dev.queue.writeBuffer.bind(dev.queue);
  dev.queue.writeBuffer = (buf: Buf, ...rest: unknown[]) => {
    refuse('a buffer written from the host');
    writeBuffer(buf, ...rest);
  };
  // While capturing, a tensor's host data goes to a buffer of its own (never pooled, never written
  // again, freed with its last reference), noted so that the stepper can check that the next capture
  // uploads the same.
  const upload = b.uploadToGPU.bind(b);
  b.uploadToGPU = (id: object) => {
    const cap = hooks.capture, d = b.tensorMap.get(id) as (TensorData & { dtype: string; shape: number[] }) | undefined;
    if (!cap || !d || d.resource != null || d.values == null) return upload(id);
    const v = d.values as ArrayLike<number>;
    const data = d.dtype === 'int32' || d.dtype === 'bool' ? Int32Array.from(v) : d.dtype === 'float32' ? Float32Array.from(v) : null;
    if (!data) { refuse(`an upload of ${d.dtype} data`); return upload(id); }
    const buffer = storageBuffer(dev, data.byteLength);
    writeBuffer(buffer, 0, data.buffer, 0, data.byteLength);
    d.resource = buffer;
    d.values = null;
    // tfjs then lets go of the buffer without pooling it when the tensor is disposed.
    d.external = true;
    cap.uploads.push({ dtype: d.dtype, shape: [...d.shape], data, buffer });
  };
  const createCommandEncoder = dev.createCommandEncoder.bind(dev);
  dev.createCommandEncoder = (d?: unknown) => {
    const enc = createCommandEncoder(d);
    const cap = hooks.capture;
    return cap ? capturing(enc, cap) : enc;
  };
  // A buffer a live capture depends on, handed back to the pool or destroyed: those captures can no longer run.
  const pool = b.bufferManager;
  const release = pool.releaseBuffer.bind(pool);
  pool.releaseBuffer = (buf: Buf, reuse?: boolean) => {
    hooks.watched.get(buf)?.forEach((r) => r.drop('a buffer it reads was released'));
    release(buf, reuse);
  };
  return h;
}

/** An encoder that does what it is told and notes it in `cap`; anything but passes and buffer copies is refused. */
function capturing(enc: Encoder, cap: Capture): Encoder {
  const e = enc as Encoder & Record<string, unknown>;
  for (const name of ['clearBuffer', 'resolveQuerySet', 'writeTimestamp', 'beginRenderPass', 'copyBufferToTexture', 'copyTextureToBuffer', 'copyTextureToTexture']) {
    const f = e[name];
    if (typeof f === 'function') e[name] = (...a: unknown[]) => { cap.refused ??= `a command encoder's ${name}`; return (f as (...x: unknown[]) => unknown).apply(enc, a); };
  }
  const copy = enc.copyBufferToBuffer.bind(enc);
  e.copyBufferToBuffer = (src: Buf, so: number, dst: Buf, dOff: number, size: number) => {
    cap.commands.push({ copy: { src, so, dst, dOff, size } });
    copy(src, so, dst, dOff, size);
  };
  const begin = enc.beginComputePass.bind(enc);
  e.beginComputePass = (d?: { timestampWrites?: unknown }) => {
    if (d?.timestampWrites) cap.refused ??= 'timestamp queries (a profiler)';
    const pass = begin(d);
    let pipeline: object | null = null, group: object | null = null;
    const setPipeline = pass.setPipeline.bind(pass), setBindGroup = pass.setBindGroup.bind(pass), dispatch = pass.dispatchWorkgroups.bind(pass);
    pass.setPipeline = (p) => { pipeline = p; setPipeline(p); };
    pass.setBindGroup = (i, g, offsets?) => {
      if (i !== 0 || (offsets && (offsets as ArrayLike<number>).length)) cap.refused ??= 'a bind group other than tfjs\'s one';
      group = g;
      if (offsets === undefined) setBindGroup(i, g); else setBindGroup(i, g, offsets as never);
    };
    pass.dispatchWorkgroups = (x, y = 1, z = 1) => {
      cap.commands.push({ dispatch: { pipeline: pipeline!, group: group!, x, y, z } });
      dispatch(x, y, z);
    };
    const p = pass as Pass & Record<string, unknown>;
    if (typeof p.dispatchWorkgroupsIndirect === 'function') {
      const f = p.dispatchWorkgroupsIndirect as (...a: unknown[]) => void;
      p.dispatchWorkgroupsIndirect = (...a: unknown[]) => { cap.refused ??= 'an indirect dispatch'; f.apply(pass, a); };
    }
    return pass;
  };
  return enc;
}

/** tfjs's pending commands submitted (and the tensors disposed meanwhile released), so that what follows is ordered after them. */
export function flush(b: Backend): void {
  b.endComputePassEncoder();
  if (b.commandEncoder) b.submitQueue();
}

/** The GPU buffer a tensor's data lives in on `b` (uploaded first if it is still on the host). */
export function bufferOf(b: Backend, t: tf.TensorInfo): Buf {
  b.uploadToGPU(t.dataId);
  const r = b.tensorMap.get(t.dataId)?.resource;
  if (!r || typeof (r as Buf).destroy !== 'function') throw new Error('tensor has no GPU buffer');
  return r as Buf;
}

/** A trained variable as a capture sees it: its buffer before the step, its buffer now, and its host copy to clear. */
export interface StepVariable { before: Buf; now: () => Buf; clearHostCopy: () => void }

/** What a capture needs to know of the step it watched. */
export interface StepParts {
  /** The step's input buffers (written from the host before each step). */
  inputs: Buf[];
  /** The trained variables, optimiser state included: their buffers before the step, and where each is now. */
  variables: StepVariable[];
  /** The step's results (loss, hits), kept alive by the caller of `end` for as long as the replay lives. */
  outputs: Buf[];
}

/** A captured step, ready to replay; `drop` it when done. */
export class Replay {
  private dropped: string | null = null;
  private readonly scratch: Buf[] | null = null;
  constructor(private readonly b: Backend, private readonly hooks: Hooks, private readonly commands: Command[],
    private readonly vars: (StepVariable & { after: Buf })[],
    private readonly pinned: Buf[], private readonly watched: Buf[], readonly dispatches: number, readonly uploads: Upload[]) {
    for (const w of watched) {
      const s = hooks.watched.get(w);
      if (s) s.add(this); else hooks.watched.set(w, new Set([this]));
    }
    const afters = new Set(vars.map((v) => v.after));
    if (vars.some((v) => v.before !== v.after && afters.has(v.before))) {
      this.scratch = vars.map((v) => storageBuffer(b.device, v.after.size));
    }
  }

  /** Why it can no longer run, or null. */
  get reason(): string | null { return this.dropped; }

  /**
   * Run the captured commands once (the inputs written beforehand), then copy each of
   * `results` (the outputs' buffers) into `into` (fresh buffers). False, and nothing
   * issued, if it can no longer run.
   */
  run(results: Buf[], into: Buf[]): boolean {
    if (this.dropped) return false;
    for (const v of this.vars) if (v.now() !== v.after) { this.drop('a variable was given another buffer'); return false; }
    flush(this.b);
    const enc = this.b.device.createCommandEncoder();
    // Each variable's value into the buffer the commands read it from; through scratch buffers where
    // one variable's old buffer is another's new one (tfjs reused it), so that no value is overwritten unread.
    if (this.scratch) this.vars.forEach((v, i) => { if (v.before !== v.after) enc.copyBufferToBuffer(v.after, 0, this.scratch![i], 0, v.after.size); });
    this.vars.forEach((v, i) => { if (v.before !== v.after) enc.copyBufferToBuffer(this.scratch ? this.scratch[i] : v.after, 0, v.before, 0, v.after.size); });
    let pass: Pass | null = null, pipeline: object | null = null, group: object | null = null;
    for (const c of this.commands) {
      if (c.dispatch) {
        const d = c.dispatch;
        if (!pass) { pass = enc.beginComputePass(); pipeline = group = null; }
        if (d.pipeline !== pipeline) pass.setPipeline((pipeline = d.pipeline));
        if (d.group !== group) pass.setBindGroup(0, (group = d.group));
        pass.dispatchWorkgroups(d.x, d.y, d.z);
      } else {
        if (pass) { pass.end(); pass = null; }
        const k = c.copy!;
        enc.copyBufferToBuffer(k.src, k.so, k.dst, k.dOff, k.size);
      }
    }
    if (pass) pass.end();
    results.forEach((r, i) => enc.copyBufferToBuffer(r, 0, into[i], 0, r.size));
    this.b.queue.submit([enc.finish()]);
    // tfjs keeps a copy of a tensor's values after reading them back; the variables' are stale now.
    for (const v of this.vars) v.clearHostCopy();
    return true;
  }

  /** Stop for good, and give the intermediates back to the pool. */
  drop(reason = 'dropped'): void {
    if (this.dropped) return;
    this.dropped = reason;
    for (const w of this.watched) {
      const s = this.hooks.watched.get(w);
      s?.delete(this);
      if (s && !s.size) this.hooks.watched.delete(w);
    }
    const pool = this.b.bufferManager;
    for (const p of this.pinned) {
      const key = `${p.size}_${p.usage}`;
      const list = pool.freeBuffers.get(key);
      if (list) list.push(p); else pool.freeBuffers.set(key, [p]);
      pool.numFreeBuffers++;
    }
    // The uploads' buffers are left to the garbage collector, not destroyed: a tensor that outlives
    // the step (a constant first used in it) may still read its own. Scratch buffers are ours alone.
    this.scratch?.forEach((x) => x.destroy());
  }
}

/** Start capturing the commands tfjs issues on `b` (its pending ones submitted first). */
export function beginCapture(b: Backend): void {
  const h = hooksOf(b);
  flush(b);
  h.capture = { commands: [], uploads: [], refused: b.activeTimers != null ? 'timestamp queries (a profiler)' : null };
}

/**
 * Stop capturing; the captured step as a Replay, or why it cannot be replayed. The Replay
 * holds the host data the step uploaded (`uploads`): it is exact only if every step
 * uploads the same, which the caller checks against another capture.
 */
export function endCapture(b: Backend, parts: StepParts): Replay | string {
  const h = hooksOf(b);
  flush(b);
  const cap = h.capture;
  h.capture = null;
  if (!cap) return 'no capture was started';
  return cap.refused ?? (cap.commands.length ? analyse(b, h, cap, parts) : 'no commands');
}

function analyse(b: Backend, h: Hooks, cap: Capture, parts: StepParts): Replay | string {
  const inputs = new Set([...parts.inputs, ...cap.uploads.map((u) => u.buffer)]), outputs = new Set(parts.outputs);
  const vars = parts.variables.map((v) => ({ ...v, after: v.now() }));
  const befores = new Set(vars.map((v) => v.before)), afters = new Set(vars.map((v) => v.after));
  const free = new Set<Buf>();
  for (const list of b.bufferManager.freeBuffers.values()) for (const x of list) free.add(x);
  // Walk the commands in order: what each reads and writes.
  const written = new Set<Buf>(), touched = new Set<Buf>();
  let dispatches = 0;
  const read = (x: Buf): string | null => {
    touched.add(x);
    if (written.has(x) || inputs.has(x) || befores.has(x) || outputs.has(x)) return null;
    // Not yet written by the step: it must hold the same data every step (a held tensor or a cached uniform).
    if (free.has(x)) return 'it reads a pooled buffer it did not write';
    if (afters.has(x)) return 'it reads a variable\'s new buffer before writing it';
    return null;
  };
  const write = (x: Buf): string | null => {
    touched.add(x);
    written.add(x);
    // A variable's old buffer may be written: tfjs pools it once the variable moves on, and the step
    // can reuse it after its last read, in the same order every time.
    if (inputs.has(x)) return 'it writes one of its own inputs';
    if (!free.has(x) && !afters.has(x) && !outputs.has(x)) return 'it writes a buffer a live tensor holds';
    return null;
  };
  for (const c of cap.commands) {
    let why: string | null = null;
    if (c.dispatch) {
      dispatches++;
      const bufs = h.groups.get(c.dispatch.group);
      if (!bufs) return 'a bind group made before the capture';
      for (let i = 1; i < bufs.length && !why; i++) {
        const x = bufs[i];
        if (x && x.usage & UNIFORM) touched.add(x);
        else if (x) why = read(x);
      }
      if (!why && bufs[0]) why = write(bufs[0]);
    } else {
      why = read(c.copy!.src) ?? write(c.copy!.dst);
    }
    if (why) return why;
  }
  for (const v of vars) if (v.before !== v.after && !written.has(v.after)) return 'a variable changed buffer without being written';
  // Intermediates (and the variables' old buffers) leave the pool; everything else it reads is watched.
  const pinned = [...touched].filter((x) => free.has(x));
  const watched = [...touched].filter((x) => !free.has(x) && !inputs.has(x));
  const pool = b.bufferManager;
  const pinnedSet = new Set(pinned);
  for (const [key, list] of pool.freeBuffers) {
    const keep = list.filter((x) => !pinnedSet.has(x));
    pool.numFreeBuffers -= list.length - keep.length;
    pool.freeBuffers.set(key, keep);
  }
  return new Replay(b, h, cap.commands, vars, pinned, watched, dispatches, cap.uploads);
}

/** Stop a capture that was begun (the step failed); nothing is kept. */
export function abandonCapture(b: Backend): void {
  const h = hooked.get(b);
  if (h) h.capture = null;
}
