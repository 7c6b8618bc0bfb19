/// <reference lib="webworker" />
/** The engine worker: owns tfjs, the backbone and every run; the page only sends messages. */
import { VptError } from '../core/errors';
import { startBackend } from './backend-chain';
import type { FromWorker, Reply, ToWorker } from './protocol';
import { Session } from './session';

const scope = self as unknown as DedicatedWorkerGlobalScope;
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);
const session: Session = new Session(
  (event) => post({ id: -1, kind: 'event', event }, event.type === 'checkpoint' ? [event.bytes.buffer as ArrayBuffer] : []),
  (init) => startBackend(init.prefer, (message) => session.deviceError(message), init), // its threads and breakThreads are the wasm options
);

function transferables(r: Reply): Transferable[] {
  if (r.type === 'exportTask') return [r.bytes.buffer as ArrayBuffer];
  return [];
}

scope.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const { id, req } = ev.data;
  try {
    const reply = await session.handle(req);
    post({ id, kind: 'ok', reply }, transferables(reply));
  } catch (e) {
    // VptErrors name the file and the problem; anything else is reported as it is, never as a stack.
    const message = e instanceof VptError ? e.message : e instanceof Error ? e.message : String(e);
    post({ id, kind: 'error', message });
  }
};
