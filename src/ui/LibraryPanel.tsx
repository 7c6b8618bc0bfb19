import { useEffect, useRef, useState } from 'react';
import { useStore } from '../store/store';
import { addToLibrary, classify, downloadFromLibrary, removeFromLibrary, syncLibrary } from './actions';
import { formatBytes, Thumb } from './Thumb';

export function LibraryPanel() {
  const lib = useStore((s) => s.library);
  const fp = useStore((s) => s.backbone.summary?.fingerprint);
  const trial = useStore((s) => s.trial);
  const [chosen, setChosen] = useState<string[] | null>(null);
  useEffect(() => { void syncLibrary(); }, []);
  const usable = lib.entries.filter((e) => !e.fingerprint || e.fingerprint === fp);
  const ids = chosen ?? usable.map((e) => e.id);
  const run = (blob: Blob) => classify(blob, ids.filter((id) => usable.some((e) => e.id === id)));
  const video = useRef<HTMLVideoElement>(null);
  const [camera, setCamera] = useState<MediaStream | null>(null);
  const [cameraError, setCameraError] = useState<string | null>(null);
  const startCamera = async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true });
      setCamera(stream);
      setCameraError(null);
    } catch (e) {
      setCameraError(`camera unavailable: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const stopCamera = () => { camera?.getTracks().forEach((t) => t.stop()); setCamera(null); };
  const snap = () => {
    const v = video.current;
    if (!v || !v.videoWidth) return;
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    c.getContext('2d')!.drawImage(v, 0, 0);
    c.toBlob((b) => b && run(b), 'image/png');
  };
  // Attach the stream once the <video> it needs is rendered. (A requestAnimationFrame after
  // setCamera could run before React rendered it: the stream was then never attached, flakily.)
  useEffect(() => {
    const v = video.current;
    if (camera && v && v.srcObject !== camera) { v.srcObject = camera; void v.play(); }
  }, [camera]);
  useEffect(() => () => camera?.getTracks().forEach((t) => t.stop()), [camera]);
  // File inputs clear their value after reading it, so picking the same file again (a retry) still fires change.
  const importFiles = async (files: FileList | File[]) => { for (const f of files) await addToLibrary(f.name, new Uint8Array(await f.arrayBuffer())); };
  return (
    <section aria-labelledby="lib-h" onPaste={(e) => { const f = [...e.clipboardData.files].find((x) => x.type.startsWith('image/')); if (f && fp) run(f); }}>
      <h2 id="lib-h">5. Task library and classification</h2>
      <div className="dropzone" onDragOver={(e) => e.preventDefault()} onDrop={(e) => { e.preventDefault(); importFiles(e.dataTransfer.files); }}>
        <label className="file">Import task files…
          <input type="file" multiple accept=".safetensors" disabled={!fp} data-testid="task-import" onChange={(e) => { const f = [...(e.target.files ?? [])]; e.target.value = ''; void importFiles(f); }} />
        </label>
        <span className="hint"> or drop them here. Tasks for another backbone are listed but cannot run.</span>
        {lib.error && <p role="alert" data-testid="library-error">{lib.error}</p>}
      </div>
      {lib.entries.length === 0 ? <p className="hint">No saved tasks yet.</p> : (
        <table data-testid="library">
          <thead><tr><th>Run</th><th>Task</th><th>Method</th><th>Classes</th><th>Accuracy</th><th>Size</th><th>Backbone</th><th /></tr></thead>
          <tbody>{lib.entries.map((e) => {
            const ok = usable.includes(e);
            return (
              <tr key={e.id} className={ok ? '' : 'muted'}>
                <td><input type="checkbox" disabled={!ok} checked={ok && ids.includes(e.id)} aria-label={`use task ${e.name}`}
                  onChange={(ev) => setChosen(ev.target.checked ? [...ids, e.id] : ids.filter((x) => x !== e.id))} /></td>
                <td>{e.name}</td><td>{e.title ?? `VPT-${(e as unknown as { variant: string }).variant}`}</td><td title={e.classes.join(', ')}>{e.classes.length}</td>
                <td>{e.accuracy === null ? '–' : `${(100 * e.accuracy).toFixed(1)}%`}</td><td>{formatBytes(e.bytes)}</td>
                <td>{ok ? e.backboneName : 'another backbone'}</td>
                <td><button onClick={() => downloadFromLibrary(e.id)}>Download</button> <button onClick={() => removeFromLibrary(e.id)} aria-label={`delete task ${e.name}`}>Delete</button></td>
              </tr>
            );
          })}</tbody>
        </table>
      )}
      <div className="row dropzone" onDragOver={(e) => e.preventDefault()}
        onDrop={(e) => { e.preventDefault(); e.stopPropagation(); const f = [...e.dataTransfer.files].find((x) => x.type.startsWith('image/')); if (f && fp) run(f); }}>
        <label className="file">Classify an image…
          <input type="file" accept="image/*" disabled={!fp || !ids.length} data-testid="classify-input" onChange={(e) => { const f = e.target.files?.[0]; e.target.value = ''; if (f) run(f); }} />
        </label>
        {camera ? <><button onClick={snap}>Classify this frame</button><button onClick={stopCamera}>Stop camera</button></> : <button disabled={!fp || !ids.length} onClick={startCamera}>Use camera</button>}
        <span className="hint">(or drop or paste an image) — every checked task runs on the same loaded backbone.</span>
      </div>
      {camera && <video ref={video} muted playsInline style={{ maxWidth: 320 }} />}
      {cameraError && <p role="alert">{cameraError}</p>}
      {trial.busy && <p aria-busy="true">Classifying…</p>}
      {trial.error && <p role="alert">{trial.error}</p>}
      {trial.preview && trial.predictions.length > 0 && (
        <div className="trial" data-testid="predictions">
          <Thumb t={trial.preview} size={96} />
          {trial.predictions.map((p) => (
            <div key={p.taskId}>
              <strong>{lib.entries.find((e) => e.id === p.taskId)?.name ?? p.taskId}</strong>
              <ol>{p.top.map((c) => <li key={c.name}><span className="cls">{c.name}</span> {(100 * c.probability).toFixed(1)}%<div className="bar" style={{ width: `${100 * c.probability}%` }} /></li>)}</ol>
            </div>
          ))}
        </div>
      )}
    </section>
  );
}
