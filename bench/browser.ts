// Runs bench/step.ts inside Chromium on the webgpu or webgl backend (Vite dev server + Playwright).
import type { HostResult } from './host';
import type { SoakResult } from './soak';
import type { BenchCase, BenchResult } from './step';

export async function runBrowser(backend: 'webgpu' | 'webgl', bc: BenchCase): Promise<{ adapter: string; result: BenchResult }> {
  // @ts-expect-error: plain JS test harness
  const { launch, startServer } = await import('../tests/e2e/harness.mjs');
  const srv = await startServer();
  const br = await launch();
  try {
    await br.page.goto(srv.url);
    return await br.page.evaluate(async ([name, c]: [typeof backend, BenchCase]) => {
      // Resolved by the Vite dev server in the page, not by Node.
      const mod = await import(/* @vite-ignore */ '/bench/browser-entry.ts' as string) as typeof import('./browser-entry');
      return mod.benchIn(name, c);
    }, [backend, bc] as [typeof backend, BenchCase]);
  } finally {
    await br.browser.close();
    await srv.server.close();
  }
}

/** The host side of webgpu steps in Chromium (bench/host.ts). */
export async function hostBrowser(rounds: number, block: number): Promise<HostResult> {
  // @ts-expect-error: plain JS test harness
  const { launch, startServer } = await import('../tests/e2e/harness.mjs');
  const srv = await startServer();
  const br = await launch();
  try {
    await br.page.goto(srv.url);
    return await br.page.evaluate(async ([n, b]: [number, number]) => {
      const mod = await import(/* @vite-ignore */ '/bench/browser-entry.ts' as string) as typeof import('./browser-entry');
      return mod.hostIn(n, b);
    }, [rounds, block] as [number, number]);
  } finally {
    await br.browser.close();
    await srv.server.close();
  }
}

/** The 500-step soak (bench/soak.ts) inside Chromium. */
export async function soakBrowser(backend: 'webgpu' | 'webgl'): Promise<SoakResult> {
  // @ts-expect-error: plain JS test harness
  const { launch, startServer } = await import('../tests/e2e/harness.mjs');
  const srv = await startServer();
  const br = await launch();
  try {
    await br.page.goto(srv.url);
    return await br.page.evaluate(async (name: typeof backend) => {
      const mod = await import(/* @vite-ignore */ '/bench/browser-entry.ts' as string) as typeof import('./browser-entry');
      return mod.soakIn(name);
    }, backend);
  } finally {
    await br.browser.close();
    await srv.server.close();
  }
}
