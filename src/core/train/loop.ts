/**
 * The training run, for every protocol: epochs of shuffled fixed-shape
 * batches, the warm-up + cosine schedule, validation each epoch, the best
 * epoch kept (as the official trainer does), checkpoints as plain data,
 * cancellation. Head-only protocols (Linear, Mlp) without augmentation
 * compute each image's features once and train on those; protocols that
 * leave the patch embedding alone compute it once per image.
 * Readbacks are asynchronous and batched, never one per step.
 */
import * as tf from '@tensorflow/tfjs';
import { VptError } from '../errors';
import { checkParams, countTuned, disposeVars, initState, makeVars, readVars } from '../tuning/params';
import { protocolOf } from '../tuning/registry';
import type { Protocol, TunedState, Vars } from '../tuning/types';
import { PromptDropout } from '../tuning/vpt';
import type { Preprocessing, ViTConfig } from '../vit/config';
import type { FrozenViT } from '../vit/model';
import type { Checkpoint, EpochReport } from './checkpoint';
import type { TrainConfig } from './config';
import { embedRows, fillBatch, inferFromFeatures, inferRows, pixels, type Example, type Tuned } from './evaluate';
import { argmaxRows, evaluatePredictions, type Evaluation } from './metrics';
import { DEFAULT_OPTIMIZER, Optimizer } from './optimizer';
import { Rng } from './rng';
import { appliedLr, lrMultiplier } from './schedule';
import { batchGradients, forwardOf, paramGroups, type StepResult } from './step';
import { Stepper, type StepperStats } from './replay';

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
  /**
   * Called once before the first step with a function that builds one
   * step's forward and backward graph without updating anything: a GPU
   * backend can compile every shader up front (WebGPU's compile-only mode).
   */
  precompile?: (graph: () => void) => Promise<void>;
}

export interface TrainResult {
  state: TunedState;
  bestEpoch: number;
  bestValAccuracy: number | null;
  validation: Evaluation | null;
  history: EpochReport[];
  appliedLr: number;
  stopped: boolean;
  tunedParams: number;
  /** Wall time of the whole run, feature caching included. */
  seconds: number;
  /** Peak tensor bytes during the first training step (tf.profile), backbone included; null when resumed. */
  peakBytes: number | null;
  /** Whether features were cached (head-only protocols). */
  cached: boolean;
  /** Whether the patch embeddings were computed once per image (protocols that leave them alone, no augmentation, within EMBEDDING_CACHE_BYTES). */
  embedded: boolean;
  /**
   * Set when the loss or the parameters became NaN or Inf: the run stopped
   * there and `state` is the best epoch before it (the last good checkpoint
   * is never overwritten by a diverged one). Says what happened and what to try.
   */
  diverged: string | null;
  /** What the stepper did (replay.ts): on webgpu, how many steps were replayed from a captured one, or why none. */
  steps: StepperStats;
}

/** What to tell the user when a run diverges: where, and a learning rate to try. */
function divergedMessage(what: string, step: number, epoch: number, lr: number, kept: number | null): string {
  const back = kept === null ? 'nothing to roll back to (no epoch had finished)' : `rolled back to epoch ${kept}, the best before it`;
  return `${what} at step ${step} (epoch ${epoch}): ${back}; try a lower learning rate, e.g. ${+(lr / 10).toPrecision(2)} (--lr; now ${lr})`;
}

function allFinite(s: TunedState): boolean {
  for (const p of s.params.values()) for (let i = 0; i < p.data.length; i++) if (!Number.isFinite(p.data[i])) return false;
  return true;
}

/**
 * Rows already computed, per kind (final features, patch embeddings), model,
 * preprocessing and example: a comparison or a grid search trains several
 * runs on the same images, and these rows depend on nothing else. Weak keys:
 * an example that is gone takes its rows with it.
 */
const rowCache = new WeakMap<FrozenViT, Map<string, WeakMap<Example, Float32Array>>>();

async function frozenRows(kind: 'features' | 'embeddings', model: FrozenViT, images: Example[], p: Preprocessing, batch: number): Promise<Float32Array> {
  const key = JSON.stringify([kind, p.size, p.mean, p.std, p.resize]);
  let byKey = rowCache.get(model);
  if (!byKey) rowCache.set(model, (byKey = new Map()));
  let cache = byKey.get(key);
  if (!cache) byKey.set(key, (cache = new WeakMap()));
  const missing = [...new Set(images.filter((e) => !cache!.has(e)))];
  let width = 0;
  if (missing.length) {
    const { values, cols } = kind === 'features'
      ? await inferRows(model, null, missing.map((e) => e.image), p, batch)
      : await embedRows(model, missing.map((e) => e.image), p, batch);
    width = cols;
    missing.forEach((e, i) => cache!.set(e, values.slice(i * cols, (i + 1) * cols)));
  }
  width ||= cache.get(images[0])?.length ?? 0;
  const out = new Float32Array(images.length * width);
  images.forEach((e, i) => out.set(cache!.get(e)!, i * width));
  return out;
}

/** Plain features [N, d] of images, for head-only protocols; computed once per image. */
export function featureRows(model: FrozenViT, images: Example[], p: Preprocessing, batch: number): Promise<Float32Array> {
  return frozenRows('features', model, images, p, batch);
}

/**
 * Host bytes the patch-embedding cache may take. The embedding ([CLS], patch
 * projection, position embeddings: [T, d] per image, 151 KB on ViT-Ti/16 and
 * 605 KB on ViT-B/16 at 224) comes before any prompt, so protocols that leave
 * it alone (VPT, Adapter, LoRA, ...) can compute it once per image.
 */
export const EMBEDDING_CACHE_BYTES = 512 * 1024 ** 2;

/** One image's patch embedding: [T, d], [CLS] and the patches. */
export function embeddingShape(c: ViTConfig): [number, number] {
  return [(c.imageSize / c.patchSize) ** 2 + 1, c.hiddenSize];
}

/** Whether `n` images' patch embeddings fit the cache budget. */
export function embeddingsFit(model: FrozenViT, n: number, budget = EMBEDDING_CACHE_BYTES): boolean {
  const [T, d] = embeddingShape(model.config);
  return n * T * d * 4 <= budget;
}

/**
 * Whether a run trains from patch embeddings computed once per image: a
 * protocol that leaves the embedding alone (no embed hook, not head-only:
 * those cache final features), no augmentation, caching on, within budget.
 */
export function trainsFromEmbeddings(model: FrozenViT, proto: Protocol, vars: Vars, cfg: TrainConfig, trainImages: number): boolean {
  return !proto.headOnly && !cfg.augment && cfg.cacheFeatures && !proto.tuning?.(vars, model.config, {}).embed && embeddingsFit(model, trainImages);
}

/** Patch embeddings [N, T*d] of images (prompt-independent), computed once per image. */
export function embeddingRows(model: FrozenViT, images: Example[], p: Preprocessing, batch: number): Promise<Float32Array> {
  return frozenRows('embeddings', model, images, p, batch);
}

async function evaluateTuned(model: FrozenViT, tuned: Tuned, ex: Example[], classes: string[], p: Preprocessing, batch: number, feats?: Float32Array): Promise<Evaluation> {
  const { values, cols } = feats
    ? await inferFromFeatures(tuned, feats, model.config.hiddenSize, batch)
    : await inferRows(model, tuned, ex.map((e) => e.image), p, batch);
  return evaluatePredictions(argmaxRows(values, ex.length, cols), ex.map((e) => e.label), classes);
}

export async function evaluateState(model: FrozenViT, state: TunedState, ex: Example[], classes: string[], p: Preprocessing, batch: number): Promise<Evaluation> {
  const proto = protocolOf(state.protocol.name);
  const vars = makeVars(proto, state, model.config, false);
  try {
    return await evaluateTuned(model, { proto, vars }, ex, classes, p, batch);
  } finally {
    disposeVars(vars);
  }
}

export async function train(model: FrozenViT, p: Preprocessing, data: TrainData, cfg: TrainConfig, fingerprint: string, hooks: TrainHooks = {}, resume?: Checkpoint): Promise<TrainResult> {
  const t0 = performance.now();
  const C = data.classes.length;
  if (C < 2) throw new VptError('dataset', `needs at least 2 classes, found ${C}`);
  if (data.train.length === 0) throw new VptError('dataset', 'no training images');
  if (resume) {
    if (resume.fingerprint !== fingerprint) throw new VptError('--resume', 'checkpoint belongs to another backbone');
    if (JSON.stringify(resume.classes) !== JSON.stringify(data.classes)) throw new VptError('--resume', 'checkpoint was made for other classes');
    if (JSON.stringify(resume.config.protocol) !== JSON.stringify(cfg.protocol)) throw new VptError('--resume', 'checkpoint was made with another protocol');
  }
  const proto = protocolOf(cfg.protocol.name);
  const B = cfg.batch;
  const micro = cfg.microBatch > 0 ? Math.min(cfg.microBatch, B) : B;
  const stepsPerEpoch = Math.ceil(data.train.length / B);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const lr0 = appliedLr(cfg.lr, B);
  const rng = new Rng(resume ? resume.rng : cfg.seed);
  const state0 = resume ? resume.state : initState(proto, model.weights, cfg.protocol, C, rng);
  if (resume) checkParams(proto, state0, model.config, '--resume');
  const cached = proto.headOnly && !cfg.augment && cfg.cacheFeatures;
  // Features are a pure function of the frozen backbone: computed once, they make head-only training take seconds.
  const trainFeats = cached ? await featureRows(model, data.train, p, B) : null;
  const valFeats = cached && data.val.length ? await featureRows(model, data.val, p, B) : undefined;
  const d = model.config.hiddenSize;
  const vars = makeVars(proto, state0, model.config);
  // Likewise the patch embeddings, for protocols that leave them alone, while they fit their budget.
  const embedded = trainsFromEmbeddings(model, proto, vars, cfg, data.train.length);
  let trainEmbeds: Float32Array | null = null;
  try {
    trainEmbeds = embedded ? await embeddingRows(model, data.train, p, B) : null;
  } catch (e) {
    disposeVars(vars);
    throw e;
  }
  const opt = new Optimizer({ ...DEFAULT_OPTIMIZER, name: cfg.optimizer }, paramGroups(vars, cfg.weightDecay));
  if (resume) opt.importState(resume.optimizer);
  if (!cached) model.prepareBackward();
  const dropout = new PromptDropout(rng, cfg.promptDropout);
  const forward = forwardOf(model, proto, vars, { cached, embedded, recompute: cfg.recompute, dropout });
  // On WebGPU, later steps replay the commands of a captured one (replay.ts); it draws dropout's masks ahead.
  const stepper = new Stepper(forward, vars, opt, micro, dropout);
  const tuned: Tuned = { proto, vars };
  const history: EpochReport[] = resume ? [...resume.history] : [];
  let best = resume?.best ?? null;
  let step = resume?.step ?? 0;
  let stopped = false;
  let diverged: string | null = null;
  let peakBytes: number | null = null;
  let compiled = false;
  const rowShape = cached ? [d] : embedded ? embeddingShape(model.config) : [p.size, p.size, 3];
  const rows = trainFeats ?? trainEmbeds;
  const batchInputs = async (idx: number[]): Promise<Float32Array> => {
    if (!rows) return fillBatch(await pixels(idx.map((j) => data.train[j].image)), p, B, cfg.augment ? rng : undefined);
    const w = rowShape.reduce((a, b) => a * b, 1);
    const buf = new Float32Array(B * w);
    idx.forEach((j, i) => buf.set(rows.subarray(j * w, (j + 1) * w), i * w));
    return buf;
  };
  try {
    for (let epoch = resume ? resume.epoch : 0; epoch < cfg.epochs && !stopped; epoch++) {
      const te = performance.now();
      const order = rng.shuffle(data.train.map((_, i) => i));
      const pending: StepResult[] = [];
      let lossSum = 0, hitSum = 0, lr = 0, seen = 0;
      // The step each pending loss belongs to, so a NaN is reported where it happened.
      let pendingFrom = step;
      const drain = async () => {
        const rs = pending.splice(0);
        for (const [k, r] of rs.entries()) {
          const loss = (await r.loss.data())[0];
          lossSum += loss;
          hitSum += (await r.correct.data())[0];
          r.loss.dispose(); r.correct.dispose();
          if (!Number.isFinite(loss) && !diverged) diverged = divergedMessage(`loss became ${loss}`, pendingFrom + k + 1, epoch + 1, cfg.lr, best?.epoch ?? null);
        }
        pendingFrom += rs.length;
      };
      for (let s = 0; s < stepsPerEpoch; s++) {
        const idx = order.slice(s * B, (s + 1) * B);
        const labels = new Int32Array(B);
        const weights = new Float32Array(B);
        idx.forEach((j, i) => { labels[i] = data.train[j].label; weights[i] = 1; });
        const batch = { inputs: await batchInputs(idx), rowShape, labels, weights, size: B };
        lr = lr0 * lrMultiplier(cfg.schedule, step, stepsPerEpoch, cfg.warmupEpochs, cfg.epochs);
        if (!compiled && hooks.precompile) {
          compiled = true;
          // No dropout and no update: the RNG and the variables stay as they are.
          const plain = forwardOf(model, proto, vars, { cached, embedded, recompute: cfg.recompute });
          await hooks.precompile(() => { const g = batchGradients(plain, vars, batch, micro); tf.dispose([g.loss, g.correct, ...g.grads.values()]); });
        }
        const run = () => stepper.step(batch, lr);
        if (step === 0) {
          // The first step's peak, measured once: tf.profile tracks every allocation.
          let r!: StepResult;
          const info = await tf.profile(() => { r = run(); return [r.loss, r.correct]; });
          peakBytes = info.peakBytes;
          pending.push(r);
        } else pending.push(run());
        step++;
        seen += idx.length;
        if (pending.length >= 8) await drain();
        if (diverged) break;
        hooks.onStep?.(step, totalSteps);
        if (hooks.gate) await hooks.gate();
        if (hooks.shouldStop?.()) { stopped = true; break; }
      }
      await drain();
      const seconds = (performance.now() - te) / 1000;
      stepper.suspend();
      const state = diverged ? null : await readVars(proto, vars, state0, model.config);
      if (state && !allFinite(state)) diverged = divergedMessage('parameters became NaN or Inf', step, epoch + 1, cfg.lr, best?.epoch ?? null);
      // Nothing of a diverged epoch is kept: no report, no checkpoint; the last good one stays.
      if (diverged || !state) break;
      let valAcc: number | null = null;
      if (data.val.length) valAcc = (await evaluateTuned(model, tuned, data.val, data.classes, p, B, valFeats)).accuracy;
      // Keep the best epoch on validation (strictly better, as the official trainer); without validation, the last.
      if (!best || valAcc === null || valAcc > best.valAccuracy) best = { epoch: epoch + 1, valAccuracy: valAcc ?? 0, state };
      const report: EpochReport = {
        epoch: epoch + 1, loss: lossSum / Math.max(1, Math.ceil(seen / B)), trainAccuracy: hitSum / Math.max(1, seen),
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
    stepper.dispose();
    disposeVars(vars);
    opt.dispose();
  }
  if (diverged && !best) throw new VptError('training', diverged);
  if (!best) throw new VptError('training', 'stopped before the first epoch finished');
  let validation: Evaluation | null = null;
  if (data.val.length) {
    const bv = makeVars(proto, best.state, model.config, false);
    try { validation = await evaluateTuned(model, { proto, vars: bv }, data.val, data.classes, p, B, valFeats); } finally { disposeVars(bv); }
  }
  return {
    state: best.state, bestEpoch: best.epoch, bestValAccuracy: data.val.length ? best.valAccuracy : null, validation, history,
    appliedLr: lr0, stopped, tunedParams: countTuned(best.state), seconds: (performance.now() - t0) / 1000, peakBytes, cached, embedded, diverged, steps: { ...stepper.stats },
  };
}
