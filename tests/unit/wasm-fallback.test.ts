/**
 * Where tfjs-wasm's threaded build cannot start (here: no temporary file for
 * its threads' script, as on a full or read-only disk), the wasm backend
 * starts on one thread and says why on stderr, instead of failing the run.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, expect, it, vi } from 'vitest';

vi.mock('node:fs', async (original) => {
  const fs = await original<typeof import('node:fs')>();
  return { ...fs, mkdtempSync: () => { throw Object.assign(new Error('ENOSPC: no space left on device, mkdtemp'), { code: 'ENOSPC' }); } };
});

const { useBackend } = await import('../../src/cli/backend');
const { wasmThreads } = await import('../../src/cli/wasm-threads');
const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
afterAll(() => write.mockRestore());

it('falls back to one thread with a warning that names the cause', async () => {
  expect(await useBackend('wasm', 2)).toBe('wasm');
  expect(wasmThreads()).toBe(1);
  const said = write.mock.calls.map((c) => String(c[0])).join('');
  expect(said).toMatch(/^warning: wasm could not start on 2 threads \(.*ENOSPC: no space left on device.*\); computing on one\n$/);
  const y = tf.tidy(() => tf.matMul(tf.ones([3, 4]), tf.ones([4, 2])));
  expect(Array.from(await y.data())).toEqual([4, 4, 4, 4, 4, 4]);
  y.dispose();
});
