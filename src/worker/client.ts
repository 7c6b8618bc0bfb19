/** The page's handle on the engine worker: typed requests, promise replies, progress events. */
import type { FromWorker, Reply, Request, ToWorker, WorkerEvent } from './protocol';

type Pending = { resolve: (r: Reply) => void; reject: (e: Error) => void };
type ReplyOf<T extends Request['type']> = Extract<Reply, { type: T }>;

export class EngineClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(onEvent: (e: WorkerEvent) => void, onCrash: (message: string) => void) {
    this.worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' });
    this.worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.kind === 'event') { onEvent(m.event); return; }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.kind === 'error') p.reject(new Error(m.message)); else p.resolve(m.reply);
    };
    this.worker.onerror = (e) => {
      onCrash(`the engine worker failed: ${e.message ?? 'unknown error'}`);
      for (const p of this.pending.values()) p.reject(new Error('the engine worker failed'));
      this.pending.clear();
    };
  }

  request<T extends Request['type']>(req: Extract<Request, { type: T }>, transfer: Transferable[] = []): Promise<ReplyOf<T>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: Reply) => void, reject });
      this.worker.postMessage({ id, req } as ToWorker, transfer);
    });
  }

  terminate(): void { this.worker.terminate(); }
}
