// Shared setup for browser tests: a Vite dev server on localhost (WebGPU needs
// a secure context) and Debian's Chromium driven by playwright-core.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED = resolve(ROOT, '../shared');
export const ARTIFACTS = join(ROOT, 'test-artifacts');

export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
  // A synthetic camera, allowed without a prompt, for the studio's camera path.
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
];

export function chromiumPath() {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error('no Chromium found: install Debian\'s chromium (apt-get install -y chromium) or set CHROMIUM_PATH');
  return found;
}

export async function startServer() {
  const server = await createServer({
    root: ROOT,
    configFile: join(ROOT, 'vite.config.ts'),
    logLevel: 'error',
    server: { host: 'localhost', port: 0, strictPort: false, fs: { allow: [ROOT, SHARED] }, hmr: false },
  });
  await server.listen();
  const addr = server.httpServer.address();
  return { server, url: `http://localhost:${addr.port}/` };
}

export async function launch() {
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  return { browser, page, logs };
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** URL under which the Vite dev server serves a file outside the root. */
export function fsUrl(base, absPath) {
  return new URL(`/@fs${absPath}`, base).href;
}
