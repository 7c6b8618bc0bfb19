/** The page's one engine worker, and the actions that drive it; results go into the store. */
import { isQuotaError, storageFull } from './storage';
import { patch, useStore } from '../store/store';
import { EngineClient } from '../worker/client';
import { saveRun } from './library-db';
import type { BackendName, WorkerEvent } from '../worker/protocol';

let client: EngineClient | null = null;

function onEvent(e: WorkerEvent): void {
  const s = useStore.getState();
  switch (e.type) {
    case 'decodeProgress': patch('dataset', { progress: { done: e.done, total: e.total } }); break;
    case 'epoch': patch('training', { history: [...s.training.history, e.report] }); break;
    case 'step': patch('training', { step: e.step, totalSteps: e.total }); break;
    case 'deviceError': s.notify(e.message); break;
    case 'compareStart':
      patch('compare', { current: { title: e.title, seed: e.seed, index: e.index, total: e.total } });
      patch('training', { history: [], step: 0, totalSteps: 0, startedAt: Date.now() });
      break;
    case 'compareRun': patch('compare', { runs: [...s.compare.runs, e.run] }); break;
    case 'searchCell': {
      const cells = s.search.cells.slice();
      cells[e.index] = e.cell;
      patch('search', { cells });
      if (e.cell.status === 'running') patch('training', { history: [], step: 0, totalSteps: 0, startedAt: Date.now() });
      break;
    }
    case 'searchFinal':
      patch('search', { best: e.best, final: true });
      patch('training', { history: [], step: 0, totalSteps: 0, startedAt: Date.now() });
      break;
    case 'recovering':
      s.notify(`${e.reason} — rebuilt the backend and resumed from epoch ${e.fromEpoch} with micro-batch ${e.microBatch}`);
      patch('training', { history: s.training.history.slice(0, e.fromEpoch) });
      break;
    case 'checkpoint': {
      const run = { epoch: e.epoch, epochs: e.epochs, fingerprint: e.fingerprint, classes: e.classes, name: s.training.name, backboneName: s.backbone.summary?.name ?? '' };
      saveRun({ ...run, bytes: e.bytes, split: s.dataset.split, dropped: s.dataset.dropped, renamed: s.dataset.renamed }).then(
        () => patch('training', { saved: run }),
        (err: Error) => isQuotaError(err)
          ? storageFull('the run goes on in memory, but its checkpoint could not be kept, so it cannot resume after a reload')
          : s.notify(`could not keep a checkpoint in browser storage (${err.message}); the run goes on in memory`),
      );
      break;
    }
  }
}

export function engine(): EngineClient {
  if (client) return client;
  client = new EngineClient(onEvent, (m) => { patch('engine', { phase: 'error', error: m }); useStore.getState().notify(m); });
  // ?backend=wasm (etc.) puts one backend first, for comparisons and tests; ?threads=N keeps wasm
  // to N cores (say, to leave the rest to other work).
  const q = new URLSearchParams(location.search);
  const prefer = (q.get('backend') as BackendName | null) ?? undefined;
  let threads: number | undefined;
  if (q.has('threads')) {
    const n = Number(q.get('threads'));
    if (Number.isInteger(n) && n >= 1) threads = n;
    else useStore.getState().notify(`?threads=${q.get('threads')} in the address is not a whole number of at least 1: wasm uses every core`);
  }
  // ?debug=1&fault=wasm-threads: the tests' way to see the page survive threads that fail to start.
  const breakThreads = q.get('debug') === '1' && q.get('fault') === 'wasm-threads';
  client.request({ type: 'init', prefer, threads, breakThreads }).then(
    (r) => patch('engine', { phase: 'ready', info: r.info, error: null }),
    (e: Error) => patch('engine', { phase: 'error', error: e.message }),
  );
  // ?debug=1 exposes fault injection to tests (device loss, out-of-memory).
  if (new URLSearchParams(location.search).get('debug') === '1') {
    const c = client;
    (window as unknown as { vptDebug: unknown }).vptDebug = { injectFault: (kind: 'lost' | 'oom') => c.request({ type: 'injectFault', kind }) };
  }
  return client;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
