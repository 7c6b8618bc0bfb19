/**
 * The training loop's step on WebGPU: a tfjs step until the step's shape has
 * settled, then one step captured and every later step replayed from its
 * commands (vit/webgpu-replay.ts says why and what makes that exact).
 * Elsewhere, or when a capture is refused (a profiler, an upload tfjs makes
 * that changes from step to step), every step runs through tfjs.
 *
 * Host data goes through buffers of the stepper's own, one per pass and kind
 * (images or embeddings, labels, weights), one per number the optimiser takes
 * from the host (Optimizer.hostScalars: the learning rate, AdamW's bias
 * corrections and decay factors), one per prompt-dropout mask (drawn ahead,
 * PromptDropout in tuning/vpt.ts) and one for the loss's denominator,
 * written before each step: so a tfjs step also reuses them rather than
 * creating and mapping a new buffer per upload, and the buffers a captured
 * step reads are the ones the next step's data is written to.
 */
import * as tf from '@tensorflow/tfjs';
import type { Vars } from '../tuning/types';
import { beginCapture, abandonCapture, bufferOf, endCapture, flush, replayable, sameUploads, storageBuffer, type Backend, type Buf, type Replay, type StepVariable, type Upload } from '../vit/webgpu-replay';
import type { PromptDropout } from '../tuning/vpt';
import type { Optimizer } from './optimizer';
import { lossDenominator, optimizerStep, type Forward, type HostBatch, type Rows, type StepResult } from './step';

/**
 * Steps run through tfjs before one is captured: the first compiles the shaders and writes the
 * uniforms, the second is the optimiser's first with momentum.
 */
export const WARMUP_STEPS = 2;
/** Captures tried in a row without a replay that ran: past them (the step's host data changes every step) no more are tried for this batch shape. */
export const MAX_CAPTURES = 4;

// VPT_REPLAY=0 in Node turns it off (to compare, or to rule it out when something looks wrong).
let enabled = !(typeof process !== 'undefined' && process.env?.VPT_REPLAY === '0');
/** Replay on or off (the bench and the tests compare both); returns the previous setting. */
export function setReplay(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** What the stepper did: for the bench, the tests and a user asking why a run is slow. */
export interface StepperStats {
  steps: number; replayed: number; captures: number; dispatches: number;
  /** Why the last capture could not be replayed (null once one is), and why the last replay was dropped. */
  refused: string | null; dropped: string | null;
  /** True once captures stopped for this batch shape: every step runs through tfjs. */
  gaveUp: boolean;
  /** Whether any step ran on webgpu (elsewhere nothing is captured). */
  webgpu: boolean;
}

/**
 * On webgpu, how many steps were replayed from a captured one, or why none
 * were (the CLI's log and the studio's result): the difference in speed
 * between runs is often this. Null elsewhere.
 */
export function describeReplay(s: StepperStats): string | null {
  if (!s.webgpu) return null;
  if (s.replayed) return `steps: ${s.steps}, ${s.replayed} replayed from a captured one`;
  return `steps: ${s.steps}, none replayed: ${s.refused ?? 'too few steps'}`;
}

/** The step's host data in buffers of its own, written before each step, read through zero-copy tensors. */
class StepInputs {
  private readonly bufs = new Map<string, Buf>();
  constructor(private readonly b: Backend) {}

  write(slot: string, data: Float32Array | Int32Array): void {
    let buf = this.bufs.get(slot);
    if (!buf || buf.size !== Math.max(4, data.byteLength)) {
      buf?.destroy();
      buf = storageBuffer(this.b.device, data.byteLength);
      this.bufs.set(slot, buf);
    }
    this.b.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  tensor(slot: string, shape: number[], dtype: 'float32' | 'int32'): tf.Tensor {
    return tf.tensor({ buffer: this.bufs.get(slot)! as unknown as GPUBuffer, zeroCopy: true }, shape, dtype);
  }

  buffers(): Buf[] { return [...this.bufs.values()]; }

  dispose(): void {
    this.bufs.forEach((x) => x.destroy());
    this.bufs.clear();
  }
}

export class Stepper {
  private backend: Backend | null = null;
  private inputs: StepInputs | null = null;
  private replay: Replay | null = null;
  /** The captured step's loss and hits: the replay writes them, and each step returns copies. */
  private kept: tf.Tensor[] = [];
  /** What the last capture uploaded, to compare with the next. */
  private uploads: Upload[] | null = null;
  private shape = '';
  private settled = 0;
  /** Captures tried since the last replay that ran (stats.captures counts the ones kept). */
  private attempts = 0;
  readonly stats: StepperStats = { steps: 0, replayed: 0, captures: 0, dispatches: 0, refused: null, dropped: null, gaveUp: false, webgpu: false };

  /** The shapes of the masks prompt dropout asked for in the last step of this batch shape: the next step's are drawn ahead to them. */
  private maskShapes: [number, number, number][] | null = null;

  /** `dropout`: the forward's prompt dropout, whose masks the stepper draws ahead into its inputs. */
  constructor(private readonly forward: Forward, private readonly vars: Vars, private readonly opt: Optimizer, private readonly microBatch: number, private readonly dropout?: PromptDropout) {}

  /** One optimiser step (optimizerStep's contract: read loss and hits asynchronously, then dispose them). */
  step(batch: HostBatch, lr: number): StepResult {
    this.stats.steps++;
    const b = tf.getBackend() === 'webgpu' ? tf.backend() : null;
    if (!enabled || !replayable(b)) {
      this.reset();
      return optimizerStep(this.forward, this.vars, this.opt, batch, lr, this.microBatch);
    }
    this.stats.webgpu = true;
    if (b !== this.backend) { this.reset(); this.backend = b; this.inputs = new StepInputs(b); }
    const shape = `${batch.size} ${batch.rowShape.join('x')} ${this.microBatch}`;
    if (shape !== this.shape) { this.drop(); this.shape = shape; this.settled = 0; this.attempts = 0; this.uploads = null; this.stats.gaveUp = false; this.maskShapes = null; }
    const inputs = this.inputs!;
    // Every pass's rows and the optimiser's numbers written first: a capture refuses any write made while it watches.
    flush(b);
    const px = batch.rowShape.reduce((x, y) => x * y, 1);
    for (let from = 0, i = 0; from < batch.size; from += this.microBatch, i++) {
      const n = Math.min(this.microBatch, batch.size - from);
      inputs.write(`x${i}`, batch.inputs.subarray(from * px, (from + n) * px));
      inputs.write(`y${i}`, batch.labels.subarray(from, from + n));
      inputs.write(`w${i}`, batch.weights.subarray(from, from + n));
    }
    const scalars = this.opt.hostScalars(lr);
    scalars.forEach((x, i) => inputs.write(`s${i}`, Float32Array.of(x)));
    inputs.write('denom', Float32Array.of(lossDenominator(batch)));
    // Prompt dropout's masks for this step, drawn now in the order the step will ask for them (the same
    // values it would draw itself) once a step of this shape has shown which it asks for.
    const dropout = this.dropout && this.dropout.rate > 0 ? this.dropout : null;
    const masks = dropout && this.maskShapes ? this.maskShapes : [];
    if (dropout) dropout.drawAhead(masks).forEach((m, i) => inputs.write(`m${i}`, m));

    if (this.replay) {
      const out = this.kept.map(() => fresh(b));
      if (this.replay.run(this.kept.map((t) => bufferOf(b, t)), out.map((t) => bufferOf(b, t)))) {
        this.stats.replayed++;
        this.attempts = 0;
        this.opt.countStep();
        return { loss: out[0] as tf.Scalar, correct: out[1] as tf.Scalar };
      }
      tf.dispose(out);
      this.stats.dropped = this.replay.reason;
      this.drop();
    }

    const rowsOf: Rows = (_b, from, n) => {
      const i = Math.floor(from / this.microBatch);
      return { inputs: inputs.tensor(`x${i}`, [n, ...batch.rowShape], 'float32'), labels: inputs.tensor(`y${i}`, [n], 'int32') as tf.Tensor1D, weights: inputs.tensor(`w${i}`, [n], 'float32') as tf.Tensor1D };
    };
    const given = scalars.map((_, i) => inputs.tensor(`s${i}`, [], 'float32') as tf.Scalar), denom = inputs.tensor('denom', [], 'float32') as tf.Scalar;
    const ahead = masks.map((s, i) => inputs.tensor(`m${i}`, s, 'float32') as tf.Tensor3D);
    dropout?.beginStep(ahead);
    const capture = !this.stats.gaveUp && ++this.settled > WARMUP_STEPS;
    const variables = capture ? this.variables(b) : [];
    if (capture) beginCapture(b);
    let r: StepResult;
    try {
      r = optimizerStep(this.forward, this.vars, this.opt, batch, lr, this.microBatch, { rows: rowsOf, denom, scalars: given });
    } catch (e) {
      if (capture) abandonCapture(b);
      throw e;
    } finally {
      tf.dispose([...given, denom, ...ahead]);
      if (dropout) this.maskShapes = dropout.endStep();
    }
    if (!capture) return r;
    // A refused capture is tried again next step (a uniform seen for the first time is written once), up to MAX_CAPTURES in a row.
    const giveUp = ++this.attempts >= MAX_CAPTURES;
    const got = endCapture(b, { inputs: inputs.buffers(), variables, outputs: [bufferOf(b, r.loss), bufferOf(b, r.correct)] });
    if (typeof got === 'string') { this.stats.refused = got; this.stats.gaveUp = giveUp; return r; }
    // Host data the step uploads by itself (tfjs's ones in gradients, ...) must be the same every step:
    // a capture that uploads any is kept only if the one before uploaded the same.
    const previous = this.uploads;
    this.uploads = got.uploads;
    if (got.uploads.length && !(previous && sameUploads(previous, got.uploads))) {
      got.drop();
      if (previous) this.stats.refused = 'host data that changes from step to step';
      this.stats.gaveUp = giveUp;
      return r;
    }
    this.replay = got;
    this.stats.refused = null;
    this.stats.captures++;
    this.stats.dispatches = got.dispatches;
    this.kept = [r.loss, r.correct];
    const out = this.kept.map(() => fresh(b));
    copyInto(b, this.kept.map((t) => bufferOf(b, t)), out.map((t) => bufferOf(b, t)));
    return { loss: out[0] as tf.Scalar, correct: out[1] as tf.Scalar };
  }

  /** The trained variables and the optimiser's state: their buffers now, and how to find them after the step. */
  private variables(b: Backend): StepVariable[] {
    return [...this.vars.values(), ...this.opt.stateVariables()].map((v) => ({
      before: bufferOf(b, v),
      now: () => bufferOf(b, v),
      clearHostCopy: () => { const d = b.tensorMap.get(v.dataId); if (d?.resource) d.values = null; },
    }));
  }

  private drop(): void {
    this.replay?.drop();
    this.replay = null;
    tf.dispose(this.kept);
    this.kept = [];
  }

  private reset(): void {
    this.drop();
    this.inputs?.dispose();
    this.inputs = null;
    this.backend = null;
    this.shape = '';
  }

  /**
   * Let the captured step's buffers go back to the pool (before a validation pass, which would
   * otherwise allocate its own); the next step captures again.
   */
  suspend(): void {
    this.drop();
  }

  /** Give back what the stepper holds (the captured step's buffers, its inputs). */
  dispose(): void {
    if (this.backend) flush(this.backend);
    this.reset();
  }
}

/** A new float32 scalar tensor with a GPU buffer of its own. */
function fresh(b: Backend): tf.Tensor {
  const info = b.makeTensorInfo([], 'float32');
  b.uploadToGPU(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info);
}

function copyInto(b: Backend, from: Buf[], to: Buf[]): void {
  flush(b);
  const enc = b.device.createCommandEncoder();
  from.forEach((f, i) => enc.copyBufferToBuffer(f, 0, to[i], 0, f.size));
  b.queue.submit([enc.finish()]);
}
