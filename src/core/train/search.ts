/**
 * The paper's hyper-parameter protocol, scaled to a browser: a grid over
 * learning rate and weight decay, each setting trained on a split of the
 * training data (VTAB-1k style 800/200 when there are exactly 1 000 training
 * images, 90/10 otherwise), the best setting then retrained on all training
 * data. Settings that are clearly hopeless stop early.
 */
import { VptError } from '../errors';
import { defaultLr, resolveTrainConfig, type TrainConfig } from './config';
import type { Runner } from './compare';
import type { TrainData, TrainHooks, TrainResult } from './loop';
import { splitTrainVal } from './split';

export interface Grid { lr: number[]; wd: number[] }

/** The VPT paper's grid for prompt tuning (learning rate per 256 images; SGD). */
export const PAPER_GRID: Grid = { lr: [50, 25, 10, 5, 2.5, 1, 0.5, 0.25, 0.1, 0.05], wd: [0.01, 0.001, 0.0001, 0] };

/** The default: three rates around the protocol's default, with and without decay. */
export function smallGrid(cfg: Pick<TrainConfig, 'optimizer' | 'protocol'>): Grid {
  const lr0 = defaultLr(cfg.optimizer, cfg.protocol.name);
  return { lr: [4 * lr0, lr0, lr0 / 4], wd: [0.001, 0] };
}

/** The paper's grid, scaled for protocols and optimisers whose default rate differs from VPT's SGD 1.0. */
export function paperGrid(cfg: Pick<TrainConfig, 'optimizer' | 'protocol'>): Grid {
  const f = defaultLr(cfg.optimizer, cfg.protocol.name);
  return { lr: PAPER_GRID.lr.map((v) => v * f), wd: PAPER_GRID.wd };
}

export type CellStatus = 'pending' | 'running' | 'done' | 'stopped-early' | 'diverged';

export interface Cell {
  lr: number;
  wd: number;
  status: CellStatus;
  /** Validation accuracy on the tuning split (best epoch), or the last seen while running. */
  accuracy: number | null;
  epochs: number;
  reason?: string;
}

export interface SearchHooks {
  onCell?: (cell: Cell, index: number) => void;
  /** Hooks for each grid run and for the final run. */
  run?: (phase: 'grid' | 'final', cell: Cell | null) => TrainHooks;
  onFinalStart?: (best: Cell) => void;
  shouldStop?: () => boolean;
}

export interface SearchResult { cells: Cell[]; best: Cell; final: TrainResult; split: 'vtab' | 'fgvc'; tuneTrain: number; tuneVal: number }

/** The tuning split: 800/200 for VTAB-1k-sized training sets, else 90/10. */
export function tuningSplit(labels: number[], seed: number): { train: number[]; val: number[]; rule: 'vtab' | 'fgvc' } {
  const rule = labels.length === 1000 ? 'vtab' : 'fgvc';
  return { ...splitTrainVal(labels, rule === 'vtab' ? 0.2 : 0.1, seed), rule };
}

/**
 * A setting is hopeless once a third of its epochs (at least two) are done and its
 * validation accuracy is still at chance, or 25 points behind the best
 * setting finished so far.
 */
export function hopeless(epoch: number, epochs: number, acc: number | null, classes: number, bestSoFar: number | null): string | null {
  if (acc === null || epoch < Math.max(2, Math.ceil(epochs / 3)) || epoch >= epochs) return null;
  if (acc <= 1 / classes + 0.01) return `still at chance (${(100 * acc).toFixed(1)}%) after ${epoch} of ${epochs} epochs`;
  if (bestSoFar !== null && acc < bestSoFar - 0.25) return `${(100 * acc).toFixed(1)}% after ${epoch} epochs, 25 points behind the best (${(100 * bestSoFar).toFixed(1)}%)`;
  return null;
}

export async function searchHyper(run: Runner, data: TrainData, settings: Partial<TrainConfig>, grid: Grid, hooks: SearchHooks = {}): Promise<SearchResult> {
  const base = resolveTrainConfig({ ...settings, valSplit: 0 });
  const split = tuningSplit(data.train.map((e) => e.label), base.seed);
  const tuneData: TrainData = { train: split.train.map((i) => data.train[i]), val: split.val.map((i) => data.train[i]), classes: data.classes };
  if (!tuneData.val.length) throw new VptError('search', 'too few training images to hold some out for tuning');
  const cells: Cell[] = grid.lr.flatMap((lr) => grid.wd.map((wd) => ({ lr, wd, status: 'pending' as CellStatus, accuracy: null, epochs: 0 })));
  cells.forEach((c, i) => hooks.onCell?.(c, i));
  let bestSoFar: number | null = null;
  for (let i = 0; i < cells.length; i++) {
    if (hooks.shouldStop?.()) break;
    const cell = cells[i];
    cell.status = 'running';
    hooks.onCell?.(cell, i);
    const outer = hooks.run?.('grid', cell) ?? {};
    let early: string | null = null;
    try {
      const r = await run(tuneData, { ...base, lr: cell.lr, weightDecay: cell.wd }, {
        ...outer,
        onEpoch: (e) => {
          outer.onEpoch?.(e);
          cell.epochs = e.epoch;
          cell.accuracy = Math.max(cell.accuracy ?? 0, e.valAccuracy ?? 0);
          early ??= hopeless(e.epoch, base.epochs, e.valAccuracy, data.classes.length, bestSoFar);
          hooks.onCell?.(cell, i);
        },
        shouldStop: () => early !== null || (outer.shouldStop?.() ?? false),
      });
      cell.accuracy = r.bestValAccuracy;
      cell.status = r.diverged ? 'diverged' : early ? 'stopped-early' : 'done';
      if (r.diverged) cell.reason = r.diverged;
      else if (early) cell.reason = early;
      if (cell.accuracy !== null && (bestSoFar === null || cell.accuracy > bestSoFar)) bestSoFar = cell.accuracy;
    } catch (e) {
      if (!(e instanceof VptError) || !/loss became/.test(e.message)) throw e;
      cell.status = 'diverged';
      cell.reason = e.message.replace(/^training: /, '');
    }
    hooks.onCell?.(cell, i);
  }
  const finished = cells.filter((c) => c.status === 'done' || c.status === 'stopped-early');
  if (!finished.length) throw new VptError('search', 'every setting diverged: try a lower learning-rate grid');
  // Ties go to the earlier cell, i.e. the larger learning rate as listed.
  const best = finished.reduce((a, c) => ((c.accuracy ?? -1) > (a.accuracy ?? -1) ? c : a));
  hooks.onFinalStart?.(best);
  const final = await run(data, { ...base, lr: best.lr, weightDecay: best.wd }, hooks.run?.('final', null) ?? {});
  return { cells, best, final, split: split.rule, tuneTrain: tuneData.train.length, tuneVal: tuneData.val.length };
}
