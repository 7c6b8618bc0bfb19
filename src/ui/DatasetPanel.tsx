import { useStore, patch } from '../store/store';
import { fromFileList, walkEntries, type EntryLike } from '../data/folder-walk';
import { loadDataset, loadDemoDataset } from './actions';
import { Progress, Thumb } from './Thumb';

async function onDrop(e: React.DragEvent): Promise<void> {
  e.preventDefault();
  const roots = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry?.()).filter((x): x is FileSystemEntry => !!x);
  await loadDataset(await walkEntries(roots as unknown as EntryLike[]));
}

export function DatasetPanel() {
  const ds = useStore((s) => s.dataset);
  const ready = useStore((s) => s.backbone.summary !== null);
  const s = ds.summary;
  const max = s ? Math.max(...s.classes.map((c) => c.count)) : 0;
  return (
    <section aria-labelledby="ds-h">
      <h2 id="ds-h">2. Dataset</h2>
      {!ready && <p className="hint">Load a backbone first: images are resized the way it expects.</p>}
      <div className="row">
        <label className="file">Choose a folder…
          <input type="file" data-testid="folder-input" disabled={!ready || ds.phase === 'busy'} {...{ webkitdirectory: '', directory: '' }} multiple
            onChange={(e) => { const f = fromFileList(e.target.files ?? []); e.target.value = ''; if (f.length) void loadDataset(f); }} />
        </label>
        <button disabled={!ready || ds.phase === 'busy'} onClick={() => loadDemoDataset()} data-testid="demo-dataset">Demo dataset (notMNIST letters)</button>
      </div>
      <div className="dropzone" onDragOver={(e) => e.preventDefault()} onDrop={(e) => ready && onDrop(e)}>
        <p className="hint">Drop a folder with one sub-folder per class (or train/val/test folders of class folders).</p>
        {ds.phase === 'busy' && ds.progress && <Progress value={ds.progress.done} max={ds.progress.total} label={`decoding ${ds.progress.done} of ${ds.progress.total} images`} />}
        {ds.error && <p role="alert" data-testid="dataset-error">{ds.error}</p>}
      </div>
      {s && (
        <div data-testid="dataset-ready">
          <p>{s.classes.length} classes, {Object.entries(s.splits).map(([k, v]) => `${v} ${k}`).join(', ')} images ({s.kind === 'split' ? 'the dataset\'s own splits' : 'one folder per class'}).</p>
          {s.streamed && <p className="hint" data-testid="streamed">Too many images to keep decoded: each is read again from its file when a batch needs it (memory stays bounded; keep the folder where it is while training).</p>}
          <table className="classes">
            <thead><tr><th>Use</th><th>Class</th><th>Images</th><th>Balance</th><th>Samples</th></tr></thead>
            <tbody>{s.classes.map((c) => (
              <tr key={c.name}>
                <td><input type="checkbox" aria-label={`use class ${c.name}`} checked={!ds.dropped.includes(c.name)}
                  onChange={(e) => patch('dataset', { dropped: e.target.checked ? ds.dropped.filter((x) => x !== c.name) : [...ds.dropped, c.name] })} /></td>
                <td><input value={ds.renamed[c.name] ?? c.name} aria-label={`name of class ${c.name}`}
                  onChange={(e) => patch('dataset', { renamed: { ...ds.renamed, [c.name]: e.target.value } })} /></td>
                <td>{c.count}</td>
                <td><div className="bar" style={{ width: `${(100 * c.count) / Math.max(1, max)}%` }} /></td>
                <td>{c.thumbs.map((t, i) => <Thumb key={i} t={t} size={32} />)}</td>
              </tr>
            ))}</tbody>
          </table>
          <label>Validation split{' '}
            <select value={ds.split} onChange={(e) => patch('dataset', { split: e.target.value as typeof ds.split })}>
              <option value="fgvc">random 90/10 (the paper's FGVC rule)</option>
              <option value="vtab">80/20 (VTAB-1k's 800/200)</option>
              {s.splits.val && <option value="own">the dataset's own val folder</option>}
            </select>
          </label>
          {s.skipped.length > 0 && (
            <details data-testid="skipped" open={s.skipped.some((k) => !/hidden|system/.test(k.reason))}>
              <summary>{s.skipped.length} file{s.skipped.length > 1 ? 's' : ''} skipped</summary>
              <ul>{s.skipped.map((k) => <li key={k.path}><code>{k.path}</code>: {k.reason}</li>)}</ul>
            </details>
          )}
        </div>
      )}
    </section>
  );
}
