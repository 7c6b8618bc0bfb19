/** The typed contract between the page and the engine worker: plain data only. */

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';

export interface BackendInfo {
  backend: BackendName;
  /** GPU adapter description (vendor, architecture, device) when WebGPU is in use. */
  adapter: string | null;
  /** Selected adapter limits that decide batch sizes. */
  limits: Record<string, number>;
  /** Why earlier backends in the chain were not used, in order. */
  fallbacks: { backend: BackendName; reason: string }[];
}

export type ToWorker = { id: number; type: 'init'; prefer?: BackendName };

export type FromWorker =
  | { id: number; type: 'ready'; info: BackendInfo }
  | { id: number; type: 'error'; message: string };
