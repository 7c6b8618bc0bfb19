/**
 * tfjs installs no listener on its WebGPU device: without one a failed
 * dispatch (out of memory, say) silently reads back zeros and a lost device
 * goes unnoticed. Shared by the studio's worker and the Node CLI, which each
 * say it their own way.
 */
import * as tf from '@tensorflow/tfjs';

export interface GpuFault { kind: 'error' | 'lost'; message: string }

/** Calls `onFault` on an uncaptured error or loss of the current webgpu device; elsewhere a no-op. */
export function watchWebgpuDevice(onFault: (f: GpuFault) => void): void {
  const backend = tf.backend() as unknown as { device?: { addEventListener(t: string, f: (e: { error: { message: string } }) => void): void; lost?: Promise<{ message: string }> } };
  const dev = backend.device;
  if (!dev) return;
  // Only the device in use counts: a replaced device's late `lost` must not stop the new run.
  const current = () => (tf.backend() as unknown as { device?: unknown }).device === dev;
  dev.addEventListener('uncapturederror', (e) => { if (current()) onFault({ kind: 'error', message: e.error.message }); });
  void dev.lost?.then((info) => { if (current()) onFault({ kind: 'lost', message: info.message }); });
}
