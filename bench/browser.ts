// Runs bench code inside Chromium (Vite dev server + Playwright): bench/step.ts on the webgpu, webgl or
// wasm backend, the host-time steps (bench/host.ts) and the soak (bench/soak.ts), through bench/browser-entry.ts.
import type { HostResult } from './host';
import type { SoakResult } from './soak';
import type { BenchCase, BenchResult } from './step';

type Entry = typeof import('./browser-entry');
type Name = 'benchIn' | 'benchInWorker' | 'hostIn' | 'soakIn';

/** Calls browser-entry.ts's `name` with `args` in a fresh page; the browser and server are closed after. */
async function inBrowser<N extends Name>(name: N, ...args: Parameters<Entry[N]>): Promise<Awaited<ReturnType<Entry[N]>>> {
  // @ts-expect-error: plain JS test harness
  const { launch, startServer } = await import('../tests/e2e/harness.mjs');
  const srv = await startServer();
  const br = await launch();
  try {
    await br.page.goto(srv.url);
    return await br.page.evaluate(async ([n, a]: [Name, unknown[]]) => {
      // Resolved by the Vite dev server in the page, not by Node.
      const mod = await import(/* @vite-ignore */ '/bench/browser-entry.ts' as string) as Record<Name, (...x: unknown[]) => Promise<unknown>>;
      return mod[n](...a);
    }, [name, args] as [Name, unknown[]]);
  } finally {
    await br.browser.close();
    await srv.server.close();
  }
}

/** One case on `backend` in Chromium; wasm in a dedicated worker, as the studio runs it (its threads wait properly there). */
export const runBrowser = (backend: 'webgpu' | 'webgl' | 'wasm', bc: BenchCase): Promise<{ adapter: string; result: BenchResult }> =>
  inBrowser(backend === 'wasm' ? 'benchInWorker' : 'benchIn', backend, bc);

/** The host side of webgpu steps in Chromium (bench/host.ts). */
export const hostBrowser = (rounds: number, block: number): Promise<HostResult> => inBrowser('hostIn', rounds, block);

/** The 500-step soak (bench/soak.ts) inside Chromium. */
export const soakBrowser = (backend: 'webgpu' | 'webgl'): Promise<SoakResult> => inBrowser('soakIn', backend);
