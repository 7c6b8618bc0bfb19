// The built app (vite build, served as a user's host would) under its
// Content-Security-Policy: it starts wasm on every core from its own bundled
// .wasm file (the engine passes this machine's CPU-emulated GPU over; the
// preview server sends the isolation headers) with no policy violation, shows
// a hostile folder name as text, reports every bad image with its reason,
// keeps working when storage is full, and asks nothing of any other origin.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { build, preview } from 'vite';
import { launch, ROOT, screenshot, SHARED } from './harness.mjs';

const NOT = join(SHARED, 'datasets/notmnist-1k');
const IMG = join(ROOT, 'tests/fixtures/images');
const XSS = '<img src=x onerror=alert(1)>';
let srv, br, tmp, url;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'vpt-built-'));
  const outDir = join(tmp, 'dist');
  await build({ root: ROOT, configFile: join(ROOT, 'vite.config.ts'), logLevel: 'error', build: { outDir, emptyOutDir: true } });
  srv = await preview({ root: ROOT, configFile: join(ROOT, 'vite.config.ts'), logLevel: 'error', build: { outDir }, preview: { host: 'localhost', port: 0, strictPort: false } });
  const addr = srv.httpServer.address();
  url = `http://localhost:${addr.port}/`;
  br = await launch();
});
after(async () => { await br?.browser.close(); await new Promise((r) => srv?.httpServer.close(r)); });

test('built app: CSP without inline scripts, hostile names shown as text, bad images reported, storage full survived, no foreign requests', async () => {
  const { page, logs } = br;
  const requests = [];
  page.context().on('request', (r) => requests.push(r.url()));
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
  // Violations are reported as events even where the console is quiet.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(url);
  const policy = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.match(policy, /script-src 'self' 'wasm-unsafe-eval'(;|$)/);
  assert.doesNotMatch(policy, /unsafe-inline|'unsafe-eval'/);
  assert.equal(await page.locator('script:not([src])').count(), 0, 'no inline script in the built page');
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  assert.equal(await page.getByTestId('backend-name').textContent(), 'wasm', logs.join('\n'));
  // vite preview sends COOP/COEP as a host must (README): the bundled threaded build starts on every core.
  const threads = Math.min(await page.evaluate(() => navigator.hardwareConcurrency), 8);
  assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
  assert.equal(await page.getByTestId('adapter').textContent(), `${threads} thread${threads === 1 ? '' : 's'}, SIMD+FMA`);
  await page.getByTestId('demo-backbone').click();
  await page.getByTestId('backbone-ready').waitFor({ timeout: 60_000 });

  // A class named like markup, one with emoji, odd-but-valid images, broken ones, system junk.
  const data = join(tmp, 'hostile');
  const bad = join(data, XSS), emoji = join(data, 'Ärger 😀');
  mkdirSync(bad, { recursive: true });
  mkdirSync(emoji, { recursive: true });
  mkdirSync(join(data, '__MACOSX'), { recursive: true });
  for (const f of readdirSync(join(NOT, 'train/A')).slice(0, 3)) copyFileSync(join(NOT, 'train/A', f), join(bad, f));
  for (const f of readdirSync(join(NOT, 'train/B')).slice(0, 3)) copyFileSync(join(NOT, 'train/B', f), join(emoji, f));
  for (const f of ['cmyk.jpg', 'rgb16.png', 'exif-rotated.jpg', 'anim.gif', 'one-pixel.png']) copyFileSync(join(IMG, f), join(bad, f));
  copyFileSync(join(IMG, 'huge.png'), join(emoji, 'huge.png'));
  writeFileSync(join(emoji, 'empty.png'), '');
  writeFileSync(join(emoji, 'cut.jpg'), readFileSync(join(IMG, 'plain.jpg')).subarray(0, 120));
  writeFileSync(join(emoji, 'notes.jpg'), 'this is text, not a photo');
  writeFileSync(join(data, '.DS_Store'), 'x');
  writeFileSync(join(emoji, 'Thumbs.db'), 'x');
  writeFileSync(join(data, '__MACOSX', '._x.png'), 'x');
  await page.getByTestId('folder-input').setInputFiles(data);
  await page.getByTestId('dataset-ready').waitFor({ timeout: 120_000 });
  assert.match(await page.getByTestId('dataset-ready').innerText(), /2 classes, 11 train images/);
  assert.equal(await page.getByLabel(`name of class ${XSS}`, { exact: true }).inputValue(), XSS, 'the folder name is shown literally');
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'the folder name never became an element');
  const skipped = await page.getByTestId('skipped').innerText();
  for (const re of [
    /huge\.png: image is 20000 x 20000 pixels \(400 megapixels\), over the 100 megapixel limit/,
    /empty\.png: empty file \(0 bytes\)/,
    /cut\.jpg: corrupt or truncated JPEG/,
    /notes\.jpg: not an image: .*\(it is text\)/,
    /\.DS_Store: hidden or system file/, /Thumbs\.db: hidden or system file/, /__MACOSX\/\._x\.png: hidden or system file/,
  ]) assert.match(skipped, re);
  await screenshot(page, 'built-hostile-folder');

  // Storage full while saving a task: the Storage panel opens, nothing else breaks.
  const { writeDemoTask } = await import('./task-reader.ts');
  const task = join(tmp, 'yes-no.vpt.safetensors');
  writeFileSync(task, await writeDemoTask(join(ROOT, 'public/demo/tiny-vit-mnist')));
  await page.evaluate(() => {
    window.__put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function () { throw new DOMException('quota exceeded (test)', 'QuotaExceededError'); };
  });
  await page.getByTestId('task-import').setInputFiles(task);
  await page.getByTestId('storage-full').waitFor({ timeout: 30_000 });
  assert.match(await page.getByTestId('storage-full').innerText(), /the task "yes-no" was not saved to the library/);
  await screenshot(page, 'built-storage-full');
  await page.evaluate(() => { IDBObjectStore.prototype.put = window.__put; });
  await page.getByTestId('storage-full').getByRole('button', { name: 'Dismiss' }).click();
  await page.getByTestId('task-import').setInputFiles(task);
  await page.getByTestId('library').filter({ hasText: 'yes-no' }).waitFor({ timeout: 30_000 }).catch(async (e) => { console.log(await page.locator('main').innerText()); throw e; });

  assert.deepEqual(dialogs, [], 'no script from a name ever ran');
  assert.deepEqual(await page.evaluate(() => window.__csp), [], `CSP violations\n${logs.join('\n')}`);
  assert.ok(!logs.some((l) => /Content Security Policy/i.test(l)), logs.join('\n'));
  // The policy is in force: an injected inline script is refused and reported.
  assert.equal(await page.evaluate(() => { const el = document.createElement('script'); el.textContent = 'window.__ran = 1'; document.body.append(el); return window.__ran; }), undefined);
  await page.waitForFunction(() => window.__csp.length > 0);
  assert.match((await page.evaluate(() => window.__csp))[0], /^script-src/);
  const foreign = requests.filter((u) => !u.startsWith(url) && !/^(data|blob):/.test(u));
  assert.deepEqual(foreign, [], 'every request stays on the page\'s own origin');
});
