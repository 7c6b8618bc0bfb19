// The bench's dedicated worker: runs a case where the studio computes, off the page's main thread
// (there wasm's threads cannot block while they wait for each other, so they spin).
import { benchIn } from './browser-entry';

self.onmessage = async (e: MessageEvent<Parameters<typeof benchIn>>) => {
  try {
    self.postMessage({ ok: await benchIn(...e.data) });
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
