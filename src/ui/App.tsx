import { useEffect } from 'react';
import { useStore } from '../store/store';
import { BackendStatus } from './BackendStatus';
import { startEngine } from './engine';

export function App() {
  const notices = useStore((s) => s.notices);
  useEffect(() => { startEngine(); }, []);
  return (
    <main>
      <header>
        <h1>VPT Studio</h1>
        <p>Visual Prompt Tuning of frozen Vision Transformers, on your own GPU, with nothing uploaded.</p>
      </header>
      <BackendStatus />
      {notices.length > 0 && <ul role="status">{notices.map((n, i) => <li key={i}>{n}</li>)}</ul>}
    </main>
  );
}
