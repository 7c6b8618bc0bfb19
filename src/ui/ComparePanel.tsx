/**
 * The paper's table on the user's data: pick protocols, run them on the same
 * split with the Train panel's budget, read accuracy against what each task
 * costs to store; and the learning-rate x weight-decay search.
 */
import { storedMultiple, summarise, type CompareSummary } from '../core/train/compare';
import { PROTOCOLS } from '../core/tuning/registry';
import type { ProtocolName } from '../core/tuning/types';
import { patch, useStore } from '../store/store';
import { downloadCompareCsv, startCompare, startSearch, stopTraining } from './actions';
import { formatBytes } from './Thumb';

const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)}%`);

/** Accuracy against stored size (log scale), one dot per protocol. */
function StorageChart({ rows, tasks, backboneParams }: { rows: CompareSummary[]; tasks: number; backboneParams: number }) {
  const W = 360, H = 180, pad = 32;
  const xs = rows.map((r) => Math.log10(storedMultiple(r, tasks, backboneParams)));
  const lo = Math.min(0, ...xs), hi = Math.max(lo + 1e-3, ...xs);
  const x = (v: number) => pad + ((W - 2 * pad) * (v - lo)) / (hi - lo);
  const y = (a: number) => H - pad - (H - 2 * pad) * a;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label="Accuracy against stored size" data-testid="compare-chart">
        <line x1={pad} y1={H - pad} x2={W - pad} y2={H - pad} stroke="#bbb" />
        <line x1={pad} y1={pad} x2={pad} y2={H - pad} stroke="#bbb" />
        <text x={2} y={pad} fontSize={9}>100%</text>
        <text x={2} y={H - pad} fontSize={9}>0%</text>
        <text x={pad} y={H - 8} fontSize={9}>{(10 ** lo).toFixed(2)}x</text>
        <text x={W - pad - 30} y={H - 8} fontSize={9}>{(10 ** hi).toFixed(2)}x</text>
        {rows.map((r, i) => r.accuracy !== null && (
          <g key={r.protocol}>
            <circle cx={x(xs[i])} cy={y(r.accuracy)} r={4} fill="#2b59c3" />
            <text x={x(xs[i]) + 6} y={y(r.accuracy) - 4} fontSize={9}>{r.title}</text>
          </g>
        ))}
      </svg>
      <figcaption>Validation accuracy against the total stored for {tasks} tasks, as a multiple of one backbone (log scale).</figcaption>
    </figure>
  );
}

function SearchGrid() {
  const s = useStore((st) => st.search);
  const lrs = [...new Set(s.cells.map((c) => c.lr))];
  const wds = [...new Set(s.cells.map((c) => c.wd))];
  if (!s.cells.length) return null;
  return (
    <table className="grid-table" data-testid="search-grid">
      <caption>Validation accuracy on the tuning split, by learning rate (rows, per 256 images) and weight decay (columns)</caption>
      <thead><tr><th>lr \ wd</th>{wds.map((w) => <th key={w}>{w}</th>)}</tr></thead>
      <tbody>
        {lrs.map((lr) => (
          <tr key={lr}>
            <th>{lr.toPrecision(3)}</th>
            {wds.map((wd) => {
              const c = s.cells.find((x) => x.lr === lr && x.wd === wd)!;
              const best = s.best && s.best.lr === lr && s.best.wd === wd;
              return (
                <td key={wd} className={`cell-${c.status}${best ? ' best' : ''}`} title={c.reason ?? c.status} data-status={c.status}>
                  {c.status === 'pending' ? '·' : c.status === 'diverged' ? 'diverged' : `${pct(c.accuracy)}${c.status === 'running' ? ` (epoch ${c.epochs})` : c.status === 'stopped-early' ? ' stopped' : ''}`}
                  {best ? ' ★' : ''}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ComparePanel() {
  const c = useStore((s) => s.compare);
  const s = useStore((st) => st.search);
  const bb = useStore((st) => st.backbone.summary);
  const ds = useStore((st) => st.dataset);
  const trainPhase = useStore((st) => st.training.phase);
  const method = useStore((st) => st.training.config.protocol);
  const busy = trainPhase === 'running' || trainPhase === 'paused';
  const ready = !!bb && ds.phase === 'ready' && !busy;
  const rows = summarise(c.runs);
  const P = bb?.parameters ?? 1;
  const toggle = (name: ProtocolName, on: boolean, n: number) => {
    const rest = c.specs.filter((x) => x.name !== name);
    const specs = on ? [...rest, { name, n }] : rest;
    // Keep the paper's order whatever order they were ticked in.
    patch('compare', { specs: PROTOCOLS.flatMap((p) => specs.filter((x) => x.name === p.name)) });
  };
  return (
    <section aria-labelledby="cmp-h">
      <h2 id="cmp-h">Compare protocols</h2>
      <p className="hint">Each protocol trains on the same split with the Train panel's epochs, batch size, optimiser and seed, one after another. Linear and Mlp compute every image's features once.</p>
      <fieldset disabled={busy}>
        <legend>Protocols</legend>
        {PROTOCOLS.map((p) => {
          const spec = c.specs.find((x) => x.name === p.name);
          const n = spec?.n ?? p.size?.default ?? 0;
          return (
            <span key={p.name} className="proto-pick">
              <label><input type="checkbox" checked={!!spec} onChange={(e) => toggle(p.name, e.target.checked, n)} aria-label={`compare ${p.name}`} /> {p.title(n).replace(/ \(.*\)$/, '')}</label>
              {p.size && <input type="number" min={p.size.min} max={p.size.max} value={n} aria-label={`${p.name} ${p.size.label}`} title={p.size.label}
                onChange={(e) => toggle(p.name, true, Number(e.target.value))} />}
            </span>
          );
        })}
        <div className="grid">
          <label>Seeds <input type="number" min={1} max={10} value={c.seeds} aria-label="Seeds" onChange={(e) => patch('compare', { seeds: Number(e.target.value) })} /></label>
          <label>Tasks to store (N) <input type="number" min={1} value={c.tasks} aria-label="Tasks to store" onChange={(e) => patch('compare', { tasks: Math.max(1, Number(e.target.value)) })} /></label>
          <label><input type="checkbox" checked={c.sameLr} onChange={(e) => patch('compare', { sameLr: e.target.checked })} /> Train panel's learning rate for all (else each protocol's default)</label>
        </div>
      </fieldset>
      {c.specs.some((x) => x.name === 'full') && <p className="warn" role="note">{PROTOCOLS.find((p) => p.name === 'full')!.warning}</p>}
      <div className="row">
        <button disabled={!ready || !c.specs.length} onClick={() => startCompare()} data-testid="compare-run">Run comparison</button>
        {c.phase === 'running' && <button onClick={() => stopTraining()}>Stop</button>}
        <span data-testid="compare-phase">{c.phase}</span>
        {c.current && c.phase === 'running' && <span> run {c.current.index + 1} of {c.current.total}: {c.current.title}, seed {c.current.seed}</span>}
      </div>
      {c.error && <p role="alert" data-testid="compare-error">{c.error}</p>}
      {rows.length > 0 && (
        <>
          <table data-testid="compare-table">
            <thead><tr><th>Protocol</th><th>Validation accuracy</th><th>Tuned parameters</th><th>Task file</th><th>Stored for {c.tasks} tasks</th><th>Training time</th><th>Peak memory</th></tr></thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.protocol} data-protocol={r.protocol}>
                  <td>{r.title}</td>
                  <td>{pct(r.accuracy)}{r.accuracyStd !== null ? ` ± ${(100 * r.accuracyStd).toFixed(1)}` : ''}{r.runs > 1 ? ` (${r.runs} seeds)` : ''}</td>
                  <td>{r.tunedParams.toLocaleString()} ({(100 * r.tunedParams / P).toFixed(2)}%)</td>
                  <td>{formatBytes(r.fileBytes)}</td>
                  <td>{storedMultiple(r, c.tasks, P).toFixed(2)}x</td>
                  <td>{r.seconds.toFixed(1)} s</td>
                  <td>{r.peakBytes === null ? '–' : formatBytes(r.peakBytes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <StorageChart rows={rows} tasks={c.tasks} backboneParams={P} />
          <button onClick={() => downloadCompareCsv()} data-testid="compare-csv">Download table (CSV)</button>
        </>
      )}
      <h3>Search learning rate and weight decay</h3>
      <p className="hint">For the Train panel's method ({method.name}): every setting trains on 90% of the training split (800/200 for 1 000 images, as VTAB-1k) and is scored on the rest; hopeless settings stop early; the best is retrained on the whole training split and becomes a task.</p>
      <div className="row">
        <label>Grid{' '}
          <select value={s.grid} onChange={(e) => patch('search', { grid: e.target.value as 'small' | 'paper' })} aria-label="Grid" disabled={busy}>
            <option value="small">small: 3 rates x 2 decays</option>
            <option value="paper">the paper's: 10 rates x 4 decays</option>
          </select>
        </label>
        <button disabled={!ready} onClick={() => startSearch()} data-testid="search-run">Search</button>
        {s.phase === 'running' && <button onClick={() => stopTraining()}>Stop</button>}
        <span data-testid="search-phase">{s.phase}{s.final && s.phase === 'running' ? ': retraining the best setting on all training data' : ''}</span>
      </div>
      {s.error && <p role="alert">{s.error}</p>}
      <SearchGrid />
      {s.note && <p className="hint">{s.note}</p>}
    </section>
  );
}
