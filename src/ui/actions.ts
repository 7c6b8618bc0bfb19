/** What the buttons do: each action talks to the worker and records plain results in the store. */
import { safeFileName } from '../core/io/file-name';
import { compareCsv, summarise } from '../core/train/compare';
import { paperGrid, smallGrid } from '../core/train/search';
import { patch, useStore, type LibraryEntry } from '../store/store';
import type { DataFile } from '../worker/protocol';
import { engine, errorText } from './engine';
import { downloadBackbone, listCached, type HubFiles } from './hub';
import { allTasks, clearRun, deleteTask, loadRun, saveTask } from './library-db';

async function applyBackbone(name: string, files: Omit<HubFiles, 'fromCache'>): Promise<void> {
  const r = await engine().request({ type: 'loadBackbone', name, bytes: files.weights, config: files.config, preprocessor: files.preprocessor }, [files.weights]);
  patch('backbone', { phase: 'ready', summary: r.summary, error: null, download: null });
  patch('dataset', { phase: 'idle', summary: null, progress: null, dropped: [], renamed: {} });
  patch('training', { phase: 'idle', history: [], outcome: null, step: 0, error: null });
  await syncLibrary();
}

/** Keep the currently loaded backbone when a new one fails: only the error changes. */
async function guarded(f: () => Promise<void>): Promise<void> {
  const had = useStore.getState().backbone.summary;
  patch('backbone', { phase: 'busy', error: null });
  try { await f(); } catch (e) { patch('backbone', { phase: had ? 'ready' : 'error', error: errorText(e), download: null }); }
  patch('backbone', { cached: await listCached().catch(() => []) });
}

export const loadHubBackbone = (repo: string) => guarded(async () => {
  const files = await downloadBackbone(repo, (d) => patch('backbone', { download: d }));
  await applyBackbone(repo, files);
});

export const loadDemoBackbone = () => guarded(async () => {
  const get = async (f: string) => { const r = await fetch(`demo/tiny-vit-mnist/${f}`); if (!r.ok) throw new Error(`demo/${f}: ${r.status}`); return r; };
  const [w, c, p] = await Promise.all([get('model.safetensors'), get('config.json'), get('preprocessor_config.json')]);
  await applyBackbone('tiny-vit-mnist (demo)', { weights: await w.arrayBuffer(), config: await c.json(), preprocessor: await p.json() });
});

/** A dropped or picked weights file, with optional config.json / preprocessor_config.json beside it. */
export const loadBackboneFiles = (files: File[]) => guarded(async () => {
  const weights = files.find((f) => /\.(safetensors|npz)$/i.test(f.name));
  if (!weights) throw new Error(`${files.map((f) => f.name).join(', ') || 'nothing'}: no .safetensors or .npz file among the dropped files`);
  const json = async (name: string) => {
    const f = files.find((x) => x.name === name);
    if (!f) return undefined;
    try { return JSON.parse(await f.text()); } catch { throw new Error(`${name}: not valid JSON`); }
  };
  await applyBackbone(weights.name, { weights: await weights.arrayBuffer(), config: await json('config.json'), preprocessor: await json('preprocessor_config.json') });
});

export async function loadDataset(files: DataFile[]): Promise<void> {
  patch('dataset', { phase: 'busy', error: null, progress: { done: 0, total: files.length } });
  try {
    // ?pixelBudgetMB=N sets how many decoded pixels stay in memory before a dataset streams (tests use 0).
    const mb = new URLSearchParams(location.search).get('pixelBudgetMB');
    const r = await engine().request({ type: 'loadDataset', files, pixelBudget: mb === null ? undefined : Number(mb) * 2 ** 20 });
    patch('dataset', { phase: 'ready', summary: r.summary, dropped: [], renamed: {}, split: r.summary.splits.val ? 'own' : 'fgvc' });
  } catch (e) {
    // The engine keeps the dataset it had: so does the page, and says so.
    const had = useStore.getState().dataset.summary !== null;
    patch('dataset', { phase: had ? 'ready' : 'error', error: errorText(e) + (had ? ' (the dataset loaded before is kept)' : ''), progress: null });
  }
}

export async function loadDemoDataset(): Promise<void> {
  const index = (await (await fetch('demo/notmnist/index.txt')).text()).split('\n').filter(Boolean);
  const files = await Promise.all(index.map(async (p) => ({ path: p, file: await (await fetch(`demo/notmnist/${p}`)).blob() })));
  await loadDataset(files);
}

/** The Train panel's memory budget in bytes. */
const budgetBytes = () => useStore.getState().training.memoryGiB * 1024 ** 3;

export async function startTraining(resume = false): Promise<void> {
  const { training, dataset } = useStore.getState();
  const saved = resume ? await loadRun() : undefined;
  if (resume && !saved) { patch('training', { error: 'the saved run is gone from browser storage', saved: null }); return; }
  if (saved) patch('dataset', { split: saved.split, dropped: saved.dropped, renamed: saved.renamed });
  patch('training', { phase: 'running', history: [], step: 0, totalSteps: 0, outcome: null, error: null, startedAt: Date.now(), ...(saved ? { name: saved.name } : {}) });
  try {
    const d = saved ?? dataset;
    const r = await engine().request({
      type: 'train', config: training.config, edits: { dropped: d.dropped, renamed: d.renamed }, split: d.split,
      name: saved?.name ?? training.name, resume: saved ? saved.bytes.slice().buffer : undefined, memoryBudget: budgetBytes(),
    });
    patch('training', { phase: 'done', outcome: r.outcome, history: r.outcome.history, saved: null });
    await clearRun().catch(() => undefined);
  } catch (e) {
    patch('training', { phase: 'error', error: errorText(e) });
  }
}

/** Look for a run that a closed or reloaded tab left unfinished. */
export async function findSavedRun(): Promise<void> {
  const r = await loadRun().catch(() => undefined);
  if (r) patch('training', { saved: { epoch: r.epoch, epochs: r.epochs, fingerprint: r.fingerprint, classes: r.classes, name: r.name, backboneName: r.backboneName } });
}

export async function discardSavedRun(): Promise<void> {
  await clearRun().catch(() => undefined);
  patch('training', { saved: null });
}

export const pauseTraining = () => engine().request({ type: 'pause' }).then(() => patch('training', { phase: 'paused' }));
export const resumeTraining = () => engine().request({ type: 'resume' }).then(() => patch('training', { phase: 'running' }));
export const stopTraining = () => engine().request({ type: 'stop' });

export async function exportTask(taskId: string, fp16: boolean, naming: 'vpt' | 'official'): Promise<{ bytes: Uint8Array; fileName: string }> {
  const r = await engine().request({ type: 'exportTask', taskId, fp16, naming });
  return { bytes: r.bytes, fileName: r.fileName };
}

export function download(bytes: Uint8Array, fileName: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Store a task file in the library (IndexedDB) and make it runnable in the engine. */
export async function addToLibrary(name: string, bytes: Uint8Array): Promise<void> {
  try {
    const id = `task-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const copy = bytes.slice();
    const r = await engine().request({ type: 'loadTask', name, bytes: copy.buffer, id });
    const entry: LibraryEntry = {
      id, name: name.replace(/\.vpt\.safetensors$|\.safetensors$/, ''), classes: r.task.classes, protocol: r.task.protocol, title: r.task.title,
      accuracy: r.task.accuracy, fingerprint: r.task.fingerprint, backboneName: useStore.getState().backbone.summary?.name ?? '', bytes: bytes.byteLength, createdAt: Date.now(),
    };
    await saveTask({ entry, bytes });
    r.task.warnings.forEach((w) => useStore.getState().notify(`${name}: ${w}`));
    patch('library', { entries: [...useStore.getState().library.entries, entry], error: null });
  } catch (e) {
    patch('library', { error: errorText(e) });
  }
}

/** Load the library and hand the current backbone's tasks to the engine. */
export async function syncLibrary(): Promise<void> {
  try {
    const stored = await allTasks();
    const fp = useStore.getState().backbone.summary?.fingerprint;
    for (const t of stored) {
      if (fp && t.entry.fingerprint === fp) await engine().request({ type: 'loadTask', name: t.entry.name, bytes: t.bytes.slice().buffer, id: t.entry.id }).catch(() => undefined);
    }
    patch('library', { entries: stored.map((t) => t.entry).sort((a, b) => a.createdAt - b.createdAt), error: null });
  } catch (e) {
    patch('library', { error: errorText(e) });
  }
}

export async function removeFromLibrary(id: string): Promise<void> {
  await deleteTask(id);
  await engine().request({ type: 'forgetTask', taskId: id });
  patch('library', { entries: useStore.getState().library.entries.filter((e) => e.id !== id) });
}

export async function downloadFromLibrary(id: string): Promise<void> {
  const t = (await allTasks()).find((x) => x.entry.id === id);
  if (t) download(t.bytes, `${safeFileName(t.entry.name)}.vpt.safetensors`);
}

export async function classify(image: Blob, taskIds: string[]): Promise<void> {
  patch('trial', { busy: true, error: null });
  try {
    const r = await engine().request({ type: 'classify', image, taskIds, top: 5 });
    patch('trial', { busy: false, preview: r.preview, predictions: r.predictions });
  } catch (e) {
    patch('trial', { busy: false, error: errorText(e), predictions: [] });
  }
}

/** Time one real training step on the engine, to estimate the time per epoch before starting. */
export async function measureSpeed(): Promise<{ msPerStep: number; microBatch: number; replayed: boolean } | null> {
  const { training, dataset } = useStore.getState();
  const classes = dataset.summary ? dataset.summary.classes.length - dataset.dropped.length : 2;
  try {
    const r = await engine().request({ type: 'measure', config: training.config, classes, memoryBudget: budgetBytes() });
    return { msPerStep: r.msPerStep, microBatch: r.microBatch, replayed: r.replayed };
  } catch (e) {
    useStore.getState().notify(`speed measurement failed: ${errorText(e)}`);
    return null;
  }
}

/** Run the chosen protocols one after another on the current split, with the Train panel's budget. */
export async function startCompare(): Promise<void> {
  const { training, dataset, compare } = useStore.getState();
  if (!compare.specs.length) { patch('compare', { error: 'pick at least one protocol' }); return; }
  patch('compare', { phase: 'running', runs: [], current: null, error: null });
  patch('training', { phase: 'running', error: null, outcome: null });
  try {
    const seeds = Array.from({ length: Math.max(1, compare.seeds) }, (_, i) => training.config.seed + i);
    const r = await engine().request({
      type: 'compare', settings: { ...training.config, lr: compare.sameLr ? training.config.lr : 0 }, specs: compare.specs, seeds,
      edits: { dropped: dataset.dropped, renamed: dataset.renamed }, split: dataset.split, fp16: true, memoryBudget: budgetBytes(),
    });
    patch('compare', { phase: 'done', runs: r.runs, current: null });
    patch('training', { phase: 'idle' });
  } catch (e) {
    patch('compare', { phase: 'error', error: errorText(e), current: null });
    patch('training', { phase: 'idle' });
  }
}

export function downloadCompareCsv(): void {
  const { compare, backbone } = useStore.getState();
  const csv = compareCsv(summarise(compare.runs), compare.tasks, backbone.summary?.parameters ?? 1);
  download(new TextEncoder().encode(csv), 'vpt-compare.csv');
}

/** Grid search over lr x wd for the Train panel's protocol; the best setting is retrained and becomes a task. */
export async function startSearch(): Promise<void> {
  const { training, dataset, search } = useStore.getState();
  const grid = search.grid === 'paper' ? paperGrid(training.config) : smallGrid(training.config);
  const cells = grid.lr.flatMap((lr) => grid.wd.map((wd) => ({ lr, wd, status: 'pending' as const, accuracy: null, epochs: 0 })));
  patch('search', { phase: 'running', cells, best: null, final: false, note: null, error: null });
  patch('training', { phase: 'running', history: [], step: 0, totalSteps: 0, outcome: null, error: null, startedAt: Date.now() });
  try {
    const r = await engine().request({ type: 'search', config: training.config, grid, edits: { dropped: dataset.dropped, renamed: dataset.renamed }, split: dataset.split, name: training.name, memoryBudget: budgetBytes() });
    patch('search', { phase: 'done', cells: r.cells, best: r.best, note: `tuned on ${r.tuneTrain}/${r.tuneVal} images (${r.rule === 'vtab' ? 'VTAB 800/200' : '90/10'} of the training split), then retrained on all ${r.tuneTrain + r.tuneVal}` });
    patch('training', { phase: 'done', outcome: r.outcome, history: r.outcome.history });
  } catch (e) {
    patch('search', { phase: 'error', error: errorText(e) });
    patch('training', { phase: 'idle' });
  }
}
