/**
 * tfjs-wasm's threaded build in Node (src/cli/wasm-threads.ts): it really runs
 * on the threads asked for, gives the single-threaded build's results to the
 * byte (VPT-deep training steps on the real tiny backbone), leaks nothing, and
 * lets the CLI's process end; bad thread counts are refused with a clear message.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/cli/backend';
import { wasmThreads } from '../../src/cli/wasm-threads';
import { DEFAULT_OPTIMIZER, Optimizer } from '../../src/core/train/optimizer';
import { Rng } from '../../src/core/train/rng';
import { forwardOf, optimizerStep, paramGroups } from '../../src/core/train/step';
import { disposeVars, initState, makeVars } from '../../src/core/tuning/params';
import { vptDeep } from '../../src/core/tuning/prompt';
import { FrozenViT } from '../../src/core/vit/model';
import { FIX, tinyBackbone } from './helpers';

afterAll(async () => { await useBackend('wasm'); });

/** Three SGD steps of VPT-deep (p = 5) on batch 32, then a large matmul with a transposed operand: every value read back. */
async function run(threads: number): Promise<{ threads: number; initial: Float32Array[]; state: Float32Array[]; product: Float32Array; leaked: number }> {
  await useBackend('wasm', threads);
  const b = await tinyBackbone();
  const model = new FrozenViT(b.weights);
  model.prepareBackward();
  const before = tf.memory().numTensors;
  const c = b.weights.config, B = 32, S = c.imageSize;
  const vars = makeVars(vptDeep, initState(vptDeep, b.weights, { name: 'vpt-deep', n: 5 }, 10, new Rng(3)), c);
  const opt = new Optimizer(DEFAULT_OPTIMIZER, paramGroups(vars, 1e-4));
  const fwd = forwardOf(model, vptDeep, vars);
  const read = () => Promise.all([...vars.values()].map(async (v) => (await v.data()) as Float32Array));
  const initial = await read();
  const rng = new Rng(4);
  const batch = {
    inputs: Float32Array.from({ length: B * S * S * 3 }, () => rng.uniform(-1, 1)), rowShape: [S, S, 3],
    labels: Int32Array.from({ length: B }, (_, i) => i % 10), weights: new Float32Array(B).fill(1), size: B,
  };
  for (let s = 0; s < 3; s++) {
    const r = optimizerStep(fwd, vars, opt, batch, 0.05, B);
    await r.loss.data();
    tf.dispose([r.loss, r.correct]);
  }
  const state = await read();
  const big = tf.tidy(() => tf.matMul(tf.randomNormal([700, 384], 0, 1, 'float32', 5), tf.randomNormal([640, 384], 0, 1, 'float32', 6), false, true));
  const product = (await big.data()) as Float32Array;
  big.dispose();
  disposeVars(vars); opt.dispose();
  const leaked = tf.memory().numTensors - before;
  model.dispose();
  return { threads: wasmThreads(), initial, state, product, leaked };
}

describe('wasm on several threads in Node', () => {
  it('runs on the threads asked for and matches one thread to the byte, with no leak', async () => {
    const two = await run(2);
    const one = await run(1);
    expect(two.threads).toBe(2);
    expect(one.threads).toBe(1);
    expect(two.leaked).toBe(0);
    expect(one.leaked).toBe(0);
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
    expect(two.state.length).toBe(3); // prompts, head weight, head bias
    expect(one.state.length).toBe(3);
    two.state.forEach((t, i) => expect(same(t, one.state[i])).toBe(true));
    expect(same(two.product, one.product)).toBe(true);
    // Training moved every tensor: the comparison is between trained values, not two initial states.
    two.state.forEach((t, i) => expect(same(t, two.initial[i])).toBe(false));
  });
});

const BIN = resolve(__dirname, '../../bin/vpt.js');
const vpt = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });

describe('vpt --threads', () => {
  it('a command on two threads does its work and its process ends by itself', () => {
    const r = vpt(['predict', '--backbone', join(FIX, 'backbone.safetensors'), '--tensors', join(FIX, 'case.safetensors'), '--key', 'input.images_nchw', '--json', '--threads', '2']);
    // A pool thread left holding the event loop would hang here until the timeout (status null).
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).inputs).toEqual([0, 1, 2]);
  });

  it('refuses bad counts with a clear message', () => {
    const fixture = ['predict', '--backbone', join(FIX, 'backbone.safetensors'), '--tensors', join(FIX, 'case.safetensors'), '--key', 'input.images_nchw'];
    const zero = vpt([...fixture, '--threads', '0']);
    expect(zero.status).toBe(2);
    expect(zero.stderr).toMatch(/--threads must be from 1 to 8, got 0/);
    const cpu = vpt([...fixture, '--threads', '2', '--backend', 'cpu']);
    expect(cpu.status).toBe(2);
    expect(cpu.stderr).toMatch(/--threads applies to the wasm backend only/);
    const env = vpt(fixture, { VPT_THREADS: 'many' });
    expect(env.status).toBe(1);
    expect(env.stderr).toMatch(/VPT_THREADS must be a whole number of threads \(1 or more\), got "many"/);
    expect(env.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
