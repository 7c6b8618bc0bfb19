import { useState } from 'react';
import { useStore } from '../store/store';
import { addToLibrary, download, exportTask } from './actions';
import { formatBytes, Thumb } from './Thumb';

export function ResultsPanel() {
  const o = useStore((s) => s.training.outcome);
  const name = useStore((s) => s.training.name);
  const bb = useStore((s) => s.backbone.summary);
  const [cell, setCell] = useState<[number, number] | null>(null);
  const [fp16, setFp16] = useState(false);
  const [official, setOfficial] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);
  const [lastSize, setLastSize] = useState<number | null>(null);
  if (!o) return null;
  const v = o.validation;
  const mistakes = o.examples.filter((e) => e.label !== e.predicted).sort((a, b) => b.confidence - a.confidence).slice(0, 12);
  const inCell = cell ? o.examples.filter((e) => e.label === cell[0] && e.predicted === cell[1]) : [];
  const doExport = async (save: boolean) => {
    const r = await exportTask(o.taskId, fp16, official ? 'official' : 'vpt');
    setLastSize(r.bytes.byteLength);
    if (save) { await addToLibrary(r.fileName, r.bytes); setSaved(r.fileName); } else download(r.bytes, r.fileName);
  };
  return (
    <section aria-labelledby="ev-h">
      <h2 id="ev-h">4. Evaluate and export</h2>
      {o.diverged && <p className="warn" role="alert" data-testid="diverged">Training diverged: {o.diverged}.</p>}
      <p data-testid="result-summary">
        {o.stopped ? 'Stopped early. ' : ''}Best epoch {o.bestEpoch} of {o.history.length}
        {v ? <>: validation accuracy <strong data-testid="val-accuracy">{(100 * v.accuracy).toFixed(1)}%</strong> on {v.count} images</> : ' (no validation images: the last epoch is kept)'}.
        {o.replay && <>{' '}<span data-testid="replay-summary">WebGPU {o.replay}.</span></>}
      </p>
      {v && (
        <div className="results">
          <table className="confusion" aria-label="Confusion matrix (rows: true class, columns: predicted)">
            <thead><tr><th>true \ predicted</th>{o.classes.map((c) => <th key={c}>{c}</th>)}<th>accuracy</th></tr></thead>
            <tbody>{v.confusion.map((row, i) => (
              <tr key={i}><th>{o.classes[i]}</th>
                {row.map((n, j) => (
                  <td key={j} className={i === j ? 'diag' : n ? 'off' : ''} style={{ opacity: n ? 1 : 0.4 }}>
                    <button disabled={!n} onClick={() => setCell([i, j])} aria-label={`${n} images of ${o.classes[i]} predicted as ${o.classes[j]}`}>{n}</button>
                  </td>
                ))}
                <td>{(100 * v.perClass[o.classes[i]]).toFixed(0)}%</td>
              </tr>
            ))}</tbody>
          </table>
          {cell && (
            <div className="gallery" data-testid="cell-images">
              <h3>{o.classes[cell[0]]} predicted as {o.classes[cell[1]]}</h3>
              {inCell.map((e) => <Thumb key={e.path} t={e.thumb} size={48} title={`${e.path} (${(100 * e.confidence).toFixed(0)}%)`} />)}
            </div>
          )}
          {mistakes.length > 0 && (
            <div className="gallery">
              <h3>Most confident mistakes</h3>
              {mistakes.map((e) => (
                <figure key={e.path}><Thumb t={e.thumb} size={48} title={e.path} />
                  <figcaption>{o.classes[e.label]} → {o.classes[e.predicted]} {(100 * e.confidence).toFixed(0)}%</figcaption></figure>
              ))}
            </div>
          )}
        </div>
      )}
      <div className="row">
        <label><input type="checkbox" checked={fp16} onChange={(e) => setFp16(e.target.checked)} /> float16</label>
        <label><input type="checkbox" checked={official} onChange={(e) => setOfficial(e.target.checked)} /> official PyTorch VPT names</label>
        <button onClick={() => doExport(false)} data-testid="export">Download {name}.vpt.safetensors</button>
        <button onClick={() => doExport(true)} data-testid="save-task">Save to library</button>
      </div>
      <p className="hint">
        {o.parameters.toLocaleString()} tuned parameters{lastSize !== null && <> — file {formatBytes(lastSize)}</>}
        {bb && <> against {formatBytes(bb.bytes)} for the backbone</>}. {saved && <span data-testid="saved">Saved {saved} to the library.</span>}
      </p>
    </section>
  );
}
