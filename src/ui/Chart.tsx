/** A small SVG line chart of per-epoch series; cheap to redraw, so training is never slowed. */
export interface Series { name: string; color: string; values: (number | null)[] }

export function Chart({ series, title, max }: { series: Series[]; title: string; max?: number }) {
  const W = 300, H = 120, pad = 24;
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const hi = max ?? Math.max(1e-9, ...all);
  const x = (i: number) => pad + ((W - 2 * pad) * i) / (n - 1);
  const y = (v: number) => H - pad - ((H - 2 * pad) * Math.min(v, hi)) / hi;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
        <line x1={pad} y1={H - pad} x2={W - pad} y2={H - pad} stroke="#bbb" />
        <text x={2} y={pad} fontSize={9}>{hi.toPrecision(2)}</text>
        {series.map((s) => (
          <polyline key={s.name} fill="none" stroke={s.color} strokeWidth={1.5}
            points={s.values.map((v, i) => (v === null ? '' : `${x(i)},${y(v)}`)).filter(Boolean).join(' ')} />
        ))}
      </svg>
      <figcaption>{title}: {series.map((s) => <span key={s.name} style={{ color: s.color }}> {s.name}</span>)}</figcaption>
    </figure>
  );
}
