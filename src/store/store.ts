/**
 * The studio's one zustand store, made of slices. Plain data only: never
 * tensors, Files or workers (the worker lives in ui/engine.ts, files are
 * handed straight to it).
 */
import { create } from 'zustand';
import { DEFAULT_TRAIN, type TrainConfig } from '../core/train/config';
import type { EpochReport } from '../core/train/checkpoint';
import type { CompareRun } from '../core/train/compare';
import type { Cell } from '../core/train/search';
import type { ProtocolSpec } from '../core/tuning/types';
import type { BackboneSummary, BackendInfo, DatasetSummary, Prediction, Thumb, TrainOutcome } from '../worker/protocol';

export type Phase = 'idle' | 'busy' | 'ready' | 'error';

export interface Download { file: string; loaded: number; total: number | null; bytesPerSecond: number }

export interface LibraryEntry {
  id: string; name: string; classes: string[]; protocol: string; title: string; accuracy: number | null;
  fingerprint: string | null; backboneName: string; bytes: number; createdAt: number;
}

export interface State {
  engine: { phase: Phase; info: BackendInfo | null; error: string | null };
  backbone: { phase: Phase; summary: BackboneSummary | null; error: string | null; download: Download | null; cached: { url: string; bytes: number }[] };
  dataset: { phase: Phase; summary: DatasetSummary | null; error: string | null; progress: { done: number; total: number } | null; dropped: string[]; renamed: Record<string, string>; split: 'fgvc' | 'vtab' | 'own' };
  training: { phase: 'idle' | 'running' | 'paused' | 'done' | 'error'; config: TrainConfig; history: EpochReport[]; step: number; totalSteps: number; startedAt: number; outcome: TrainOutcome | null; error: string | null; name: string;
    /** Memory for a whole training step, the backbone included, in GiB: larger batches run as passes within it. */
    memoryGiB: number;
    /** An unfinished run found in IndexedDB (from a closed or reloaded tab). */
    saved: { epoch: number; epochs: number; fingerprint: string; classes: string[]; name: string; backboneName: string } | null };
  library: { entries: LibraryEntry[]; error: string | null };
  /** The protocol comparison: chosen protocols, runs as they finish, the run in progress. */
  compare: { phase: 'idle' | 'running' | 'done' | 'error'; specs: ProtocolSpec[]; seeds: number; tasks: number; sameLr: boolean; runs: CompareRun[];
    current: { title: string; seed: number; index: number; total: number } | null; error: string | null };
  /** The learning-rate x weight-decay search for the Train panel's protocol. */
  search: { phase: 'idle' | 'running' | 'done' | 'error'; grid: 'small' | 'paper'; cells: Cell[]; best: Cell | null; final: boolean; note: string | null; error: string | null };
  trial: { preview: Thumb | null; predictions: Prediction[]; error: string | null; busy: boolean };
  /** Set when a write to browser storage hit its quota: what was not stored, shown with what can be deleted. */
  storage: { full: string | null };
  notices: string[];
}

export const initialState: State = {
  engine: { phase: 'busy', info: null, error: null },
  backbone: { phase: 'idle', summary: null, error: null, download: null, cached: [] },
  dataset: { phase: 'idle', summary: null, error: null, progress: null, dropped: [], renamed: {}, split: 'fgvc' },
  training: { phase: 'idle', config: { ...DEFAULT_TRAIN, epochs: 10, batch: 16, warmupEpochs: 1 }, history: [], step: 0, totalSteps: 0, startedAt: 0, outcome: null, error: null, name: 'my-task', memoryGiB: 2, saved: null },
  library: { entries: [], error: null },
  compare: { phase: 'idle', specs: [{ name: 'linear', n: 0 }, { name: 'vpt-deep', n: 10 }], seeds: 1, tasks: 24, sameLr: false, runs: [], current: null, error: null },
  search: { phase: 'idle', grid: 'small', cells: [], best: null, final: false, note: null, error: null },
  trial: { preview: null, predictions: [], error: null, busy: false },
  storage: { full: null },
  notices: [],
};

type Patch<K extends keyof State> = Partial<State[K]>;

export interface Actions {
  patch: <K extends keyof State>(slice: K, p: Patch<K>) => void;
  notify: (message: string) => void;
}

export const useStore = create<State & Actions>()((set) => ({
  ...initialState,
  patch: (slice, p) => set((s) => ({ [slice]: { ...s[slice], ...p } }) as Partial<State>),
  notify: (message) => set((s) => ({ notices: [...s.notices.slice(-4), message] })),
}));

export const patch = <K extends keyof State>(slice: K, p: Patch<K>) => useStore.getState().patch(slice, p);
