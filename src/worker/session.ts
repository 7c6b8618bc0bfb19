/**
 * Everything the engine worker holds: the backbone and its model, the
 * dataset, trained and imported tasks, and the run in progress. Requests
 * come from engine.worker.ts; results are plain data.
 */
import * as tf from '@tensorflow/tfjs';
import { VptError } from '../core/errors';
import { prepare } from '../core/image/preprocess';
import { backboneRef, checkTaskAgainstBackbone, readTask, writeTask, type TaskMeta } from '../core/io/task-file';
import { inferRows, pixels } from '../core/train/evaluate';
import { readCheckpoint, writeCheckpoint, type Checkpoint, type EpochReport } from '../core/train/checkpoint';
import { compareProtocols } from '../core/train/compare';
import { embeddingShape, train as runTraining, trainsFromEmbeddings, type TrainData, type TrainHooks, type TrainResult } from '../core/train/loop';
import { searchHyper } from '../core/train/search';
import { safeFileName } from '../core/io/file-name';
import { precompileWebgpu, restartBackend, webgpuDeviceLost } from './backend-chain';
import { planPasses, validBudget } from '../core/train/memory';
import { argmaxRows, softmaxRows } from '../core/train/metrics';
import { countTuned, disposeVars, initState, makeVars } from '../core/tuning/params';
import { formatSpec, promptTokens, protocolOf, titleOf } from '../core/tuning/registry';
import type { TunedState } from '../core/tuning/types';
import { PromptDropout } from '../core/tuning/vpt';
import type { TrainConfig } from '../core/train/config';
import { DEFAULT_OPTIMIZER, Optimizer } from '../core/train/optimizer';
import { Rng } from '../core/train/rng';
import { forwardOf, paramGroups } from '../core/train/step';
import { describeReplay, MAX_CAPTURES, Stepper, WARMUP_STEPS } from '../core/train/replay';
import { loadBackbone, type Backbone } from '../core/vit/load';
import type { Preprocessing } from '../core/vit/config';
import { FrozenViT } from '../core/vit/model';
import { countParams } from '../core/vit/weights';
import { decodeBlob, thumbOf } from './decode';
import type { BackboneSummary, BackendInfo, Prediction, Reply, Request, TaskInfo, TrainOutcome, WorkerEvent } from './protocol';
import { loadDataset, makeSplits, type StudioDataset } from './studio-data';
import { engineKernels } from '../core/vit/ops';

class DeviceFault extends Error {}

interface HeldTask { state: TunedState; meta: TaskMeta; name: string }


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

  constructor(private readonly emit: (e: WorkerEvent) => void, private readonly start: (init: Extract<Request, { type: 'init' }>) => Promise<BackendInfo>) {}

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
        const p = this.start(req);
        this.started = p;
        this.info = await p;
        return { type: 'init', info: this.info };
      }
      case 'loadBackbone': return { type: 'loadBackbone', summary: await this.loadBackbone(req) };
      case 'loadDataset': {
        const { b } = this.need();
        // Replaced only once the new dataset has loaded and can train (loadDataset throws otherwise).
        this.dataset = await loadDataset(req.files, b.preprocessing, (done, total) => this.emit({ type: 'decodeProgress', done, total }), req.pixelBudget);
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
      case 'measure': return this.measure(req.config, req.classes, req.memoryBudget);
      case 'compare': return this.compare(req);
      case 'search': return this.search(req);
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

  private async train(req: Extract<Request, { type: 'train' }>): Promise<Reply> {
    const { b } = this.need();
    if (!this.dataset) throw new VptError('dataset', 'load a dataset first');
    const resume = req.resume ? readCheckpoint(new Uint8Array(req.resume), 'saved run') : undefined;
    // A resumed run keeps its own settings.
    const cfg = this.withMicroBatch({ ...(resume ? resume.config : req.config) }, req.memoryBudget);
    const data = makeSplits(this.dataset, req.edits, req.split, cfg.valSplit, cfg.seed);
    this.stopRequested = false;
    const result = await this.trainWithRecovery(b, data, cfg, {}, true, resume);
    return { type: 'train', outcome: await this.keepTask(result, data, cfg, req.name) };
  }

  /** The passes a run makes within `budgetBytes` (the page's memory budget) on this device. */
  private withMicroBatch(cfg: TrainConfig, budgetBytes?: number): TrainConfig {
    if (budgetBytes !== undefined && !validBudget(budgetBytes)) throw new VptError('memory budget', `${budgetBytes / 1024 ** 3} GiB is not a positive size`);
    return planPasses(this.need().b.weights.config, cfg, { maxBindingBytes: this.info?.limits.maxStorageBufferBindingSize, budgetBytes, ...engineKernels() });
  }

  /** Hold a trained state as a task and describe it for the page (validation predictions included). */
  private async keepTask(result: TrainResult, data: TrainData, cfg: TrainConfig, name: string): Promise<TrainOutcome> {
    const { b } = this.need();
    const taskId = `t${this.nextTask++}`;
    const v = result.validation;
    const meta: TaskMeta = {
      classes: data.classes, backbone: backboneRef(b), preprocessing: b.preprocessing,
      training: { ...cfg, protocol: formatSpec(cfg.protocol), lr_per_256: cfg.lr, lr_applied: result.appliedLr, best_epoch: result.bestEpoch, epochs_run: result.history.length, backend: tf.getBackend(), train_images: data.train.length, val_images: data.val.length },
      metrics: v ? { accuracy: v.accuracy, per_class: v.perClass, split: 'validation', count: v.count } : {},
    };
    this.tasks.set(taskId, { state: result.state, meta, name });
    // Per-example predictions on validation, for the confusion matrix's images and the mistakes gallery.
    const examples: TrainOutcome['examples'] = [];
    if (data.val.length) {
      const proto = protocolOf(result.state.protocol.name);
      // this.model, not one taken earlier: a device fault during training rebuilds the model.
      const vars = makeVars(proto, result.state, b.weights.config, false);
      try {
        const { values, cols } = await inferRows(this.model!, { proto, vars }, data.val.map((e) => e.image), b.preprocessing, cfg.batch);
        const probs = softmaxRows(values, data.val.length, cols);
        const pred = argmaxRows(values, data.val.length, cols);
        // One image at a time: a streamed dataset is decoded again here, never held whole.
        for (const [i, e] of data.val.entries()) {
          const [img] = await pixels([e.image]);
          examples.push({ label: e.label, predicted: pred[i], confidence: probs[i * cols + pred[i]], path: e.name, thumb: thumbOf(img) });
        }
      } finally {
        disposeVars(vars);
      }
    }
    return {
      taskId, bestEpoch: result.bestEpoch, history: result.history, classes: data.classes, appliedLr: result.appliedLr, stopped: result.stopped, diverged: result.diverged, replay: describeReplay(result.steps),
      validation: v ? { accuracy: v.accuracy, perClass: v.perClass, confusion: v.confusion, count: v.count } : null,
      examples, parameters: countTuned(result.state), protocol: formatSpec(result.state.protocol), title: titleOf(result.state.protocol),
    };
  }

  /** Protocols one after another on one split; each run recovers from device faults like a single run. */
  private async compare(req: Extract<Request, { type: 'compare' }>): Promise<Reply> {
    const { b } = this.need();
    if (!this.dataset) throw new VptError('dataset', 'load a dataset first');
    const data = makeSplits(this.dataset, req.edits, req.split, req.settings.valSplit, req.settings.seed);
    this.stopRequested = false;
    const { lr, microBatch, ...shared } = req.settings;
    const settings = { ...shared, ...(lr > 0 ? { lr } : {}), microBatch };
    const meta = { classes: data.classes, backbone: backboneRef(b), preprocessing: b.preprocessing };
    const runs = await compareProtocols(
      (d, cfg, hooks) => this.trainWithRecovery(b, d, this.withMicroBatch({ ...cfg }, req.memoryBudget), hooks, false),
      data, settings, req.specs, req.seeds,
      (s) => writeTask(s, meta, { dtype: req.fp16 ? 'F16' : 'F32' }).byteLength,
      {
        onStart: (spec, seed, index, total) => this.emit({ type: 'compareStart', protocol: formatSpec(spec), title: titleOf(spec), seed, index, total }),
        onRun: (run) => this.emit({ type: 'compareRun', run }),
        shouldStop: () => this.stopRequested,
      },
    );
    return { type: 'compare', runs };
  }

  private async search(req: Extract<Request, { type: 'search' }>): Promise<Reply> {
    const { b } = this.need();
    if (!this.dataset) throw new VptError('dataset', 'load a dataset first');
    const cfg = this.withMicroBatch({ ...req.config }, req.memoryBudget);
    const data = makeSplits(this.dataset, req.edits, req.split, cfg.valSplit, cfg.seed);
    this.stopRequested = false;
    const r = await searchHyper((d, c, hooks) => this.trainWithRecovery(b, d, c, hooks, false), data, cfg, req.grid, {
      onCell: (cell, index) => this.emit({ type: 'searchCell', cell: { ...cell }, index }),
      onFinalStart: (best) => this.emit({ type: 'searchFinal', best }),
      shouldStop: () => this.stopRequested,
    });
    const outcome = await this.keepTask(r.final, data, { ...cfg, lr: r.best.lr, weightDecay: r.best.wd }, req.name);
    return { type: 'search', cells: r.cells, best: r.best, outcome, rule: r.split, tuneTrain: r.tuneTrain, tuneVal: r.tuneVal };
  }

  /**
   * Train; if the device is lost or runs out of memory, rebuild the backend and
   * the model, then resume from the last checkpoint with half the micro-batch.
   */
  private async trainWithRecovery(b: Backbone, data: TrainData, cfg: TrainConfig, extra: TrainHooks, persist: boolean, resume?: Checkpoint): Promise<TrainResult> {
    let last: Checkpoint | undefined = resume;
    let attempts = 0;
    const hooks: TrainHooks = {
      onEpoch: (report: EpochReport) => { extra.onEpoch?.(report); this.emit({ type: 'epoch', report }); },
      onStep: (step: number, total: number) => this.emit({ type: 'step', step, total }),
      gate: async () => {
        if (this.fault) throw new DeviceFault(this.fault);
        await (this.paused?.promise ?? Promise.resolve());
      },
      shouldStop: () => this.stopRequested || (extra.shouldStop?.() ?? false),
      precompile: precompileWebgpu,
      onCheckpoint: (c: Checkpoint) => {
        last = c;
        // Only single runs are offered for resuming after a reload; comparisons and searches recover in place.
        if (persist) this.emit({ type: 'checkpoint', bytes: writeCheckpoint(c), epoch: c.epoch, epochs: c.config.epochs, fingerprint: c.fingerprint, classes: c.classes });
      },
    };
    this.training = true;
    try {
      this.fault = null;
      for (;;) {
        try {
          return await runTraining(this.model!, b.preprocessing, data, cfg, b.fingerprint, hooks, last);
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
    return { type: 'exportTask', bytes, fileName: `${safeFileName(t.name)}.vpt.safetensors` };
  }

  private loadTask(name: string, bytes: Uint8Array, id?: string): TaskInfo {
    const { b } = this.need();
    const task = readTask(bytes, name);
    checkTaskAgainstBackbone(task, b.weights.config, b.fingerprint, name);
    const taskId = id ?? `t${this.nextTask++}`;
    this.tasks.set(taskId, { state: task.state, meta: { ...task.meta, preprocessing: task.meta.preprocessing ?? b.preprocessing }, name: name.replace(/\.vpt\.safetensors$|\.safetensors$/, '') });
    return {
      id: taskId, name, classes: task.meta.classes, protocol: formatSpec(task.state.protocol), title: titleOf(task.state.protocol),
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
      const proto = protocolOf(t.state.protocol.name);
      const vars = makeVars(proto, t.state, b.weights.config, false);
      try {
        const { values, cols } = await inferRows(m, { proto, vars }, [input(pre)], pre, 1);
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

  /** Time one real training step (after warm-up steps, on webgpu until steps replay) on random images of the configured shape. */
  private async measure(cfg: TrainConfig, classes: number, budgetBytes?: number): Promise<Reply> {
    const { b, m } = this.need();
    const c = b.weights.config;
    // The passes training would use, recomputation included, so the estimate is of the real step.
    const { microBatch, recompute } = this.withMicroBatch({ ...cfg }, budgetBytes);
    m.prepareBackward();
    const rng = new Rng(cfg.seed);
    const proto = protocolOf(cfg.protocol.name);
    const vars = makeVars(proto, initState(proto, b.weights, cfg.protocol, Math.max(2, classes), rng), c);
    const opt = new Optimizer({ ...DEFAULT_OPTIMIZER, name: cfg.optimizer }, paramGroups(vars, cfg.weightDecay));
    const S = c.imageSize;
    // The inputs training will use: patch embeddings computed once (VPT without augmentation) or images.
    // A head-only protocol's cached epochs are far faster than this measures.
    const embedded = trainsFromEmbeddings(m, proto, vars, cfg, this.dataset?.images.length ?? 0);
    const rowShape = embedded ? embeddingShape(c) : [S, S, 3];
    const batch = { inputs: Float32Array.from({ length: cfg.batch * rowShape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)), rowShape, labels: new Int32Array(cfg.batch), weights: new Float32Array(cfg.batch).fill(1), size: cfg.batch };
    const dropout = new PromptDropout(rng, cfg.promptDropout);
    // Steps as training runs them: on webgpu, replayed from a captured one once they settle (train/replay.ts),
    // which for a small model is several times faster than a step through tfjs.
    const stepper = new Stepper(forwardOf(m, proto, vars, { dropout, recompute, embedded }), vars, opt, microBatch, dropout);
    const step = async () => { const r = stepper.step(batch, 0); await r.loss.data(); tf.dispose([r.loss, r.correct]); };
    try {
      await step();
      // On webgpu, warm up until a step is captured (the next one replays it), or captures stop.
      const s = stepper.stats;
      while (s.webgpu && !s.captures && !s.gaveUp && s.steps < WARMUP_STEPS + MAX_CAPTURES) await step();
      const replays = s.replayed, t0 = performance.now();
      await step();
      return { type: 'measure', msPerStep: performance.now() - t0, microBatch, replayed: s.replayed > replays };
    } finally {
      stepper.dispose();
      disposeVars(vars);
      opt.dispose();
    }
  }
}
