// The page on Chromium's real (CPU-emulated) WebGPU adapter: the engine
// worker passes it over for wasm unless asked for it, then reports webgpu; the fixture forward pass matches the official
// numbers within 1e-4 on the webgpu backend; replayed training steps give the bits of steps through tfjs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fsUrl, launch, screenshot, SHARED, startServer } from './harness.mjs';

let srv, br;
before(async () => { srv = await startServer(); br = await launch(); });
after(async () => { await br?.browser.close(); await srv?.server.close(); });

test('on a CPU-emulated adapter the engine computes on wasm and says why; asked for by name, it runs webgpu and names the adapter', async () => {
  const { page, logs } = br;
  await page.goto(srv.url);
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  let backend = await page.getByTestId('backend-name').textContent();
  await screenshot(page, 'backend-software');
  assert.equal(backend, 'wasm', `backend was ${backend}; page log:\n${logs.join('\n')}`);
  const why = await page.getByTestId('fallbacks').innerText();
  assert.match(why, /webgpu not used: google swiftshader is a software renderer .*add \?backend=webgpu to the address/);
  assert.match(why, /webgl not used: .*SwiftShader.* is a software renderer/);
  await page.goto(`${srv.url}?backend=webgpu`);
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  backend = await page.getByTestId('backend-name').textContent();
  await screenshot(page, 'backend');
  assert.equal(backend, 'webgpu', `backend was ${backend}; page log:\n${logs.join('\n')}`);
  assert.match(await page.getByTestId('adapter').textContent(), /swiftshader/);
});

test('cross-origin isolated, the page trains on wasm with every core (up to 8 threads) and learns', async () => {
  const { page, logs } = br;
  await page.goto(srv.url);
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  const [isolated, cores] = await page.evaluate(() => [self.crossOriginIsolated, navigator.hardwareConcurrency]);
  assert.equal(isolated, true, 'the dev server sends COOP and COEP');
  assert.equal(await page.getByTestId('backend-name').textContent(), 'wasm');
  const threads = Math.min(cores, 8);
  assert.equal(await page.getByTestId('adapter').textContent(), `${threads} thread${threads === 1 ? '' : 's'}, SIMD+FMA`);
  await page.getByTestId('demo-backbone').click();
  await page.getByTestId('backbone-ready').waitFor({ timeout: 60_000 });
  await page.getByTestId('demo-dataset').click();
  await page.getByTestId('dataset-ready').waitFor({ timeout: 120_000 });
  await page.getByLabel('Epochs', { exact: true }).fill('6');
  await page.getByLabel('Batch size', { exact: true }).fill('16');
  await page.getByTestId('train').click();
  await page.getByTestId('train-phase').filter({ hasText: /done|error/ }).waitFor({ timeout: 300_000 });
  assert.equal(await page.getByTestId('train-phase').textContent(), 'done', logs.join('\n'));
  const acc = parseFloat(await page.getByTestId('val-accuracy').textContent());
  await screenshot(page, 'wasm-threads-trained');
  assert.ok(acc >= 30, `validation accuracy ${acc}% (chance 10%)`);
  // ?threads=N keeps wasm to N cores; a bad value is named and ignored.
  await page.goto(`${srv.url}?threads=1`);
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  assert.equal(await page.getByTestId('adapter').textContent(), '1 thread, SIMD+FMA');
  await page.goto(`${srv.url}?threads=lots`);
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  assert.match(await page.getByRole('status').innerText(), /\?threads=lots in the address is not a whole number of at least 1: wasm uses every core/);
  assert.equal(await page.getByTestId('adapter').textContent(), `${threads} thread${threads === 1 ? '' : 's'}, SIMD+FMA`);
  // Threads that fail to start (here an injected fault: their script throws) cost the threads, not the engine.
  await page.goto(`${srv.url}?debug=1&fault=wasm-threads`);
  await page.getByTestId('backend-name').waitFor({ timeout: 120_000 });
  assert.equal(await page.getByTestId('backend-name').textContent(), 'wasm');
  assert.match(await page.getByTestId('adapter').textContent(), /^1 thread, SIMD\+FMA \(the threaded build did not start: a thread failed: .*injected fault: this thread's script fails\)$/);
  await page.getByTestId('demo-backbone').click();
  await page.getByTestId('backbone-ready').waitFor({ timeout: 60_000 });
  await page.getByTestId('demo-dataset').click();
  await page.getByTestId('dataset-ready').waitFor({ timeout: 120_000 });
  await page.getByRole('button', { name: 'Estimate time' }).click();
  await page.getByTestId('epoch-estimate').waitFor({ timeout: 120_000 });
  assert.match(await page.getByTestId('epoch-estimate').textContent(), /measured [\d.]+ s per step/);
  await page.waitForTimeout(6000); // past the grace period: a late thread error would show as the engine's failure
  assert.equal(await page.getByTestId('backend-name').textContent(), 'wasm', logs.join('\n'));
});

test('fixture forward pass (plain, VPT-shallow, VPT-deep) on webgpu matches the official numbers', async () => {
  const { page } = br;
  const fix = join(SHARED, 'fixtures/vpt-reference');
  const urls = { npz: fsUrl(srv.url, join(fix, 'backbone.npz')), st: fsUrl(srv.url, join(fix, 'backbone.safetensors')), cfg: fsUrl(srv.url, join(fix, 'config.json')), kase: fsUrl(srv.url, join(fix, 'case.safetensors')) };
  const result = await page.evaluate(async (u) => {
    const { runFixtureForward } = await import('/tests/e2e/fixture-forward.ts');
    return runFixtureForward(u);
  }, urls);
  assert.equal(result.backend, 'webgpu');
  for (const kind of ['npz', 'safetensors']) {
    for (const [name, err] of Object.entries(result[kind])) {
      assert.ok(err < 1e-4, `${kind} ${name}: relative error ${err}`);
    }
  }
});

test('training steps replayed from a captured one on webgpu give the bits of steps through tfjs', async () => {
  const { page } = br;
  const fix = join(SHARED, 'fixtures/vpt-reference');
  const urls = { st: fsUrl(srv.url, join(fix, 'backbone.safetensors')), cfg: fsUrl(srv.url, join(fix, 'config.json')) };
  await page.goto(srv.url);
  const result = await page.evaluate(async (u) => {
    const { runReplaySteps } = await import('/tests/e2e/replay-steps.ts');
    return runReplaySteps(u);
  }, urls);
  assert.equal(result.backend, 'webgpu');
  // Two steps through tfjs, two captures, then replays: losses, hits, prompts, head and momentum, bit for bit.
  assert.equal(result.stats.replayed, 3, JSON.stringify(result.stats));
  assert.equal(result.replayed.length, result.plain.length);
  assert.ok(result.plain.every(Number.isFinite));
  result.plain.forEach((x, i) => assert.ok(Object.is(x, result.replayed[i]), `value ${i}: ${x} through tfjs, ${result.replayed[i]} replayed`));
});
