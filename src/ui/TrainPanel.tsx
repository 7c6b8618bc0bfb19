import { defaultLr, type TrainConfig } from '../core/train/config';
import { plannedParams } from '../core/tuning/params';
import { PROTOCOLS, promptTokens, protocolOf } from '../core/tuning/registry';
import type { ProtocolName } from '../core/tuning/types';
import { activationBytesPerImage, attentionForm, describePlan, formatBudget, planPasses, validBudget } from '../core/train/memory';
import { patch, useStore } from '../store/store';
import { useState } from 'react';
import { discardSavedRun, measureSpeed, pauseTraining, resumeTraining, startTraining, stopTraining } from './actions';
import { Chart } from './Chart';
import { formatBytes, Progress } from './Thumb';

function Field({ label, k, step, min, max }: { label: string; k: keyof TrainConfig; step?: number; min?: number; max?: number }) {
  const config = useStore((s) => s.training.config);
  const running = useStore((s) => s.training.phase === 'running' || s.training.phase === 'paused');
  return (
    <label>{label}{' '}
      <input type="number" value={config[k] as number} step={step ?? 1} min={min} max={max} disabled={running} aria-label={label}
        onChange={(e) => patch('training', { config: { ...config, [k]: Number(e.target.value) } })} />
    </label>
  );
}

export function TrainPanel() {
  const t = useStore((s) => s.training);
  const bb = useStore((s) => s.backbone.summary);
  const ds = useStore((s) => s.dataset);
  const engineInfo = useStore((s) => s.engine.info);
  const c = t.config;
  const budgetBytes = t.memoryGiB * 1024 ** 3;
  const budgetOk = validBudget(budgetBytes);
  const canTrain = !!bb && ds.phase === 'ready' && t.phase !== 'running' && t.phase !== 'paused' && budgetOk;
  const classes = ds.summary ? ds.summary.classes.filter((k) => !ds.dropped.includes(k.name)).length : 0;
  const images = ds.summary ? ds.summary.classes.filter((k) => !ds.dropped.includes(k.name)).reduce((s, k) => s + k.count, 0) : 0;
  const proto = protocolOf(c.protocol.name);
  const prompts = promptTokens(c.protocol);
  const params = bb ? plannedParams(proto, bb.config, c.protocol.n, Math.max(2, classes)) : 0;
  // The engine worker runs webgpu's fused kernels, or wasm's SIMD or per-head attention, which keep less (attentionForm).
  const engine = { backend: engineInfo?.backend, fused: engineInfo?.backend === 'webgpu', simd: engineInfo?.simd };
  const activations = bb ? activationBytesPerImage(bb.config, prompts, false, attentionForm(bb.config, prompts, c.protocol.name, engine)) * c.batch : 0;
  // The passes the engine will plan within the memory budget (the same planner, so the same answer).
  const plan = bb && budgetOk ? describePlan(planPasses(bb.config, c, { budgetBytes, ...engine, maxBindingBytes: engineInfo?.limits.maxStorageBufferBindingSize }), c) : null;
  const h = t.history;
  const last = h.at(-1);
  const elapsed = (Date.now() - t.startedAt) / 1000;
  const left = t.step ? (elapsed / t.step) * (t.totalSteps - t.step) : null;
  const set = (p: Partial<TrainConfig>) => patch('training', { config: { ...c, ...p } });
  const [speed, setSpeed] = useState<{ msPerStep: number; microBatch: number; replayed: boolean; key: string } | null>(null);
  const [measuring, setMeasuring] = useState(false);
  const key = `${c.protocol.name}/${c.protocol.n}/${c.batch}/${c.microBatch}/${bb?.fingerprint}`;
  const stepsPerEpoch = Math.ceil(images * (ds.split === 'vtab' ? 0.8 : 0.9) / c.batch);
  return (
    <section aria-labelledby="tr-h">
      <h2 id="tr-h">3. Train</h2>
      <div className="grid">
        <label>Method{' '}
          <select value={c.protocol.name} disabled={t.phase === 'running'} aria-label="Method" data-testid="method"
            onChange={(e) => { const p = protocolOf(e.target.value as ProtocolName); set({ protocol: { name: p.name, n: p.size?.default ?? 0 }, lr: defaultLr(c.optimizer, p.name) }); }}>
            {PROTOCOLS.map((p) => <option key={p.name} value={p.name}>{p.title(p.size?.default ?? 0).replace(/ \(.*\)$/, '')}</option>)}
          </select>
        </label>
        {proto.size && (
          <label>{proto.size.label === 'prompts' ? 'Prompt tokens' : `${proto.size.label[0].toUpperCase()}${proto.size.label.slice(1)}`}{' '}
            <input type="number" min={proto.size.min} max={proto.size.max} value={c.protocol.n} disabled={t.phase === 'running'}
              aria-label={proto.size.label === 'prompts' ? 'Prompt tokens' : proto.size.label}
              onChange={(e) => set({ protocol: { name: c.protocol.name, n: Number(e.target.value) } })} />
          </label>
        )}
        <Field label="Epochs" k="epochs" min={1} />
        <Field label="Batch size" k="batch" min={1} />
        <Field label="Learning rate (per 256 images)" k="lr" step={0.01} min={0} />
        <Field label="Weight decay" k="weightDecay" step={0.0001} min={0} />
        <label>Optimiser{' '}
          <select value={c.optimizer} onChange={(e) => { const o = e.target.value as TrainConfig['optimizer']; set({ optimizer: o, lr: defaultLr(o, c.protocol.name) }); }} aria-label="Optimiser">
            <option value="sgd">SGD (momentum 0.9)</option><option value="adamw">AdamW</option>
          </select>
        </label>
        <Field label="Warm-up epochs" k="warmupEpochs" min={0} />
        <Field label="Prompt dropout" k="promptDropout" step={0.05} min={0} max={0.9} />
        <Field label="Seed" k="seed" />
        <label>Augmentation{' '}<input type="checkbox" checked={c.augment} onChange={(e) => set({ augment: e.target.checked })} aria-label="Augmentation" /></label>
        <label>Task name{' '}<input value={t.name} onChange={(e) => patch('training', { name: e.target.value })} aria-label="Task name" /></label>
        <label title="Memory for a whole training step, the backbone included. Larger batches run as passes within it, with the same result; raise it on a GPU with more memory for faster steps.">Memory budget (GiB){' '}
          <input type="number" value={t.memoryGiB} step={0.5} min={0.25} disabled={t.phase === 'running' || t.phase === 'paused'} aria-label="Memory budget (GiB)"
            onChange={(e) => patch('training', { memoryGiB: Number(e.target.value) })} />
        </label>
      </div>
      {proto.warning && <p className="warn" role="note" data-testid="protocol-warning">{proto.warning}</p>}
      {!budgetOk && <p role="alert" data-testid="memory-error">Memory budget: enter a positive number of GiB.</p>}
      {bb && ds.summary && (
        <p className="hint" data-testid="estimates">
          {params.toLocaleString()} trainable parameters ({(100 * params / bb.parameters).toFixed(3)}% of the backbone); task file about {formatBytes(params * 4 + 4096)};
          applied learning rate {(c.lr * c.batch / 256).toPrecision(3)}; about {formatBytes(activations)} of activations per batch on {engineInfo?.backend ?? 'the engine'}
          {plan && <span data-testid="memory-plan">, so {plan} within {formatBudget(budgetBytes)}</span>}; {stepsPerEpoch} steps per epoch
          {speed && speed.key === key ? <span data-testid="epoch-estimate">; measured {(speed.msPerStep / 1000).toFixed(2)} s per step ({speed.replayed ? 'replayed, ' : ''}micro-batch {speed.microBatch}): about {Math.ceil(stepsPerEpoch * speed.msPerStep / 1000)} s per epoch, {Math.ceil(c.epochs * stepsPerEpoch * speed.msPerStep / 60000)} min in all</span> : '.'}
          {' '}<button disabled={measuring || t.phase === 'running'} onClick={async () => { setMeasuring(true); const r = await measureSpeed(); setMeasuring(false); if (r) setSpeed({ ...r, key }); }}>{measuring ? 'Measuring…' : 'Estimate time'}</button>
        </p>
      )}
      {t.saved && t.phase !== 'running' && t.phase !== 'paused' && (() => {
        const sv = t.saved;
        const names = ds.summary ? ds.summary.classes.filter((k) => !ds.dropped.includes(k.name)).map((k) => (ds.renamed[k.name] ?? k.name).trim()).sort() : [];
        const fits = bb?.fingerprint === sv.fingerprint && ds.phase === 'ready';
        return (
          <div className="resume" data-testid="saved-run">
            Unfinished run <strong>{sv.name}</strong>: epoch {sv.epoch} of {sv.epochs} on {sv.backboneName}, classes {sv.classes.join(', ')}.{' '}
            {fits ? '' : 'Load the same backbone and dataset to resume it. '}
            {fits && JSON.stringify(names) !== JSON.stringify(sv.classes) && <span className="warn">The loaded dataset has other classes. </span>}
            <button disabled={!fits} onClick={() => startTraining(true)} data-testid="resume-run">Resume run</button>{' '}
            <button onClick={() => discardSavedRun()}>Discard</button>
          </div>
        );
      })()}
      <div className="row">
        <button disabled={!canTrain} onClick={() => startTraining()} data-testid="train">Start training</button>
        {t.phase === 'running' && <button onClick={() => pauseTraining()}>Pause</button>}
        {t.phase === 'paused' && <button onClick={() => resumeTraining()}>Resume</button>}
        {(t.phase === 'running' || t.phase === 'paused') && <button onClick={() => stopTraining()}>Stop (keep best so far)</button>}
        <span data-testid="train-phase">{t.phase}</span>
      </div>
      {t.error && <p role="alert" data-testid="train-error">{t.error}</p>}
      {t.totalSteps > 0 && (
        <>
          <Progress value={h.length} max={c.epochs} label={`epoch ${Math.min(h.length + (t.phase === 'done' ? 0 : 1), c.epochs)} of ${c.epochs}`} />
          <Progress value={t.step} max={t.totalSteps} label={`step ${t.step} of ${t.totalSteps}${last ? `, ${last.imagesPerSecond.toFixed(1)} images/s` : ''}${left !== null && t.phase === 'running' ? `, about ${Math.ceil(left)} s left` : ''} on ${engineInfo?.backend ?? '?'}`} />
        </>
      )}
      {h.length > 0 && (
        <div className="charts" data-testid="charts">
          <Chart title="Loss" series={[{ name: 'train loss', color: '#c0392b', values: h.map((r) => r.loss) }]} />
          <Chart title="Accuracy" max={1} series={[{ name: 'train', color: '#2b59c3', values: h.map((r) => r.trainAccuracy) }, { name: 'validation', color: '#1e8449', values: h.map((r) => r.valAccuracy) }]} />
          <Chart title="Learning rate" series={[{ name: 'lr', color: '#7d3c98', values: h.map((r) => r.lr) }]} />
        </div>
      )}
    </section>
  );
}
