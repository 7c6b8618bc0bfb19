/**
 * The paper's table on the user's data: several protocols trained one after
 * another on the same split with the same budget (epochs, batch, seeds),
 * each row with validation accuracy, tuned parameters, task-file size,
 * time and peak memory; summaries give mean and spread over seeds.
 */
import { countTuned } from '../tuning/params';
import { formatSpec, protocolOf, titleOf } from '../tuning/registry';
import type { ProtocolSpec, TunedState } from '../tuning/types';
import { resolveTrainConfig, type TrainConfig } from './config';
import type { TrainData, TrainHooks, TrainResult } from './loop';

/** Trains one configuration: `train` bound to a model (the studio wraps it in device-fault recovery). */
export type Runner = (data: TrainData, cfg: TrainConfig, hooks: TrainHooks) => Promise<TrainResult>;

export interface CompareRun {
  protocol: string; /** e.g. "vpt-deep-10" */
  title: string;
  seed: number;
  accuracy: number | null; /** best validation accuracy */
  tunedParams: number;
  fileBytes: number;
  seconds: number;
  peakBytes: number | null;
  bestEpoch: number;
  lr: number; /** per 256 images */
  cached: boolean;
}

export interface CompareSummary {
  protocol: string;
  title: string;
  runs: number;
  accuracy: number | null; /** mean over seeds */
  accuracyStd: number | null; /** sample standard deviation; null for one seed */
  tunedParams: number;
  fileBytes: number;
  seconds: number; /** mean per run */
  peakBytes: number | null; /** max over runs */
  /** Full fine-tuning keeps a whole model per task; every other protocol shares the backbone. */
  sharesBackbone: boolean;
}

export interface CompareHooks {
  /** Before each run: index among all runs, their count. */
  onStart?: (spec: ProtocolSpec, seed: number, index: number, total: number) => void;
  /** Hooks for the run itself (progress, stop, pause). */
  run?: (spec: ProtocolSpec, seed: number) => TrainHooks;
  onRun?: (run: CompareRun, result: TrainResult) => void | Promise<void>;
  /** Polled between runs: true skips the rest. */
  shouldStop?: () => boolean;
}

/**
 * Train every protocol for every seed. `settings` are shared; a learning rate
 * left unset takes each protocol's default. `fileBytes` measures the task
 * file the caller would write for a state.
 */
export async function compareProtocols(
  run: Runner, data: TrainData, settings: Partial<TrainConfig>, specs: ProtocolSpec[], seeds: number[],
  fileBytes: (s: TunedState, cfg: TrainConfig) => number, hooks: CompareHooks = {},
): Promise<CompareRun[]> {
  const runs: CompareRun[] = [];
  const total = specs.length * seeds.length;
  for (const spec of specs) {
    for (const seed of seeds) {
      if (hooks.shouldStop?.()) return runs;
      hooks.onStart?.(spec, seed, runs.length, total);
      const cfg = resolveTrainConfig({ ...settings, protocol: spec, seed });
      const r = await run(data, cfg, hooks.run?.(spec, seed) ?? {});
      const row: CompareRun = {
        protocol: formatSpec(spec), title: titleOf(spec), seed, accuracy: r.bestValAccuracy, tunedParams: countTuned(r.state),
        fileBytes: fileBytes(r.state, cfg), seconds: r.seconds, peakBytes: r.peakBytes, bestEpoch: r.bestEpoch, lr: cfg.lr, cached: r.cached,
      };
      runs.push(row);
      await hooks.onRun?.(row, r);
    }
  }
  return runs;
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

/** One row per protocol, in first-seen order. */
export function summarise(runs: CompareRun[]): CompareSummary[] {
  const by = new Map<string, CompareRun[]>();
  for (const r of runs) by.set(r.protocol, [...(by.get(r.protocol) ?? []), r]);
  return [...by.values()].map((rs) => {
    const acc = rs.map((r) => r.accuracy).filter((a): a is number => a !== null);
    const m = acc.length ? mean(acc) : null;
    const sd = acc.length > 1 ? Math.sqrt(acc.reduce((s, a) => s + (a - m!) ** 2, 0) / (acc.length - 1)) : null;
    const peaks = rs.map((r) => r.peakBytes).filter((b): b is number => b !== null);
    return {
      protocol: rs[0].protocol, title: rs[0].title, runs: rs.length, accuracy: m, accuracyStd: sd,
      tunedParams: rs[0].tunedParams, fileBytes: rs[0].fileBytes, seconds: mean(rs.map((r) => r.seconds)),
      peakBytes: peaks.length ? Math.max(...peaks) : null,
      sharesBackbone: protocolOf(rs[0].protocol.replace(/-\d+$/, '')).name !== 'full',
    };
  });
}

/**
 * Parameters stored for `tasks` tasks as a multiple of one backbone (the
 * paper's "Total params" column, 1.18x for VPT-deep on its 24 tasks): the
 * shared backbone once plus every task's tuned tensors, or for Full a whole
 * model per task.
 */
export function storedMultiple(s: CompareSummary, tasks: number, backboneParams: number): number {
  if (!s.sharesBackbone) return (tasks * s.tunedParams) / backboneParams;
  return (backboneParams + tasks * s.tunedParams) / backboneParams;
}

/** The table as CSV (one line per protocol), RFC 4180 quoting. */
export function compareCsv(rows: CompareSummary[], tasks: number, backboneParams: number): string {
  const q = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const head = ['protocol', 'title', 'runs', 'accuracy', 'accuracy_std', 'tuned_params', 'file_bytes', `stored_for_${tasks}_tasks_x_backbone`, 'seconds', 'peak_bytes'];
  const lines = rows.map((r) => [
    r.protocol, r.title, String(r.runs), r.accuracy === null ? '' : r.accuracy.toFixed(4), r.accuracyStd === null ? '' : r.accuracyStd.toFixed(4),
    String(r.tunedParams), String(r.fileBytes), storedMultiple(r, tasks, backboneParams).toFixed(4), r.seconds.toFixed(2), r.peakBytes === null ? '' : String(r.peakBytes),
  ].map(q).join(','));
  return [head.join(','), ...lines].join('\n') + '\n';
}
