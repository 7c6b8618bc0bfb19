import { useStore } from '../store/store';

/** Which backend and adapter the engine got, with the reason for any fallback. */
export function BackendStatus() {
  const engine = useStore((s) => s.engine);
  if (engine.phase === 'busy') return <p data-testid="backend" aria-busy="true">Starting the engine…</p>;
  if (engine.phase === 'error' || !engine.info) return <p data-testid="backend" role="alert">The engine could not start: {engine.error}</p>;
  const info = engine.info;
  return (
    <div className="backend">
      <span data-testid="backend">
        Engine: <strong data-testid="backend-name">{info.backend}</strong>
        {info.adapter && <> on <span data-testid="adapter">{info.adapter}</span></>}
      </span>
      {info.fallbacks.length > 0 && (
        <ul data-testid="fallbacks">{info.fallbacks.map((f, i) => <li key={`${f.backend}-${i}`}>{f.backend} not used: {f.reason}</li>)}</ul>
      )}
      {Object.keys(info.limits).length > 0 && (
        <details>
          <summary>Adapter limits</summary>
          <dl>{Object.entries(info.limits).map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v.toLocaleString()}</dd></div>)}</dl>
        </details>
      )}
    </div>
  );
}
