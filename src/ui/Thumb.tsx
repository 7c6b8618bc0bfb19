import { useEffect, useRef } from 'react';
import type { Thumb as ThumbData } from '../worker/protocol';

/** Draws a small RGB preview on a canvas. */
export function Thumb({ t, size = 40, title }: { t: ThumbData; size?: number; title?: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const ctx = ref.current?.getContext('2d');
    if (!ctx) return;
    const img = ctx.createImageData(t.width, t.height);
    for (let i = 0; i < t.width * t.height; i++) {
      img.data[i * 4] = t.rgb[i * 3]; img.data[i * 4 + 1] = t.rgb[i * 3 + 1]; img.data[i * 4 + 2] = t.rgb[i * 3 + 2]; img.data[i * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }, [t]);
  return <canvas ref={ref} width={t.width} height={t.height} style={{ width: size, height: size }} className="thumb" title={title} />;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function Progress({ value, max, label }: { value: number; max: number; label: string }) {
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuenow={value} aria-valuemin={0} aria-valuemax={max}>
      <div style={{ width: `${max ? (100 * value) / max : 0}%` }} />
      <span>{label}</span>
    </div>
  );
}
