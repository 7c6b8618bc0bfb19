/** The page's handle on the engine worker: typed requests, promise replies. */
import type { BackendInfo, BackendName, FromWorker, ToWorker } from './protocol';

type Pending = { resolve: (m: FromWorker) => void; reject: (e: Error) => void };

export class EngineClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(onAsyncError: (message: string) => void) {
    this.worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' });
    this.worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      const p = this.pending.get(m.id);
      if (!p) { if (m.type === 'error') onAsyncError(m.message); return; }
      this.pending.delete(m.id);
      if (m.type === 'error') p.reject(new Error(m.message)); else p.resolve(m);
    };
    this.worker.onerror = (e) => onAsyncError(`engine worker failed: ${e.message}`);
  }

  private request(msg: Omit<ToWorker, 'id'>): Promise<FromWorker> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id } as ToWorker);
    });
  }

  async init(prefer?: BackendName): Promise<BackendInfo> {
    const m = await this.request({ type: 'init', prefer });
    if (m.type !== 'ready') throw new Error('unexpected reply');
    return m.info;
  }

  terminate(): void { this.worker.terminate(); }
}
