/**
 * The studio's one zustand store, made of slices. Plain data only: never
 * tensors, Files or workers (the worker lives in ui/engine.ts, files are
 * handed straight to it).
 */
import { create } from 'zustand';
import { DEFAULT_TRAIN, type TrainConfig } from '../core/train/config';
import type { EpochReport } from '../core/train/checkpoint';
import type { BackboneSummary, BackendInfo, DatasetSummary, Prediction, Thumb, TrainOutcome } from '../worker/protocol';

export type Phase = 'idle' | 'busy' | 'ready' | 'error';

export interface Download { file: string; loaded: number; total: number | null; bytesPerSecond: number }

export interface LibraryEntry {
  id: string; name: string; classes: string[]; variant: string; numPrompts: number; accuracy: number | null;
  fingerprint: string | null; backboneName: string; bytes: number; createdAt: number;
}

export interface State {
  engine: { phase: Phase; info: BackendInfo | null; error: string | null };
  backbone: { phase: Phase; summary: BackboneSummary | null; error: string | null; download: Download | null; cached: { url: string; bytes: number }[] };
  dataset: { phase: Phase; summary: DatasetSummary | null; error: string | null; progress: { done: number; total: number } | null; dropped: string[]; renamed: Record<string, string>; split: 'fgvc' | 'vtab' | 'own' };
  training: { phase: 'idle' | 'running' | 'paused' | 'done' | 'error'; config: TrainConfig; history: EpochReport[]; step: number; totalSteps: number; startedAt: number; outcome: TrainOutcome | null; error: string | null; name: string;
    /** An unfinished run found in IndexedDB (from a closed or reloaded tab). */
    saved: { epoch: number; epochs: number; fingerprint: string; classes: string[]; name: string; backboneName: string } | null };
  library: { entries: LibraryEntry[]; error: string | null };
  trial: { preview: Thumb | null; predictions: Prediction[]; error: string | null; busy: boolean };
  notices: string[];
}

export const initialState: State = {
  engine: { phase: 'busy', info: null, error: null },
  backbone: { phase: 'idle', summary: null, error: null, download: null, cached: [] },
  dataset: { phase: 'idle', summary: null, error: null, progress: null, dropped: [], renamed: {}, split: 'fgvc' },
  training: { phase: 'idle', config: { ...DEFAULT_TRAIN, epochs: 10, batch: 16, warmupEpochs: 1 }, history: [], step: 0, totalSteps: 0, startedAt: 0, outcome: null, error: null, name: 'my-task', saved: null },
  library: { entries: [], error: null },
  trial: { preview: null, predictions: [], error: null, busy: false },
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
