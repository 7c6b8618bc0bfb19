// Runs in the browser (served by Vite): VPT-deep SGD steps on Chromium's webgpu backend, replayed
// from a captured step (src/core/train/replay.ts) and through tfjs, with new data every step;
// returns both runs' losses, hit counts and parameters, and what the stepper did.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { DEFAULT_OPTIMIZER, Optimizer } from '../../src/core/train/optimizer';
import { setReplay, Stepper } from '../../src/core/train/replay';
import { Rng } from '../../src/core/train/rng';
import { forwardOf, paramGroups } from '../../src/core/train/step';
import { disposeVars, initState, makeVars } from '../../src/core/tuning/params';
import { parseSpec, protocolOf } from '../../src/core/tuning/registry';
import { loadBackbone } from '../../src/core/vit/load';
import { FrozenViT } from '../../src/core/vit/model';
import { installReuse } from '../../src/core/vit/webgpu-reuse';

export async function runReplaySteps(u: { st: string; cfg: string }) {
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not start');
  await tf.ready();
  installReuse(tf.backend());
  const b = await loadBackbone({ name: 'backbone', bytes: new Uint8Array(await (await fetch(u.st)).arrayBuffer()), config: await (await fetch(u.cfg)).json() });
  const model = new FrozenViT(b.weights);
  model.prepareBackward();
  const S = b.weights.config.imageSize, B = 3;
  const run = async (replay: boolean) => {
    const spec = parseSpec('vpt-deep-2'), proto = protocolOf(spec.name);
    const vars = makeVars(proto, initState(proto, b.weights, spec, 4, new Rng(2)), b.weights.config);
    const opt = new Optimizer(DEFAULT_OPTIMIZER, paramGroups(vars, 1e-4));
    const was = setReplay(replay);
    const stepper = new Stepper(forwardOf(model, proto, vars), vars, opt, B);
    const out: number[] = [];
    for (let i = 0; i < 7; i++) {
      const weights = Float32Array.from({ length: B }, (_, j) => (i % 3 === 2 && j === B - 1 ? 0 : 1));
      const r = stepper.step({ inputs: Float32Array.from({ length: B * S * S * 3 }, (_, j) => Math.cos(0.11 * j + i)), rowShape: [S, S, 3], labels: Int32Array.from({ length: B }, (_, j) => (i + j) % 4), weights, size: B }, 0.1 + 0.05 * i);
      out.push((await r.loss.data())[0], (await r.correct.data())[0]);
      tf.dispose([r.loss, r.correct]);
    }
    for (const v of [...vars.values(), ...opt.stateVariables()]) out.push(...await v.data());
    const stats = { ...stepper.stats };
    stepper.dispose();
    opt.dispose();
    disposeVars(vars);
    setReplay(was);
    return { out, stats };
  };
  const plain = await run(false), replayed = await run(true);
  model.dispose();
  return { backend: tf.getBackend(), plain: plain.out, replayed: replayed.out, stats: replayed.stats };
}
