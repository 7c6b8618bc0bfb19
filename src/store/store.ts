/**
 * The studio's one zustand store, made of slices. Plain data only: never
 * tensors, Files or workers (those live in the worker and in ui/engine.ts).
 */
import { create } from 'zustand';
import type { BackendInfo } from '../worker/protocol';

export interface EngineSlice {
  engine: { status: 'starting' | 'ready' | 'failed'; info: BackendInfo | null; error: string | null };
  setEngineReady: (info: BackendInfo) => void;
  setEngineFailed: (error: string) => void;
}

export interface NoticeSlice {
  notices: string[];
  notify: (message: string) => void;
}

export type Store = EngineSlice & NoticeSlice;

export const useStore = create<Store>()((set) => ({
  engine: { status: 'starting', info: null, error: null },
  setEngineReady: (info) => set({ engine: { status: 'ready', info, error: null } }),
  setEngineFailed: (error) => set({ engine: { status: 'failed', info: null, error } }),
  notices: [],
  notify: (message) => set((s) => ({ notices: [...s.notices.slice(-9), message] })),
}));
