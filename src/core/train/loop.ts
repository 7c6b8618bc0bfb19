/**
 * The prompt-tuning run: epochs of shuffled fixed-shape batches, the
 * warm-up + cosine schedule, validation each epoch, the best epoch kept (as
 * the official trainer does), checkpoints as plain data, cancellation.
 * Readbacks are asynchronous and batched, never one per step.
 */
import * as tf from '@tensorflow/tfjs';
import { VptError } from '../errors';
import { disposeVars, fromVars, initVpt, toVars, type VptState } from '../tuning/vpt';
import type { Preprocessing } from '../vit/config';
import type { FrozenViT } from '../vit/model';
import type { Checkpoint, EpochReport } from './checkpoint';
import type { TrainConfig } from './config';
import { fillBatch, inferRows, type Example } from './evaluate';
import { argmaxRows, evaluatePredictions, type Evaluation } from './metrics';
import { DEFAULT_OPTIMIZER, Optimizer } from './optimizer';
import { Rng } from './rng';
import { appliedLr, lrMultiplier } from './schedule';
import { vptParamGroups, vptStep, type StepResult } from './step';

export interface TrainData { train: Example[]; val: Example[]; classes: string[] }

export interface TrainHooks {
  onEpoch?: (r: EpochReport) => void;
  onStep?: (step: number, totalSteps: number) => void;
  /** Polled between steps: true stops after the current step, keeping the best so far. */
  shouldStop?: () => boolean;
  /** Awaited between steps: a pause holds the run here without losing anything. */
  gate?: () => Promise<void>;
  /** Called after every epoch with a resumable checkpoint. */
  onCheckpoint?: (c: Checkpoint) => void | Promise<void>;
}

export interface TrainResult {
  state: VptState;
  bestEpoch: number;
  bestValAccuracy: number | null;
  validation: Evaluation | null;
  history: EpochReport[];
  appliedLr: number;
  stopped: boolean;
}

export async function evaluateState(model: FrozenViT, state: VptState, ex: Example[], classes: string[], p: Preprocessing, batch: number): Promise<Evaluation> {
  const vars = toVars(state, false);
  try {
    const { values, cols } = await inferRows(model, vars, ex.map((e) => e.image), p, batch);
    return evaluatePredictions(argmaxRows(values, ex.length, cols), ex.map((e) => e.label), classes);
  } finally {
    disposeVars(vars);
  }
}

export async function trainVpt(model: FrozenViT, p: Preprocessing, data: TrainData, cfg: TrainConfig, fingerprint: string, hooks: TrainHooks = {}, resume?: Checkpoint): Promise<TrainResult> {
  const C = data.classes.length;
  if (C < 2) throw new VptError('dataset', `needs at least 2 classes, found ${C}`);
  if (data.train.length === 0) throw new VptError('dataset', 'no training images');
  if (resume) {
    if (resume.fingerprint !== fingerprint) throw new VptError('--resume', 'checkpoint belongs to another backbone');
    if (JSON.stringify(resume.classes) !== JSON.stringify(data.classes)) throw new VptError('--resume', 'checkpoint was made for other classes');
  }
  const B = cfg.batch;
  const micro = cfg.microBatch > 0 ? Math.min(cfg.microBatch, B) : B;
  const stepsPerEpoch = Math.ceil(data.train.length / B);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const lr0 = appliedLr(cfg.lr, B);
  const rng = new Rng(resume ? resume.rng : cfg.seed);
  const state0 = resume ? resume.state : initVpt(model.config, cfg.variant, cfg.numPrompts, C, rng);
  const vars = toVars(state0);
  const opt = new Optimizer({ ...DEFAULT_OPTIMIZER, name: cfg.optimizer }, vptParamGroups(vars, cfg.weightDecay));
  if (resume) opt.importState(resume.optimizer);
  model.prepareBackward();
  const history: EpochReport[] = resume ? [...resume.history] : [];
  let best = resume?.best ?? null;
  let step = resume?.step ?? 0;
  let stopped = false;
  try {
    for (let epoch = resume ? resume.epoch : 0; epoch < cfg.epochs && !stopped; epoch++) {
      const t0 = performance.now();
      const order = rng.shuffle(data.train.map((_, i) => i));
      const pending: StepResult[] = [];
      let lossSum = 0, hitSum = 0, lr = 0, seen = 0;
      const drain = async () => {
        for (const r of pending.splice(0)) {
          lossSum += (await r.loss.data())[0];
          hitSum += (await r.correct.data())[0];
          r.loss.dispose(); r.correct.dispose();
        }
      };
      for (let s = 0; s < stepsPerEpoch; s++) {
        const idx = order.slice(s * B, (s + 1) * B);
        const labels = new Int32Array(B);
        const weights = new Float32Array(B);
        idx.forEach((j, i) => { labels[i] = data.train[j].label; weights[i] = 1; });
        const images = fillBatch(idx.map((j) => data.train[j].image), p, B, cfg.augment ? rng : undefined);
        lr = lr0 * lrMultiplier(cfg.schedule, step, stepsPerEpoch, cfg.warmupEpochs, cfg.epochs);
        pending.push(vptStep(model, vars, opt, { images, labels, weights, size: B }, lr, { microBatch: micro, promptDropout: cfg.promptDropout, rng }));
        step++;
        seen += idx.length;
        if (pending.length >= 8) await drain();
        hooks.onStep?.(step, totalSteps);
        if (hooks.gate) await hooks.gate();
        if (hooks.shouldStop?.()) { stopped = true; break; }
      }
      await drain();
      const seconds = (performance.now() - t0) / 1000;
      const state = await fromVars(vars, { numPrompts: cfg.numPrompts, numClasses: C, hiddenSize: model.config.hiddenSize });
      if (!Number.isFinite(lossSum)) throw new VptError('training', `loss became ${lossSum} in epoch ${epoch + 1}: try a lower learning rate (--lr)`);
      let valAcc: number | null = null;
      if (data.val.length) valAcc = (await evaluateState(model, state, data.val, data.classes, p, B)).accuracy;
      // Keep the best epoch on validation (strictly better, as the official trainer); without validation, the last.
      if (!best || valAcc === null || valAcc > best.valAccuracy) best = { epoch: epoch + 1, valAccuracy: valAcc ?? 0, state };
      const report: EpochReport = {
        epoch: epoch + 1, loss: lossSum / Math.max(1, Math.ceil(seen / B)) , trainAccuracy: hitSum / Math.max(1, seen),
        valAccuracy: valAcc, lr, imagesPerSecond: seen / Math.max(seconds, 1e-9), seconds,
      };
      history.push(report);
      hooks.onEpoch?.(report);
      if (hooks.onCheckpoint) {
        await hooks.onCheckpoint({
          config: cfg, classes: data.classes, fingerprint, epoch: epoch + 1, step, state,
          optimizer: await opt.exportState(), rng: rng.state(), best, history: [...history],
        });
      }
    }
  } finally {
    disposeVars(vars);
    opt.dispose();
  }
  if (!best) throw new VptError('training', 'stopped before the first epoch finished');
  const validation = data.val.length ? await evaluateState(model, best.state, data.val, data.classes, p, B) : null;
  return { state: best.state, bestEpoch: best.epoch, bestValAccuracy: data.val.length ? best.valAccuracy : null, validation, history, appliedLr: lr0, stopped };
}
