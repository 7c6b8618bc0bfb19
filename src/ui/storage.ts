/**
 * Browser storage running full. Every write to IndexedDB or Cache Storage
 * goes through here on failure: a quota error opens the Storage panel (what
 * is stored, oldest tasks first, each deletable) instead of losing the work;
 * the run, the download or the task stays in memory.
 */
import { patch } from '../store/store';

export function isQuotaError(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === 'QuotaExceededError' || /quota/i.test(String((e as Error | null)?.message ?? ''));
}

/** Say what could not be stored and why; open the panel that frees space. */
export function storageFull(what: string): void {
  const message = `Browser storage is full: ${what}. Delete older tasks or cached backbones below to make room.`;
  patch('storage', { full: message });
}
