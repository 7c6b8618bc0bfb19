// The Hugging Face download path against a local server that serves the
// fixture backbone under hub-like paths: progress is shown, the files are
// cached, and loading again makes no request.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, screenshot, SHARED, startServer } from './harness.mjs';

const FIX = join(SHARED, 'fixtures/vpt-reference');
const files = {
  '/test-org/tiny-vit/resolve/main/model.safetensors': readFileSync(join(FIX, 'backbone.safetensors')),
  '/test-org/tiny-vit/resolve/main/config.json': readFileSync(join(FIX, 'config.json')),
  '/test-org/other-vit/resolve/main/model.safetensors': readFileSync(join(FIX, 'backbone.safetensors')),
  '/test-org/other-vit/resolve/main/config.json': readFileSync(join(FIX, 'config.json')),
};
let hub, hubUrl, srv, br;
const requests = [];

before(async () => {
  hub = createServer(async (req, res) => {
    requests.push(req.url);
    const body = files[req.url];
    res.setHeader('access-control-allow-origin', '*');
    if (!body) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    // Trickle the bytes so the progress bar is observable.
    for (let o = 0; o < body.length; o += 32 * 1024) {
      res.write(body.subarray(o, o + 32 * 1024));
      await new Promise((r) => setTimeout(r, 120));
    }
    res.end();
  });
  await new Promise((r) => hub.listen(0, 'localhost', r));
  hubUrl = `http://localhost:${hub.address().port}`;
  srv = await startServer();
  br = await launch();
});
after(async () => { await br?.browser.close(); await srv?.server.close(); hub?.close(); });

test('download from the hub with progress, cached for a second load without any request', async () => {
  const { page } = br;
  await page.goto(`${srv.url}?hub=${encodeURIComponent(hubUrl)}`);
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  await page.getByLabel('Hugging Face repo id').fill('test-org/tiny-vit');
  await page.getByRole('button', { name: /^Download/ }).click();
  const bar = page.getByRole('progressbar').filter({ hasText: 'model.safetensors' });
  await bar.waitFor({ timeout: 30_000 });
  assert.match(await bar.textContent(), /model\.safetensors: [\d.]+ KB of 267\.6 KB at [\d.]+ [KM]B\/s, \d+ s left/);
  await screenshot(page, 'hub-progress');
  await page.getByTestId('backbone-ready').waitFor({ timeout: 60_000 });
  assert.match(await page.getByTestId('backbone-ready').innerText(), /test-org\/tiny-vit: ViT \(image 32, patch 8, d 48, 3 layers/);
  const first = requests.length;
  assert.ok(requests.includes('/test-org/tiny-vit/resolve/main/model.safetensors'));
  assert.ok(requests.includes('/test-org/tiny-vit/resolve/main/preprocessor_config.json')); // optional: 404 is fine

  await page.reload();
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  await page.getByText(/Cached backbones/).waitFor();
  await page.getByLabel('Hugging Face repo id').fill('test-org/tiny-vit');
  await page.getByRole('button', { name: /^Download/ }).click();
  await page.getByTestId('backbone-ready').waitFor({ timeout: 60_000 });
  const model = requests.filter((u) => u.endsWith('model.safetensors')).length;
  assert.equal(model, 1, `model.safetensors requested ${model} times`);
  assert.equal(requests.length, first, `second load made requests: ${requests.slice(first).join(', ')}`);

  await page.getByLabel('Hugging Face repo id').fill('no such repo');
  await page.getByRole('button', { name: /^Download/ }).click();
  await page.getByTestId('backbone-error').waitFor();
  assert.match(await page.getByTestId('backbone-error').textContent(), /"no such repo" is not a Hugging Face repo id/);
  assert.match(await page.getByTestId('backbone-ready').innerText(), /test-org\/tiny-vit/);
});

test('storage full while caching a download: the backbone loads anyway and the Storage panel says what was not kept', async () => {
  const { page } = br;
  await page.goto(`${srv.url}?hub=${encodeURIComponent(hubUrl)}`);
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  await page.evaluate(() => {
    const put = Cache.prototype.put;
    Cache.prototype.put = function (req, res) {
      if (String(req.url ?? req).endsWith('model.safetensors')) return Promise.reject(new DOMException('quota exceeded (test)', 'QuotaExceededError'));
      return put.call(this, req, res);
    };
  });
  await page.getByLabel('Hugging Face repo id').fill('test-org/other-vit');
  await page.getByRole('button', { name: /^Download/ }).click();
  await page.getByTestId('backbone-ready').filter({ hasText: 'test-org/other-vit' }).waitFor({ timeout: 60_000 });
  assert.match(await page.getByTestId('storage-full').innerText(), /model\.safetensors was downloaded and loads now, but could not be cached for next time/);
  // The panel offers what is stored: the first test's cached backbone.
  await page.getByRole('button', { name: /free space: delete cached .*tiny-vit/ }).waitFor();
  await screenshot(page, 'hub-storage-full');
});
