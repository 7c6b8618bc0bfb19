/**
 * Backbone downloads from the Hugging Face hub (`{hub}/{repo}/resolve/main/{file}`)
 * with byte progress, cached in Cache Storage so a second load makes no request.
 */
import { isQuotaError, storageFull } from './storage';
import type { Download } from '../store/store';

export const DEFAULT_HUB = 'https://huggingface.co';
const CACHE = 'vpt-backbones-v1';

export interface HubFiles { weights: ArrayBuffer; config?: unknown; preprocessor?: unknown; fromCache: boolean }

export function hubBase(): string {
  // ?hub=URL points the studio at a mirror (the tests use a local server).
  return new URLSearchParams(location.search).get('hub') ?? DEFAULT_HUB;
}

export function fileUrl(hub: string, repo: string, file: string): string {
  return `${hub.replace(/\/$/, '')}/${repo}/resolve/main/${file}`;
}

async function readWithProgress(res: Response, file: string, onProgress: (d: Download) => void): Promise<ArrayBuffer> {
  const total = Number(res.headers.get('content-length')) || null;
  if (total) await checkQuota(total, file);
  if (!res.body) return res.arrayBuffer();
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const t0 = performance.now();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    onProgress({ file, loaded, total, bytesPerSecond: loaded / Math.max(0.001, (performance.now() - t0) / 1000) });
  }
  const out = new Uint8Array(loaded);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.byteLength; }
  return out.buffer;
}

async function checkQuota(bytes: number, file: string): Promise<void> {
  const est = await navigator.storage?.estimate?.();
  if (est?.quota !== undefined && est.usage !== undefined && bytes > est.quota - est.usage) {
    throw new Error(`${file}: ${(bytes / 1e6).toFixed(0)} MB will not fit in this browser's storage (${((est.quota - est.usage) / 1e6).toFixed(0)} MB free); delete cached backbones or free disk space`);
  }
  await navigator.storage?.persist?.().catch(() => false);
}

async function getFile(url: string, file: string, optional: boolean, onProgress: (d: Download) => void): Promise<{ body: ArrayBuffer | null; cached: boolean }> {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(url);
  if (hit) return { body: hit.status === 404 ? null : await hit.arrayBuffer(), cached: true };
  const res = await fetch(url);
  if (res.status === 404 && optional) {
    // Remember that an optional file is absent, so a cached backbone loads with no request at all.
    await cache.put(url, new Response(null, { status: 404 })).catch(() => undefined);
    return { body: null, cached: false };
  }
  if (!res.ok) throw new Error(`${url}: the hub answered ${res.status} ${res.statusText}`);
  const body = await readWithProgress(res, file, onProgress);
  // The size goes into the cached headers so listing the cache never reads a 340 MB body.
  try {
    await cache.put(url, new Response(body, { headers: { 'content-type': res.headers.get('content-type') ?? 'application/octet-stream', 'x-vpt-bytes': String(body.byteLength) } }));
  } catch (e) {
    // The download is in memory and loads anyway; only the cache for next time is lost.
    if (isQuotaError(e)) storageFull(`${file} was downloaded and loads now, but could not be cached for next time`);
    else throw e;
  }
  return { body, cached: false };
}

export async function downloadBackbone(repo: string, onProgress: (d: Download) => void, hub = hubBase()): Promise<HubFiles> {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) throw new Error(`"${repo}" is not a Hugging Face repo id (owner/name)`);
  const json = async (file: string) => {
    const r = await getFile(fileUrl(hub, repo, file), file, true, onProgress);
    if (!r.body) return undefined;
    try { return JSON.parse(new TextDecoder().decode(r.body)); } catch { throw new Error(`${repo}/${file}: not valid JSON`); }
  };
  const config = await json('config.json');
  const preprocessor = await json('preprocessor_config.json');
  const w = await getFile(fileUrl(hub, repo, 'model.safetensors'), 'model.safetensors', false, onProgress);
  return { weights: w.body!, config, preprocessor, fromCache: w.cached };
}

export async function listCached(): Promise<{ url: string; bytes: number }[]> {
  if (typeof caches === 'undefined') return [];
  const cache = await caches.open(CACHE);
  const out: { url: string; bytes: number }[] = [];
  for (const req of await cache.keys()) {
    if (!req.url.endsWith('model.safetensors')) continue;
    const res = await cache.match(req);
    out.push({ url: req.url, bytes: Number(res?.headers.get('x-vpt-bytes')) || 0 });
  }
  return out;
}

export async function deleteCached(url: string): Promise<void> {
  const cache = await caches.open(CACHE);
  const prefix = url.slice(0, url.lastIndexOf('/') + 1);
  for (const req of await cache.keys()) if (req.url.startsWith(prefix)) await cache.delete(req);
}
