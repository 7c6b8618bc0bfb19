/**
 * Decoding and resizing the CLI's images on worker threads, one per core.
 *
 * Why: a 1600x1200 JPEG takes about 0.1 s to decode (mozjpeg in
 * WebAssembly, src/cli/jpeg-wasm.ts) and resize on one core, 0.4 s with
 * jpeg-js, so a folder of real photos spent minutes decoding before the
 * first step, and a dataset
 * past the pixel budget decodes every batch again. Decoding is independent
 * per image: N threads decode N images at once, with the same bytes out
 * (tests/unit/decode-pool.test.ts). Small jobs stay on the calling thread:
 * a thread costs about 0.2 s to start.
 */
import { Worker } from 'node:worker_threads';
import { VptError } from '../core/errors';
import type { RgbImage } from '../core/image/resize';
import type { DecodeJob, DecodeReply } from './decode-worker';
import { decodeFile, type ImageDecoder } from './node-io';

interface Pending { job: DecodeJob; resolve: (img: RgbImage) => void; reject: (e: Error) => void }

export class DecodePool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private started = 0;
  private nextId = 1;
  private closed = false;

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`decode threads must be a whole number, got ${threads}`);
  }

  readonly decode: ImageDecoder = (path, name, pre) => new Promise<RgbImage>((resolve, reject) => {
    if (this.closed) { reject(new Error('the decode pool is closed')); return; }
    this.queue.push({ job: { id: this.nextId++, path, name, pre }, resolve, reject });
    this.pump();
  });

  /** Ends every thread; queued and running decodes are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('the decode pool is closed'));
    for (const [, p] of this.busy) p.reject(new Error('the decode pool is closed'));
    const all = [...this.idle.splice(0), ...this.busy.keys()];
    this.busy.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.queue.length) {
      const worker = this.idle.pop() ?? (this.started < this.threads ? this.spawn() : null);
      if (!worker) return;
      const p = this.queue.shift()!;
      this.busy.set(worker, p);
      // A busy thread holds the process open (it owes an answer); an idle one does not.
      worker.ref();
      worker.postMessage(p.job);
    }
  }

  private spawn(): Worker {
    this.started++;
    // The entry is plain JavaScript that registers tsx itself; the parent's loader flags are not needed.
    const w = new Worker(new URL('./decode-worker.mjs', import.meta.url), { execArgv: [] });
    w.on('message', (r: DecodeReply) => {
      const p = this.busy.get(w);
      if (!p) return;
      this.busy.delete(w);
      if (r.ok) p.resolve({ width: r.width, height: r.height, data: r.data });
      else p.reject(new VptError(r.source, r.problem));
      w.unref();
      this.idle.push(w);
      this.pump();
    });
    // A thread that dies (out of memory in a decoder, say) fails its image, not the run: it is replaced.
    w.on('error', (e: Error) => this.lost(w, `could not be decoded (${e.message})`));
    w.on('exit', (code) => { if (!this.closed) this.lost(w, `could not be decoded (the decode thread stopped, code ${code})`); });
    return w;
  }

  private lost(w: Worker, problem: string): void {
    const p = this.busy.get(w);
    this.busy.delete(w);
    const i = this.idle.indexOf(w);
    if (i >= 0) this.idle.splice(i, 1);
    if (!p && i < 0) return; // already handled (an 'error' is followed by an 'exit')
    this.started--;
    if (p) p.reject(new VptError(p.job.name, problem));
    this.pump();
  }
}

/** Under this many images the pool's start-up costs more than it saves. */
export const POOL_MIN_IMAGES = 8;

let shared: DecodePool | null = null;
let sharedThreads = 1;

/** How many threads the CLI decodes on (its --threads; every core by default). */
export function setDecodeThreads(threads: number): void {
  sharedThreads = threads;
}

/** The decoder for `n` images: the shared pool when it pays, else the calling thread. */
export function decoderFor(n: number): ImageDecoder {
  if (sharedThreads < 2 || n < POOL_MIN_IMAGES) return decodeFile;
  if (!shared) shared = new DecodePool(sharedThreads);
  return shared.decode;
}
