/** The task library in IndexedDB: task file bytes plus what the list shows. */
import type { LibraryEntry } from '../store/store';

const DB = 'vpt-studio';
const STORE = 'tasks';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: 'entry.id' });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return open().then((db) => new Promise<T>((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const req = f(t.objectStore(STORE));
    t.oncomplete = () => { resolve(req.result); db.close(); };
    t.onerror = () => { reject(t.error ?? req.error); db.close(); };
    t.onabort = () => { reject(t.error ?? new Error('storage transaction aborted')); db.close(); };
  }));
}

export interface StoredTask { entry: LibraryEntry; bytes: Uint8Array }

export function saveTask(t: StoredTask): Promise<unknown> {
  return tx('readwrite', (s) => s.put(t)).catch((e: DOMException) => {
    throw new Error(e?.name === 'QuotaExceededError' ? 'browser storage is full: delete old tasks or cached backbones' : `could not save the task: ${e?.message ?? e}`);
  });
}

export function allTasks(): Promise<StoredTask[]> {
  return tx('readonly', (s) => s.getAll() as IDBRequest<StoredTask[]>);
}

export function deleteTask(id: string): Promise<unknown> {
  return tx('readwrite', (s) => s.delete(id));
}
