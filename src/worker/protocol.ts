/**
 * The typed contract between the page and the engine worker: plain data
 * and transferable buffers only, never tensors. Requests carry an id; the
 * worker answers each with exactly one `ok` or `error` of that id, and may
 * send `event`s (progress) in between.
 */
import type { EpochReport } from '../core/train/checkpoint';
import type { CompareRun } from '../core/train/compare';
import type { TrainConfig } from '../core/train/config';
import type { Cell, Grid } from '../core/train/search';
import type { ProtocolSpec } from '../core/tuning/types';
import type { Preprocessing, ViTConfig } from '../core/vit/config';

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

export interface BackendInfo {
  backend: BackendName;
  /** GPU adapter description (vendor, architecture, device) when WebGPU is in use. */
  adapter: string | null;
  /** Selected adapter limits that decide batch sizes. */
  limits: Record<string, number>;
  /** Why earlier backends in the chain were not used, in order. */
  fallbacks: { backend: BackendName; reason: string }[];
  /** wasm computes with our SIMD kernels (core/vit/wasm-simd.ts), which keep less memory; the planner counts that. */
  simd: boolean;
}

export interface BackboneSummary {
  name: string;
  architecture: string;
  format: string;
  fingerprint: string;
  parameters: number;
  bytes: number;
  config: ViTConfig;
  preprocessing: Preprocessing;
  warnings: string[];
  ignored: string[];
}

/** A small RGB preview (what the model sees, downscaled). */
export interface Thumb { width: number; height: number; rgb: Uint8Array }

export interface ClassSummary { name: string; count: number; thumbs: Thumb[] }

export interface DatasetSummary {
  kind: 'flat' | 'split';
  classes: ClassSummary[];
  /** Images per split actually usable. */
  splits: Record<string, number>;
  skipped: { path: string; reason: string }[];
  /** Too many images to keep decoded: each is decoded again from its file when a batch needs it. */
  streamed: boolean;
}

export interface DataFile { path: string; file: Blob }

export interface ClassEdits {
  /** Class names to leave out of training. */
  dropped: string[];
  /** Old name -> new name. */
  renamed: Record<string, string>;
}

export interface TrainOutcome {
  taskId: string;
  bestEpoch: number;
  history: EpochReport[];
  classes: string[];
  validation: { accuracy: number; perClass: Record<string, number>; confusion: number[][]; count: number } | null;
  /** Validation examples as [true, predicted, confidence] with their thumbnails, for the confusion matrix and mistakes. */
  examples: { label: number; predicted: number; confidence: number; path: string; thumb: Thumb }[];
  appliedLr: number;
  stopped: boolean;
  /** Why the run stopped on NaN/Inf and was rolled back (see TrainResult.diverged). */
  diverged: string | null;
  /** On webgpu, how many steps were replayed from a captured one, or why none were (train/replay.ts describeReplay); null elsewhere. */
  replay: string | null;
  parameters: number;
  /** e.g. "vpt-deep-10" and "VPT-deep (p=10)". */
  protocol: string;
  title: string;
}

export interface TaskInfo {
  id: string;
  name: string;
  classes: string[];
  /** e.g. "lora-4" and "LoRA (r=4)". */
  protocol: string;
  title: string;
  accuracy: number | null;
  fingerprint: string | null;
  warnings: string[];
}

export interface Prediction { taskId: string; top: { name: string; probability: number }[] }

export type Request =
  | {
    type: 'init'; prefer?: BackendName;
    /** wasm's threads (`?threads=N`): at most every core. */ threads?: number;
    /** Tests only (`?debug=1&fault=wasm-threads`): the threaded build's pthreads fail to load. */ breakThreads?: boolean;
  }
  | { type: 'loadBackbone'; name: string; bytes: ArrayBuffer; config?: unknown; preprocessor?: unknown }
  | { type: 'loadDataset'; files: DataFile[]; /** Bytes of prepared pixels to keep in memory (default 1 GiB); past it the dataset streams. */ pixelBudget?: number }
  /** `memoryBudget`: bytes for a whole step, the backbone included (default 2 GiB); larger batches run as passes within it. */
  | { type: 'train'; config: TrainConfig; edits: ClassEdits; split: 'fgvc' | 'vtab' | 'own'; name: string; resume?: ArrayBuffer; memoryBudget?: number }
  | { type: 'pause' } | { type: 'resume' } | { type: 'stop' }
  | { type: 'exportTask'; taskId: string; fp16: boolean; naming: 'vpt' | 'official' }
  | { type: 'loadTask'; name: string; bytes: ArrayBuffer; id?: string }
  | { type: 'forgetTask'; taskId: string }
  | { type: 'classify'; image: Blob; taskIds: string[]; top: number }
  | { type: 'measure'; config: TrainConfig; classes: number; memoryBudget?: number }
  /** Several protocols one after another on the same split and budget; `settings.lr` 0 = each protocol's default. */
  | { type: 'compare'; settings: TrainConfig; specs: ProtocolSpec[]; seeds: number[]; edits: ClassEdits; split: 'fgvc' | 'vtab' | 'own'; fp16: boolean; memoryBudget?: number }
  /** Grid search over lr x wd on a split of the training data, then the best retrained on all of it. */
  | { type: 'search'; config: TrainConfig; grid: Grid; edits: ClassEdits; split: 'fgvc' | 'vtab' | 'own'; name: string; memoryBudget?: number }
  /** Fault injection for tests: lose the WebGPU device, or report an out-of-memory error to the detector. */
  | { type: 'injectFault'; kind: 'lost' | 'oom' };

export type Reply =
  | { type: 'init'; info: BackendInfo }
  | { type: 'loadBackbone'; summary: BackboneSummary }
  | { type: 'loadDataset'; summary: DatasetSummary }
  | { type: 'train'; outcome: TrainOutcome }
  | { type: 'pause' } | { type: 'resume' } | { type: 'stop' }
  | { type: 'exportTask'; bytes: Uint8Array; fileName: string }
  | { type: 'loadTask'; task: TaskInfo }
  | { type: 'forgetTask' }
  | { type: 'classify'; predictions: Prediction[]; preview: Thumb }
  | { type: 'measure'; msPerStep: number; microBatch: number; /** The timed step was replayed from a captured one (webgpu, train/replay.ts). */ replayed: boolean }
  | { type: 'compare'; runs: CompareRun[] }
  | { type: 'search'; cells: Cell[]; best: Cell; outcome: TrainOutcome; rule: 'vtab' | 'fgvc'; tuneTrain: number; tuneVal: number }
  | { type: 'injectFault' };

export type WorkerEvent =
  | { type: 'decodeProgress'; done: number; total: number }
  | { type: 'epoch'; report: EpochReport }
  | { type: 'step'; step: number; total: number }
  /** A resumable checkpoint after each epoch (safetensors bytes), for the page to keep in IndexedDB. */
  | { type: 'checkpoint'; bytes: Uint8Array; epoch: number; epochs: number; fingerprint: string; classes: string[] }
  | { type: 'deviceError'; message: string }
  /** A device fault interrupted training: the backend is rebuilt and the run resumes from a checkpoint. */
  | { type: 'recovering'; reason: string; fromEpoch: number; microBatch: number }
  | { type: 'compareStart'; protocol: string; title: string; seed: number; index: number; total: number }
  | { type: 'compareRun'; run: CompareRun }
  | { type: 'searchCell'; cell: Cell; index: number }
  | { type: 'searchFinal'; best: Cell };

export type ToWorker = { id: number; req: Request };

export type FromWorker =
  | { id: number; kind: 'ok'; reply: Reply }
  | { id: number; kind: 'error'; message: string }
  | { id: -1; kind: 'event'; event: WorkerEvent };
