import { useEffect, useState } from 'react';
import { patch, useStore } from '../store/store';
import { removeFromLibrary } from './actions';
import { deleteCached, listCached } from './hub';
import { formatBytes } from './Thumb';

/**
 * Opens when browser storage is full (ui/storage.ts): says what was not
 * stored and offers what is stored for deletion, oldest tasks first and the
 * largest cached backbones first, with the browser's own usage figures.
 */
export function StoragePanel() {
  const full = useStore((s) => s.storage.full);
  const tasks = useStore((s) => s.library.entries);
  const cached = useStore((s) => s.backbone.cached);
  const [usage, setUsage] = useState<{ usage: number; quota: number } | null>(null);
  const refresh = async () => {
    const est = await navigator.storage?.estimate?.().catch(() => undefined);
    setUsage(est?.usage !== undefined && est.quota !== undefined ? { usage: est.usage, quota: est.quota } : null);
  };
  useEffect(() => { if (full) void refresh(); }, [full]);
  if (!full) return null;
  const oldest = [...tasks].sort((a, b) => a.createdAt - b.createdAt);
  const largest = [...cached].sort((a, b) => b.bytes - a.bytes);
  return (
    <section role="alert" aria-labelledby="storage-h" className="storage-full" data-testid="storage-full">
      <h2 id="storage-h">Browser storage is full</h2>
      <p>{full}</p>
      {usage && <p>Using {formatBytes(usage.usage)} of {formatBytes(usage.quota)} this browser allows for the page.</p>}
      {oldest.length > 0 && <>
        <h3>Saved tasks (oldest first)</h3>
        <ul>{oldest.map((t) => (
          <li key={t.id}>{t.name} — {formatBytes(t.bytes)}, {new Date(t.createdAt).toLocaleString()}{' '}
            <button onClick={async () => { await removeFromLibrary(t.id); await refresh(); }} aria-label={`free space: delete task ${t.name}`}>Delete</button></li>
        ))}</ul>
      </>}
      {largest.length > 0 && <>
        <h3>Cached backbones (largest first; they download again when needed)</h3>
        <ul>{largest.map((c) => (
          <li key={c.url}>{c.url} — {formatBytes(c.bytes)}{' '}
            <button onClick={async () => { await deleteCached(c.url); patch('backbone', { cached: await listCached() }); await refresh(); }} aria-label={`free space: delete cached ${c.url}`}>Delete</button></li>
        ))}</ul>
      </>}
      {!oldest.length && !largest.length && <p>Nothing of ours is stored: other sites' data or a full disk take the space (browser settings, site data).</p>}
      <button onClick={() => patch('storage', { full: null })}>Dismiss</button>
    </section>
  );
}
