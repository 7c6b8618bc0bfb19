/**
 * Everything the engine worker holds: the backbone and its model, the
 * dataset, trained and imported tasks, and the run in progress. Requests
 * come from engine.worker.ts; results are plain data.
 */
import * as tf from '@tensorflow/tfjs';
import { VptError } from '../core/errors';
import { prepare } from '../core/image/preprocess';
import { checkTaskAgainstBackbone, readTask, writeTask, type BackboneRef, type TaskMeta } from '../core/io/task-file';
import { inferRows } from '../core/train/evaluate';
import { readCheckpoint, writeCheckpoint, type Checkpoint, type EpochReport } from '../core/train/checkpoint';
import { trainVpt, type TrainResult } from '../core/train/loop';
import { restartBackend, webgpuDeviceLost } from './backend-chain';
import { chooseMicroBatch } from '../core/train/memory';
import { argmaxRows, softmaxRows } from '../core/train/metrics';
import { disposeVars, initVpt, toVars, type VptState } from '../core/tuning/vpt';
import type { TrainConfig } from '../core/train/config';
import { DEFAULT_OPTIMIZER, Optimizer } from '../core/train/optimizer';
import { Rng } from '../core/train/rng';
import { vptParamGroups, vptStep } from '../core/train/step';
import { loadBackbone, type Backbone } from '../core/vit/load';
import type { Preprocessing } from '../core/vit/config';
import { FrozenViT } from '../core/vit/model';
import { countParams } from '../core/vit/weights';
import { decodeBlob, thumbOf } from './decode';
import type { BackboneSummary, BackendInfo, Prediction, Reply, Request, TaskInfo, WorkerEvent } from './protocol';
import { loadDataset, makeSplits, type StudioDataset } from './studio-data';

class DeviceFault extends Error {}

interface HeldTask { state: VptState; meta: TaskMeta; name: string }

export class Session {
  private backbone: Backbone | null = null;
  private model: FrozenViT | null = null;
  private dataset: StudioDataset | null = null;
  private readonly tasks = new Map<string, HeldTask>();
  private nextTask = 1;
  private stopRequested = false;
  private paused: { resume: () => void; promise: Promise<void> } | null = null;
  private info: BackendInfo | null = null;
  /** Set by the device-error detector; a run in progress stops at the next step and recovers. */
  private fault: string | null = null;
  private training = false;
  /** Requests that arrive while the backend starts wait for it (a user may click early). */
  private started: Promise<unknown> | null = null;

  constructor(private readonly emit: (e: WorkerEvent) => void, private readonly start: (prefer?: BackendInfo['backend']) => Promise<BackendInfo>) {}

  /** Called by the WebGPU error listener and device.lost (backend-chain.ts). */
  deviceError(message: string): void {
    if (this.training) this.fault = message;
    this.emit({ type: 'deviceError', message });
  }

  private need(): { b: Backbone; m: FrozenViT } {
    if (!this.backbone || !this.model) throw new VptError('backbone', 'load a backbone first');
    return { b: this.backbone, m: this.model };
  }

  async handle(req: Request): Promise<Reply> {
    if (req.type !== 'init' && this.started) await this.started.catch(() => undefined);
    switch (req.type) {
      case 'init': {
        const p = this.start(req.prefer);
        this.started = p;
        this.info = await p;
        return { type: 'init', info: this.info };
      }
      case 'loadBackbone': return { type: 'loadBackbone', summary: await this.loadBackbone(req) };
      case 'loadDataset': {
        const { b } = this.need();
        this.dataset = await loadDataset(req.files, b.preprocessing, (done, total) => this.emit({ type: 'decodeProgress', done, total }));
        return { type: 'loadDataset', summary: this.dataset.summary };
      }
      case 'train': return this.train(req);
      case 'pause': if (!this.paused) { let resume!: () => void; const promise = new Promise<void>((r) => { resume = r; }); this.paused = { resume, promise }; } return { type: 'pause' };
      case 'resume': this.paused?.resume(); this.paused = null; return { type: 'resume' };
      case 'stop': this.stopRequested = true; this.paused?.resume(); this.paused = null; return { type: 'stop' };
      case 'exportTask': return this.exportTask(req.taskId, req.fp16, req.naming);
      case 'loadTask': return { type: 'loadTask', task: this.loadTask(req.name, new Uint8Array(req.bytes), req.id) };
      case 'forgetTask': this.tasks.delete(req.taskId); return { type: 'forgetTask' };
      case 'classify': return this.classify(req.image, req.taskIds, req.top);
      case 'measure': return this.measure(req.config, req.classes);
      case 'injectFault': {
        if (req.kind === 'oom') this.deviceError('WebGPU error: Out of memory (injected)');
        else (tf.backend() as unknown as { device?: { destroy(): void } }).device?.destroy();
        return { type: 'injectFault' };
      }
    }
  }

  private async loadBackbone(req: Extract<Request, { type: 'loadBackbone' }>): Promise<BackboneSummary> {
    // Parse fully before replacing anything: a bad file must not cost the loaded backbone.
    const b = await loadBackbone({ name: req.name, bytes: new Uint8Array(req.bytes), config: req.config, preprocessor: req.preprocessor });
    const model = new FrozenViT(b.weights);
    this.model?.dispose();
    this.backbone = b;
    this.model = model;
    this.dataset = null;
    // Tasks of another backbone cannot run on this one.
    for (const [id, t] of this.tasks) if (t.meta.backbone?.fingerprint && t.meta.backbone.fingerprint !== b.fingerprint) this.tasks.delete(id);
    return {
      name: b.name, architecture: b.architecture, format: b.format, fingerprint: b.fingerprint, parameters: countParams(b.weights),
      bytes: req.bytes.byteLength, config: b.weights.config, preprocessing: b.preprocessing, warnings: b.warnings, ignored: b.ignored,
    };
  }

  private backboneRef(b: Backbone): BackboneRef {
    const c = b.weights.config;
    return { name: b.name, architecture: b.architecture, fingerprint: b.fingerprint, hidden_size: c.hiddenSize, num_layers: c.numLayers, patch_size: c.patchSize, image_size: c.imageSize };
  }

  private async train(req: Extract<Request, { type: 'train' }>): Promise<Reply> {
    const { b } = this.need();
    if (!this.dataset) throw new VptError('dataset', 'load a dataset first');
    const resume = req.resume ? readCheckpoint(new Uint8Array(req.resume), 'saved run') : undefined;
    // A resumed run keeps its own settings.
    const cfg = { ...(resume ? resume.config : req.config) };
    const data = makeSplits(this.dataset, req.edits, req.split, cfg.valSplit, cfg.seed);
    const maxBinding = this.info?.limits.maxStorageBufferBindingSize;
    if (!cfg.microBatch) cfg.microBatch = chooseMicroBatch(b.weights.config, cfg.numPrompts, cfg.batch, maxBinding);
    this.stopRequested = false;
    const result = await this.trainWithRecovery(b, data, cfg, resume);
    const taskId = `t${this.nextTask++}`;
    const v = result.validation;
    const meta: TaskMeta = {
      classes: data.classes, backbone: this.backboneRef(b), preprocessing: b.preprocessing,
      training: { ...cfg, lr_per_256: cfg.lr, lr_applied: result.appliedLr, best_epoch: result.bestEpoch, epochs_run: result.history.length, backend: tf.getBackend(), train_images: data.train.length, val_images: data.val.length },
      metrics: v ? { accuracy: v.accuracy, per_class: v.perClass, split: 'validation', count: v.count } : {},
    };
    this.tasks.set(taskId, { state: result.state, meta, name: req.name });
    // Per-example predictions on validation, for the confusion matrix's images and the mistakes gallery.
    const examples: Extract<Reply, { type: 'train' }>['outcome']['examples'] = [];
    if (data.val.length) {
      const vars = toVars(result.state, false);
      try {
        // this.model, not the `m` taken above: a device fault during training rebuilds the model.
        const { values, cols } = await inferRows(this.model!, vars, data.val.map((e) => e.image), b.preprocessing, cfg.batch);
        const probs = softmaxRows(values, data.val.length, cols);
        const pred = argmaxRows(values, data.val.length, cols);
        data.val.forEach((e, i) => examples.push({ label: e.label, predicted: pred[i], confidence: probs[i * cols + pred[i]], path: e.name, thumb: thumbOf(e.image) }));
      } finally {
        disposeVars(vars);
      }
    }
    const d = b.weights.config.hiddenSize;
    return {
      type: 'train', outcome: {
        taskId, bestEpoch: result.bestEpoch, history: result.history, classes: data.classes, appliedLr: result.appliedLr, stopped: result.stopped,
        validation: v ? { accuracy: v.accuracy, perClass: v.perClass, confusion: v.confusion, count: v.count } : null,
        examples, parameters: result.state.prompts.length + data.classes.length * (d + 1),
      },
    };
  }

  /**
   * Train; if the device is lost or runs out of memory, rebuild the backend and
   * the model, then resume from the last checkpoint with half the micro-batch.
   */
  private async trainWithRecovery(b: Backbone, data: ReturnType<typeof makeSplits>, cfg: TrainConfig, resume?: Checkpoint): Promise<TrainResult> {
    let last: Checkpoint | undefined = resume;
    let attempts = 0;
    const hooks = {
      onEpoch: (report: EpochReport) => this.emit({ type: 'epoch', report }),
      onStep: (step: number, total: number) => this.emit({ type: 'step', step, total }),
      gate: async () => {
        if (this.fault) throw new DeviceFault(this.fault);
        await (this.paused?.promise ?? Promise.resolve());
      },
      shouldStop: () => this.stopRequested,
      onCheckpoint: (c: Checkpoint) => {
        last = c;
        this.emit({ type: 'checkpoint', bytes: writeCheckpoint(c), epoch: c.epoch, epochs: c.config.epochs, fingerprint: c.fingerprint, classes: c.classes });
      },
    };
    this.training = true;
    try {
      this.fault = null;
      for (;;) {
        try {
          return await trainVpt(this.model!, b.preprocessing, data, cfg, b.fingerprint, hooks, last);
        } catch (e) {
          const msg = String((e as Error)?.message ?? e);
          const lost = await webgpuDeviceLost();
          const reason = this.fault ?? (lost ? `WebGPU device lost (${msg})` : e instanceof DeviceFault || /out of memory|device (is |was )?lost/i.test(msg) ? msg : null);
          if (!reason || attempts >= 3) throw e;
          // Handled: a fault reported while the backend restarts belongs to the new attempt.
          this.fault = null;
          attempts++;
          cfg = { ...cfg, microBatch: Math.max(1, Math.floor(cfg.microBatch / 2)) };
          this.emit({ type: 'recovering', reason, fromEpoch: last?.epoch ?? 0, microBatch: cfg.microBatch });
          await this.rebuild();
        }
      }
    } finally {
      this.training = false;
      this.fault = null;
    }
  }

  /** A fresh backend (a new WebGPU device) and the frozen model rebuilt on it from the host weights. */
  private async rebuild(): Promise<void> {
    this.model = null; // its tensors go with the engine reset
    await restartBackend((m) => this.deviceError(m));
    this.model = new FrozenViT(this.backbone!.weights);
  }

  private exportTask(taskId: string, fp16: boolean, naming: 'vpt' | 'official'): Reply {
    const t = this.tasks.get(taskId);
    if (!t) throw new VptError('task', 'that task is no longer in the engine');
    const bytes = writeTask(t.state, t.meta, { dtype: fp16 ? 'F16' : 'F32', naming });
    const safe = t.name.normalize('NFKC').replace(/[^\p{L}\p{N}._ -]+/gu, '_').replace(/^[.\s]+/, '').slice(0, 80) || 'task';
    return { type: 'exportTask', bytes, fileName: `${safe}.vpt.safetensors` };
  }

  private loadTask(name: string, bytes: Uint8Array, id?: string): TaskInfo {
    const { b } = this.need();
    const task = readTask(bytes, name);
    checkTaskAgainstBackbone(task, b.weights.config, b.fingerprint, name);
    const taskId = id ?? `t${this.nextTask++}`;
    this.tasks.set(taskId, { state: task.state, meta: { ...task.meta, preprocessing: task.meta.preprocessing ?? b.preprocessing }, name: name.replace(/\.vpt\.safetensors$|\.safetensors$/, '') });
    return {
      id: taskId, name, classes: task.meta.classes, variant: task.state.variant, numPrompts: task.state.numPrompts,
      accuracy: typeof task.meta.metrics?.accuracy === 'number' ? task.meta.metrics.accuracy : null,
      fingerprint: task.meta.backbone?.fingerprint ?? null, warnings: task.warnings,
    };
  }

  private async classify(image: Blob, taskIds: string[], top: number): Promise<Reply> {
    const { b, m } = this.need();
    const raw = await decodeBlob(image, (image as File).name ?? 'image');
    const predictions: Prediction[] = [];
    // Tasks usually share the backbone's preprocessing: resize once per distinct setting.
    const prepared = new Map<string, ReturnType<typeof prepare>>();
    const input = (pre: Preprocessing) => {
      const key = JSON.stringify([pre.size, pre.resize]);
      if (!prepared.has(key)) prepared.set(key, prepare(raw, pre));
      return prepared.get(key)!;
    };
    for (const id of taskIds) {
      const t = this.tasks.get(id);
      if (!t) throw new VptError('task', `task ${id} is not loaded`);
      const pre = t.meta.preprocessing ?? b.preprocessing;
      const vars = toVars(t.state, false);
      try {
        const { values, cols } = await inferRows(m, vars, [input(pre)], pre, 1);
        const p = softmaxRows(values, 1, cols);
        const order = [...p.keys()].sort((x, y) => p[y] - p[x]).slice(0, top);
        predictions.push({ taskId: id, top: order.map((c) => ({ name: t.meta.classes[c], probability: p[c] })) });
      } finally {
        disposeVars(vars);
      }
    }
    const firstPre = taskIds.length ? this.tasks.get(taskIds[0])!.meta.preprocessing ?? b.preprocessing : b.preprocessing;
    const preview = thumbOf(input(firstPre), 96);
    return { type: 'classify', predictions, preview };
  }

  /** Time one real training step (after a warm-up step) on random images of the configured shape. */
  private async measure(cfg: TrainConfig, classes: number): Promise<Reply> {
    const { b, m } = this.need();
    const c = b.weights.config;
    const microBatch = cfg.microBatch || chooseMicroBatch(c, cfg.numPrompts, cfg.batch, this.info?.limits.maxStorageBufferBindingSize);
    m.prepareBackward();
    const rng = new Rng(cfg.seed);
    const vars = toVars(initVpt(c, cfg.variant, cfg.numPrompts, Math.max(2, classes), rng));
    const opt = new Optimizer({ ...DEFAULT_OPTIMIZER, name: cfg.optimizer }, vptParamGroups(vars, cfg.weightDecay));
    const S = c.imageSize;
    const batch = { images: Float32Array.from({ length: cfg.batch * S * S * 3 }, () => rng.uniform(-1, 1)), labels: new Int32Array(cfg.batch), weights: new Float32Array(cfg.batch).fill(1), size: cfg.batch };
    const step = async () => { const r = vptStep(m, vars, opt, batch, 0, { microBatch, promptDropout: cfg.promptDropout, rng }); await r.loss.data(); tf.dispose([r.loss, r.correct]); };
    try {
      await step();
      const t0 = performance.now();
      await step();
      return { type: 'measure', msPerStep: performance.now() - t0, microBatch };
    } finally {
      disposeVars(vars);
      opt.dispose();
    }
  }
}
