import { useEffect } from 'react';
import { useStore } from '../store/store';
import { BackbonePanel } from './BackbonePanel';
import { BackendStatus } from './BackendStatus';
import { ComparePanel } from './ComparePanel';
import { DatasetPanel } from './DatasetPanel';
import { engine } from './engine';
import { LibraryPanel } from './LibraryPanel';
import { ResultsPanel } from './ResultsPanel';
import { StoragePanel } from './StoragePanel';
import { TrainPanel } from './TrainPanel';
import { listCached } from './hub';
import { findSavedRun } from './actions';
import { patch } from '../store/store';

export function App() {
  const notices = useStore((s) => s.notices);
  useEffect(() => {
    engine();
    listCached().then((cached) => patch('backbone', { cached }), () => undefined);
    void findSavedRun();
  }, []);
  return (
    <main>
      <header>
        <h1>VPT Studio</h1>
        <p>Visual Prompt Tuning of frozen Vision Transformers, on your own GPU, with nothing uploaded.</p>
        <BackendStatus />
      </header>
      {notices.length > 0 && <ul role="status" className="notices">{notices.map((n, i) => <li key={i}>{n}</li>)}</ul>}
      <StoragePanel />
      <BackbonePanel />
      <DatasetPanel />
      <TrainPanel />
      <ResultsPanel />
      <ComparePanel />
      <LibraryPanel />
    </main>
  );
}
