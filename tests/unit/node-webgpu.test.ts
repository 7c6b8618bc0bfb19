/**
 * `vpt --backend webgpu`: tfjs's webgpu backend in Node on Dawn (the optional
 * `webgpu` package). Here Dawn drives SwiftShader, the CPU Vulkan driver that
 * Debian's Chromium ships beside its own Vulkan loader (the browser tests need
 * that Chromium anyway), so the same shaders run as on a real GPU, slowly.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { caseTensor, FIX, NOTMNIST, readCase, relErr, TINY, writeOfficialTask } from './helpers';

const BIN = resolve(__dirname, '../../bin/vpt.js');

/** Chromium's folder with libvulkan.so.1 and vk_swiftshader_icd.json. */
function swiftshaderDir(): string {
  const bins = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((x): x is string => !!x && existsSync(x));
  const dirs = [...bins.map((b) => dirname(realpathSync(b))), '/usr/lib/chromium'];
  const dir = dirs.find((d) => existsSync(join(d, 'vk_swiftshader_icd.json')) && existsSync(join(d, 'libvulkan.so.1')));
  if (!dir) throw new Error('no SwiftShader Vulkan driver found: install Debian\'s chromium (apt-get install -y chromium), which ships one in /usr/lib/chromium');
  return dir;
}

let env: NodeJS.ProcessEnv;
let tmp: string;
function vpt(extraEnv: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 240_000, env: { ...env, ...extraEnv } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  const dir = swiftshaderDir();
  tmp = mkdtempSync(join(tmpdir(), 'vpt-webgpu-'));
  // dlopen reads LD_LIBRARY_PATH when a process starts, so the CLI runs as a child with it set.
  env = { ...process.env, LD_LIBRARY_PATH: dir, VK_ICD_FILENAMES: join(dir, 'vk_swiftshader_icd.json'), XDG_RUNTIME_DIR: tmp, VPT_THREADS: '1' };
});

describe('vpt --backend webgpu (Dawn in Node)', () => {
  it('reproduces the official VPT-deep logits on webgpu', () => {
    const c = readCase();
    const task = writeOfficialTask(c, join(tmp, 'official.safetensors'));
    const r = vpt({}, 'predict', '--backend', 'webgpu', '--backbone', join(FIX, 'backbone.npz'), '--task', task, '--tensors', join(FIX, 'case.safetensors'), '--key', 'input.images_nchw', '--json');
    expect(r.code, r.err).toBe(0);
    expect(relErr(JSON.parse(r.out).logits.flat(), caseTensor(c, 'deep.logits').data)).toBeLessThan(1e-4);
  }, 240_000);

  it('trains VPT-deep to the same losses as wasm, and says which adapter it ran on', () => {
    const data = join(tmp, 'letters');
    for (const cls of ['A', 'B']) {
      mkdirSync(join(data, cls), { recursive: true });
      // Two images a class, batch 4: one step an epoch (SwiftShader takes seconds a step).
      for (const f of readdirSync(join(NOTMNIST, 'train', cls)).slice(0, 2)) copyFileSync(join(NOTMNIST, 'train', cls, f), join(data, cls, f));
    }
    const train = (backend: string) => vpt({}, 'train', '--backend', backend, '--backbone', TINY, '--data', data, '--out', join(tmp, `${backend}.safetensors`),
      '--epochs', '2', '--batch', '4', '--prompts', '2', '--val-split', '0', '--json');
    const g = train('webgpu'), w = train('wasm');
    expect(g.code, g.err).toBe(0);
    expect(w.code, w.err).toBe(0);
    const gj = JSON.parse(g.out), wj = JSON.parse(w.out);
    expect(gj.backend).toBe('webgpu (google swiftshader)');
    expect(g.err).toContain('backend webgpu (google swiftshader)');
    // One step an epoch is too few to replay any (two through tfjs, then captures); it says so. wasm never replays.
    expect(g.err).toContain('steps: 2, none replayed: too few steps');
    expect([gj.steps, gj.replayed_steps, wj.steps, wj.replayed_steps]).toEqual([2, 0, 2, null]);
    expect(w.err).not.toContain('replayed');
    const losses = (j: { history: { loss: number }[] }) => j.history.map((h) => h.loss);
    expect(losses(gj)).toHaveLength(2);
    expect(relErr(losses(gj), losses(wj))).toBeLessThan(1e-4);
  }, 480_000);

  it('stops with the GPU\'s own message when the GPU reports an error, instead of computing on', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', resolve(__dirname, 'webgpu-error-child.ts')], { encoding: 'utf8', timeout: 60_000, env, cwd: resolve(__dirname, '../..') });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^error: the GPU reported an error: Buffer usages must not be 0\.; stopping/m);
    expect(r.stdout).not.toContain('still running');
  }, 60_000);

  it('fused WGSL kernels (LayerNorm, GELU, scaled softmax, prompt slots, attention, linear layers) match the plain ops to 1e-5, forward and gradient, and leak nothing; reused bind groups change nothing', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', resolve(__dirname, 'webgpu-fused-child.ts')], { encoding: 'utf8', timeout: 120_000, env, cwd: resolve(__dirname, '../..') });
    expect(r.status, r.stderr).toBe(0);
    const { fused, model, modelTiled, blocks, memory, reuse, parts, ...ops } = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(fused).toBe(true);
    // The bench's one-part dispatch of the three attention gradients computes just what the whole does.
    expect(parts).toEqual({ serial: 0, tiled: 0, staged: 0 });
    // LayerNorm, softmax and attention in both variants (serial and tiled), attention also with staged
    // loads, GELU, prompt insert and overwrite, linear layers in both tiles.
    expect(Object.keys(ops)).toHaveLength(25);
    for (const [name, o] of Object.entries(ops) as [string, { value: number; grad: number; kernels: string[]; leaked: number }][]) {
      expect(o.value, name).toBeLessThan(1e-5);
      expect(o.grad, name).toBeLessThan(1e-5);
      expect(o.leaked, name).toBe(0);
      // The fused forward and backward kernels really ran (one dispatch each; the prompts' has two
      // gradients; attention is scores, softmax, P V and dP, the softmax's gradient, dQ | dK | dV;
      // a linear layer x W + b and dy W^T).
      expect(o.kernels, name).toHaveLength(name.startsWith('prompts') ? 3 : name.startsWith('attention') ? 6 : 2);
      if (name.startsWith('linear')) expect(o.kernels, name).toEqual(['VptMatMul', 'VptMatMul']);
    }
    // A whole VPT-deep gradient on the fixture ViT, fused against plain on the same GPU.
    expect(model.loss).toBeLessThan(1e-5);
    expect(model.prompts).toBeLessThan(1e-5);
    expect(model.leaked).toBe(0);
    // Each frozen block one gradient node: the tape's answer with the same kernels, and each block's two
    // residual-gradient adds inside its LayerNorm gradients.
    expect(blocks.loss).toBeLessThan(1e-6);
    expect(blocks.prompts).toBeLessThan(1e-6);
    expect(blocks.gradAdds).toBe(2 * blocks.layers);
    // ... and with every linear layer on the tiled matmul (4 forward and 4 backward a block, and the
    // patch embedding forward).
    expect(modelTiled.loss).toBeLessThan(1e-5);
    expect(modelTiled.prompts).toBeLessThan(1e-5);
    expect(modelTiled.matmuls).toBe(8 * modelTiled.layers + 1);
    expect(modelTiled.leaked).toBe(0);
    // Bind groups and uniform buffers reused from step to step: the same bits as fresh ones.
    expect(reuse.reused).toBeGreaterThan(0);
    expect(reuse.identical).toBe(true);
    // The planner's estimate for the fused path: never below the measured peak by more than 10% (it
    // must not overcommit), never far above (it would waste passes).
    expect(memory).toHaveLength(2);
    for (const m of memory as { recompute: boolean; measured: number; estimate: number }[]) {
      expect(m.estimate, JSON.stringify(m)).toBeGreaterThan(0.9 * m.measured);
      expect(m.estimate, JSON.stringify(m)).toBeLessThan(1.5 * m.measured);
    }
  }, 120_000);

  it('replays captured training steps bit for bit, with new data, learning rates and padding every step, and falls back where a replay would be wrong', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', resolve(__dirname, 'webgpu-replay-child.ts')], { encoding: 'utf8', timeout: 300_000, env, cwd: resolve(__dirname, '../..') });
    expect(r.status, r.stderr).toBe(0);
    type Stats = { replayed: number; captures: number; dispatches: number; refused: string | null; dropped: string | null; gaveUp: boolean };
    type Case = { identical: boolean; finite: boolean; leaked: number[]; plainReplayed: number; stats: Stats; optimizerSteps: number[] };
    const { poolConsistent, ...cases } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, Case> & { poolConsistent: boolean };
    expect(Object.keys(cases)).toEqual(['deep', 'passes', 'assigned', 'adamw', 'dropout', 'dropoutPasses', 'changing']);
    for (const [name, c] of Object.entries(cases)) {
      // Losses, hit counts, parameters and momentum: the same bits as steps through tfjs.
      expect(c.identical, name).toBe(true);
      expect(c.finite, name).toBe(true);
      expect(c.leaked, name).toEqual([0, 0]);
      expect(c.plainReplayed, name).toBe(0);
      // The optimiser counts replayed steps too (AdamW's bias corrections, a checkpoint's step).
      expect(new Set(c.optimizerSteps).size, name).toBe(1);
    }
    // SGD: two steps through tfjs, two captures (tfjs uploads its gradients' ones; the second checks
    // that they are the same), then replays; two passes a step (VPT-shallow) too; AdamW, whose bias
    // corrections and decay factors the stepper writes as step inputs; prompt dropout, whose masks it
    // draws ahead into them (in one pass and in two).
    for (const name of ['deep', 'passes', 'adamw', 'dropout', 'dropoutPasses']) {
      expect(cases[name].stats.replayed, name).toBe(3);
      expect(cases[name].stats.captures, name).toBe(1);
      expect(cases[name].stats.dispatches, name).toBeGreaterThan(50);
    }
    // A variable assigned from outside between steps: that replay is dropped, and a new capture follows.
    expect(cases.assigned.stats.dropped).toMatch(/released|another buffer/);
    expect(cases.assigned.stats.captures).toBe(2);
    expect(cases.assigned.stats.replayed).toBe(3);
    // A step that uploads host data of its own, new every step: never replayed.
    for (const name of ['changing']) {
      expect(cases[name].stats.replayed, name).toBe(0);
      expect(cases[name].stats.gaveUp, name).toBe(true);
      expect(cases[name].stats.refused, name).toBe('host data that changes from step to step');
    }
    // The captured steps' buffers went back to tfjs's pool.
    expect(poolConsistent).toBe(true);
  }, 300_000);

  it('says what is missing when Dawn finds no Vulkan driver', () => {
    const r = vpt({ VK_ICD_FILENAMES: join(tmp, 'no-such-driver.json') }, 'inspect', '--backend', 'webgpu', join(FIX, 'backbone.npz'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error: no WebGPU adapter: Dawn found no usable Vulkan driver .* use --backend wasm/);
  }, 60_000);
});
