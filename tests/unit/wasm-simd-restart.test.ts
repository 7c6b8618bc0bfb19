// When tfjs-wasm starts afresh (the studio restarts its engine after running out of memory), the SIMD
// kernels' helper threads of the old memory are stopped (they would keep it alive) and new ones serve the
// new memory. Its own file: it resets the engine.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { useBackend } from '../../src/cli/backend';
import { spawnHelper } from '../../src/cli/wasm-threads';
import { runFused, GELU } from '../../src/core/vit/webgpu-kernels';
import { simdSummary, startWasmSimd } from '../../src/core/vit/wasm-simd';
import { liveHelpers, setSimdHelpers, type SpawnHelper } from '../../src/core/vit/wasm-simd-pool';

describe('wasm SIMD helpers across a restart of the engine', () => {
  it('stops the old memory\'s helpers and serves the new memory with new ones', async () => {
    await useBackend('wasm', 2);
    let spawned = 0, stopped = 0;
    const counting: SpawnHelper = (source, message) => {
      spawned++;
      const t = spawnHelper(source, message);
      return { terminate: () => { stopped++; t.terminate(); } };
    };
    const restart = async () => {
      tf.engine().reset();
      await tf.setBackend('wasm');
      await tf.ready();
      expect(await startWasmSimd()).toBe(1);
    };
    setSimdHelpers(1, counting);
    await restart();
    expect([spawned, stopped, liveHelpers()]).toEqual([1, 0, 1]);
    await restart();
    expect([spawned, stopped, liveHelpers()]).toEqual([2, 1, 1]);
    expect(simdSummary()).toBe('SIMD kernels with fused multiply-add, 1 helper thread');
    // The new memory computes, split with its helper.
    const x = tf.linspace(-4, 4, 40_000);
    const y = runFused(GELU, { xIn: x }), want = tf.tidy(() => tf.mul(x, tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5)));
    expect(tf.max(tf.abs(tf.sub(y, want))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([x, y, want]);
  });
});
