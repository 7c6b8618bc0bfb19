/** The one engine worker of the page, started once; results go into the store. */
import { useStore } from '../store/store';
import { EngineClient } from '../worker/client';
import type { BackendName } from '../worker/protocol';

let client: EngineClient | null = null;

export function startEngine(): EngineClient {
  if (client) return client;
  const { notify, setEngineReady, setEngineFailed } = useStore.getState();
  client = new EngineClient(notify);
  // ?backend=wasm (etc.) puts one backend first, for comparisons and tests.
  const prefer = new URLSearchParams(location.search).get('backend') as BackendName | null;
  client.init(prefer ?? undefined).then(setEngineReady, (e: Error) => setEngineFailed(e.message));
  return client;
}
