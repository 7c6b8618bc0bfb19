/** The task library in IndexedDB: task file bytes plus what the list shows. */
import type { LibraryEntry } from '../store/store';
import { isQuotaError, storageFull } from './storage';

const DB = 'vpt-studio';
const STORE = 'tasks';
const RUNS = 'runs';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 2);
    r.onupgradeneeded = () => {
      if (!r.result.objectStoreNames.contains(STORE)) r.result.createObjectStore(STORE, { keyPath: 'entry.id' });
      if (!r.result.objectStoreNames.contains(RUNS)) r.result.createObjectStore(RUNS);
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>, store = STORE): Promise<T> {
  return open().then((db) => new Promise<T>((resolve, reject) => {
    const t = db.transaction(store, mode);
    const req = f(t.objectStore(store));
    t.oncomplete = () => { resolve(req.result); db.close(); };
    t.onerror = () => { reject(t.error ?? req.error); db.close(); };
    t.onabort = () => { reject(t.error ?? new Error('storage transaction aborted')); db.close(); };
  }));
}

export interface StoredTask { entry: LibraryEntry; bytes: Uint8Array }

export function saveTask(t: StoredTask): Promise<unknown> {
  return tx('readwrite', (s) => s.put(t)).catch((e: DOMException) => {
    if (isQuotaError(e)) {
      storageFull(`the task "${t.entry.name}" was not saved to the library (export it instead, or make room and save again)`);
      throw new Error('browser storage is full: the task was not saved');
    }
    throw new Error(`could not save the task: ${e?.message ?? e}`);
  });
}

export function allTasks(): Promise<StoredTask[]> {
  return tx('readonly', (s) => s.getAll() as IDBRequest<StoredTask[]>);
}

export function deleteTask(id: string): Promise<unknown> {
  return tx('readwrite', (s) => s.delete(id));
}

/** The unfinished run: its last checkpoint and what is needed to resume it. */
export interface SavedRun {
  bytes: Uint8Array; epoch: number; epochs: number; fingerprint: string; classes: string[];
  name: string; backboneName: string; split: 'fgvc' | 'vtab' | 'own'; dropped: string[]; renamed: Record<string, string>;
}

// One put per epoch replaces the previous checkpoint in a single transaction: a half-written one is never read.
export const saveRun = (r: SavedRun) => tx('readwrite', (s) => s.put(r, 'current'), RUNS);
export const loadRun = () => tx('readonly', (s) => s.get('current') as IDBRequest<SavedRun | undefined>, RUNS);
export const clearRun = () => tx('readwrite', (s) => s.delete('current'), RUNS);
