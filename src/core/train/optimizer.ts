/**
 * SGD (momentum, weight decay) and AdamW with PyTorch's update rules, on
 * tfjs variables. State is exportable as plain arrays for checkpoints.
 */
import * as tf from '@tensorflow/tfjs';
import { constant, holdScalars } from '../vit/ops';

export type OptimizerName = 'sgd' | 'adamw';

export interface OptimizerConfig {
  name: OptimizerName;
  momentum: number; /** SGD */
  beta1: number; beta2: number; eps: number; /** AdamW */
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = { name: 'sgd', momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export interface ParamGroup { name: string; variable: tf.Variable; weightDecay: number }

/** Plain-data optimiser state: slot arrays by parameter name. */
export interface OptimizerState { step: number; slots: Record<string, Float32Array[]> }

export class Optimizer {
  private step = 0;
  private readonly slots = new Map<string, tf.Variable[]>();

  /**
   * The run's fixed numbers held as tensors (ops.ts's holdScalars): a plain
   * number in an op becomes a new scalar tensor, which on webgpu is an upload
   * through a fresh buffer that also ends the compute pass, per parameter and step.
   */
  private readonly release: () => void;

  constructor(readonly config: OptimizerConfig, readonly params: ParamGroup[]) {
    const { momentum, beta1, beta2, eps } = config;
    this.release = holdScalars([momentum, beta1, beta2, 1 - beta1, 1 - beta2, eps, ...params.map((p) => p.weightDecay)]);
  }

  /**
   * The numbers the next step at rate `lr` takes from the host, in the order
   * `apply`'s `given` holds them as tensors. SGD: the rate. AdamW: sqrt(1 -
   * beta2^t), lr / (1 - beta1^t) and, per parameter with weight decay, 1 - lr
   * wd. They change from step to step, so a replayed step (train/replay.ts)
   * must read them from buffers written before it, not from uploads the step
   * makes itself.
   */
  hostScalars(lr: number): number[] {
    if (this.config.name === 'sgd') return [lr];
    const { beta1, beta2 } = this.config, t = this.step + 1;
    return [Math.sqrt(1 - beta2 ** t), lr / (1 - beta1 ** t), ...this.params.filter((p) => p.weightDecay).map((p) => 1 - lr * p.weightDecay)];
  }

  /** Count a step that ran without `apply`: one replayed from a captured step's commands, which updated the variables on the GPU. */
  countStep(): void {
    this.step++;
  }

  /**
   * Apply one update with learning rate `lr`; `grads` by parameter name.
   * `given`: hostScalars(lr) as scalar tensors the caller holds (each else a new upload).
   */
  apply(grads: Map<string, tf.Tensor>, lr: number, given?: tf.Scalar[]): void {
    const scalars = given ?? this.hostScalars(lr).map((x) => tf.scalar(x));
    this.step++;
    const { name, momentum, beta1, beta2, eps } = this.config;
    let decay = 2; // AdamW's next 1 - lr wd in `scalars`
    for (const p of this.params) {
      const g0 = grads.get(p.name);
      const decayed = name === 'adamw' && p.weightDecay ? scalars[decay++] : null;
      if (!g0) continue;
      tf.tidy(() => {
        const w = p.variable;
        if (name === 'sgd') {
          // torch.optim.SGD: g += wd * w; buf = g (first step) or m * buf + g; w -= lr * buf.
          const g = p.weightDecay ? tf.add(g0, tf.mul(w, constant(p.weightDecay))) : g0;
          let upd: tf.Tensor = g;
          if (momentum) {
            const slot = this.slots.get(p.name);
            if (!slot) this.slots.set(p.name, [tf.variable(g, false)]);
            else { slot[0].assign(tf.add(tf.mul(slot[0], constant(momentum)), g)); upd = slot[0]; }
          }
          w.assign(tf.sub(w, tf.mul(upd, scalars[0])));
        } else {
          // torch.optim.AdamW: decoupled decay w *= 1 - lr * wd, then Adam with bias correction.
          let slot = this.slots.get(p.name);
          if (!slot) { slot = [tf.variable(tf.zerosLike(w), false), tf.variable(tf.zerosLike(w), false)]; this.slots.set(p.name, slot); }
          const [m, v] = slot;
          m.assign(tf.add(tf.mul(m, constant(beta1)), tf.mul(g0, constant(1 - beta1))));
          v.assign(tf.add(tf.mul(v, constant(beta2)), tf.mul(tf.square(g0), constant(1 - beta2))));
          const denom = tf.add(tf.div(tf.sqrt(v), scalars[0]), constant(eps));
          w.assign(tf.sub(decayed ? tf.mul(w, decayed) : w, tf.mul(tf.div(m, denom), scalars[1])));
        }
      });
    }
    if (!given) tf.dispose(scalars);
  }

  /** The state's variables (momentum, Adam's moments): a step changes them as it changes the parameters. */
  stateVariables(): tf.Variable[] {
    return [...this.slots.values()].flat();
  }

  async exportState(): Promise<OptimizerState> {
    const slots: Record<string, Float32Array[]> = {};
    for (const [k, vs] of this.slots) slots[k] = await Promise.all(vs.map(async (v) => (await v.data()) as Float32Array));
    return { step: this.step, slots };
  }

  importState(s: OptimizerState): void {
    this.disposeSlots();
    this.step = s.step;
    for (const p of this.params) {
      const arr = s.slots[p.name];
      if (arr) this.slots.set(p.name, tf.tidy(() => arr.map((a) => tf.variable(tf.tensor(a, p.variable.shape), false))));
    }
  }

  private disposeSlots(): void {
    for (const vs of this.slots.values()) vs.forEach((v) => v.dispose());
    this.slots.clear();
  }

  dispose(): void {
    this.disposeSlots();
    this.release();
  }
}
