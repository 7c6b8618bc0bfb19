import { useState } from 'react';
import { useStore } from '../store/store';
import { loadBackboneFiles, loadDemoBackbone, loadHubBackbone } from './actions';
import { deleteCached, listCached } from './hub';
import { patch } from '../store/store';
import { formatBytes, Progress } from './Thumb';

/** Backbones users pick most; the paper's ViT-B/16 (ImageNet-21k) first. */
export const HUB_PRESETS = [
  { repo: 'google/vit-base-patch16-224-in21k', label: 'ViT-B/16, ImageNet-21k (the paper\'s backbone)', mb: 346 },
  { repo: 'WinKawaks/vit-small-patch16-224', label: 'ViT-S/16', mb: 88 },
  { repo: 'WinKawaks/vit-tiny-patch16-224', label: 'ViT-Ti/16', mb: 23 },
  { repo: 'google/vit-large-patch16-224-in21k', label: 'ViT-L/16, ImageNet-21k', mb: 1217 },
  { repo: 'timm/vit_base_patch16_224.augreg_in21k', label: 'ViT-B/16 (timm, AugReg in21k)', mb: 410 },
];

export function BackbonePanel() {
  const b = useStore((s) => s.backbone);
  const [repo, setRepo] = useState(HUB_PRESETS[0].repo);
  const busy = b.phase === 'busy';
  const preset = HUB_PRESETS.find((p) => p.repo === repo);
  const d = b.download;
  return (
    <section aria-labelledby="bb-h">
      <h2 id="bb-h">1. Backbone</h2>
      <div className="row">
        <label>Hugging Face model{' '}
          <input list="hub-presets" value={repo} onChange={(e) => setRepo(e.target.value.trim())} size={40} aria-label="Hugging Face repo id" />
        </label>
        <datalist id="hub-presets">{HUB_PRESETS.map((p) => <option key={p.repo} value={p.repo}>{p.label}</option>)}</datalist>
        <button disabled={busy} onClick={() => loadHubBackbone(repo)}>Download{preset ? ` (${preset.mb} MB)` : ''}</button>
        <button disabled={busy} onClick={() => loadDemoBackbone()} data-testid="demo-backbone" title="tiny-vit-mnist: a 0.2 M-parameter ViT really pretrained on handwritten digits, bundled with the page">Demo backbone: tiny ViT pretrained on digits (0.8 MB, offline, for trying the flow)</button>
        <label className="file">Open weights file…
          <input type="file" multiple accept=".safetensors,.npz,.json" disabled={busy} onChange={(e) => { const f = [...(e.target.files ?? [])]; e.target.value = ''; if (f.length) void loadBackboneFiles(f); }} data-testid="backbone-file" />
        </label>
      </div>
      <p className="hint">Or drop a .safetensors / .npz file (with its config.json) anywhere on this box. Weights stay on this computer.</p>
      <div className="dropzone" onDragOver={(e) => e.preventDefault()} onDrop={(e) => { e.preventDefault(); loadBackboneFiles([...e.dataTransfer.files]); }}>
        {d && <Progress value={d.loaded} max={d.total ?? d.loaded} label={`${d.file}: ${formatBytes(d.loaded)}${d.total ? ` of ${formatBytes(d.total)}` : ''} at ${formatBytes(d.bytesPerSecond)}/s${d.total ? `, ${Math.ceil((d.total - d.loaded) / Math.max(1, d.bytesPerSecond))} s left` : ''}`} />}
        {busy && !d && <p aria-busy="true">Loading…</p>}
        {b.error && <p role="alert" data-testid="backbone-error">{b.error}</p>}
        {b.summary && (
          <div data-testid="backbone-ready">
            <strong>{b.summary.name}</strong>: {b.summary.architecture}, {(b.summary.parameters / 1e6).toFixed(2)} M parameters, {formatBytes(b.summary.parameters * 4)} in memory as float32 (file {formatBytes(b.summary.bytes)}, {b.summary.format} naming)
            <div className="hint">Input {b.summary.preprocessing.size} px, mean {b.summary.preprocessing.mean.join('/')}, std {b.summary.preprocessing.std.join('/')} (from {b.summary.preprocessing.source}); fingerprint {b.summary.fingerprint.slice(0, 16)}…</div>
            {b.summary.warnings.map((w) => <div key={w} className="warn">{w}</div>)}
          </div>
        )}
      </div>
      {b.cached.length > 0 && (
        <details>
          <summary>Cached backbones ({formatBytes(b.cached.reduce((s, c) => s + c.bytes, 0))})</summary>
          <ul>{b.cached.map((c) => (
            <li key={c.url}>{c.url} — {formatBytes(c.bytes)} <button onClick={async () => { await deleteCached(c.url); patch('backbone', { cached: await listCached() }); }}>Delete</button></li>
          ))}</ul>
        </details>
      )}
    </section>
  );
}
