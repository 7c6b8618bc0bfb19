/** `--backend webgpu` where the optional `webgpu` package did not install: a clear error, not a stack trace. */
import { expect, it, vi } from 'vitest';

vi.mock('webgpu', () => { throw new Error("Cannot find package 'webgpu' imported from src/cli/webgpu.ts"); });

it('names the missing package, how to install it, and the way out', async () => {
  const { startNodeWebGPU } = await import('../../src/cli/webgpu');
  await expect(startNodeWebGPU()).rejects.toThrow(/needs the optional package "webgpu" \(Dawn\), which did not load: .+; install it with `npm install webgpu`, or use --backend wasm/);
});
