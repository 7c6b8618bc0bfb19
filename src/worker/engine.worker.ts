/// <reference lib="webworker" />
/** The engine worker: owns tfjs and the backend; the page only sends messages. */
import { startBackend } from './backend-chain';
import type { FromWorker, ToWorker } from './protocol';

const post = (m: FromWorker) => (self as unknown as DedicatedWorkerGlobalScope).postMessage(m);

self.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  try {
    if (msg.type === 'init') {
      const info = await startBackend(msg.prefer, (m) => post({ id: -1, type: 'error', message: m }));
      post({ id: msg.id, type: 'ready', info });
    }
  } catch (e) {
    post({ id: msg.id, type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
};
