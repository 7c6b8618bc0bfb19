// Child process for node-webgpu.test.ts (Dawn needs its Vulkan environment when the process starts):
// training steps replayed from a captured step (src/core/train/replay.ts) against the same steps run
// through tfjs, on the real tiny backbone, on Dawn. Prints one JSON object.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/cli/backend';
import { DEFAULT_OPTIMIZER, Optimizer, type OptimizerName } from '../../src/core/train/optimizer';
import { setReplay, Stepper, type StepperStats } from '../../src/core/train/replay';
import { Rng } from '../../src/core/train/rng';
import { forwardOf, paramGroups, type HostBatch } from '../../src/core/train/step';
import { disposeVars, initState, makeVars } from '../../src/core/tuning/params';
import { parseSpec, protocolOf } from '../../src/core/tuning/registry';
import { PromptDropout } from '../../src/core/tuning/vpt';
import { loadBackbone } from '../../src/core/vit/load';
import { FrozenViT } from '../../src/core/vit/model';

await useBackend('webgpu');
const TINY = resolve(import.meta.dirname, '../../../shared/models/tiny-vit-mnist');
const tiny = await loadBackbone({ name: 'model.safetensors', bytes: readFileSync(join(TINY, 'model.safetensors')), config: JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')) });
const model = new FrozenViT(tiny.weights);
model.prepareBackward();
const S = tiny.weights.config.imageSize, B = 2, classes = 5;
const pool = (tf.backend() as unknown as { bufferManager: { freeBuffers: Map<string, unknown[]>; numFreeBuffers: number } }).bufferManager;
const poolConsistent = () => [...pool.freeBuffers.values()].reduce((a, l) => a + l.length, 0) === pool.numFreeBuffers;

/** Step i's batch: new images and labels every step, a padded row (weight 0) every third step. */
function batchOf(i: number): HostBatch {
  const weights = new Float32Array(B).fill(1);
  if (i % 3 === 2) weights[B - 1] = 0;
  return {
    inputs: Float32Array.from({ length: B * S * S * 3 }, (_, j) => Math.sin(0.37 * j + i)), rowShape: [S, S, 3],
    labels: Int32Array.from({ length: B }, (_, j) => (i + j) % classes), weights, size: B,
  };
}

interface Case { steps: number; optimizer?: OptimizerName; dropout?: number; micro?: number; spec?: string; assignAt?: number; changing?: boolean }
/** `steps` steps with replay on or off: every loss and hit count, the variables and the optimiser's state at the end. */
async function train(replay: boolean, c: Case) {
  const spec = parseSpec(c.spec ?? 'vpt-deep-2'), proto = protocolOf(spec.name);
  const vars = makeVars(proto, initState(proto, tiny.weights, spec, classes, new Rng(3)), tiny.weights.config);
  const opt = new Optimizer({ ...DEFAULT_OPTIMIZER, name: c.optimizer ?? 'sgd' }, paramGroups(vars, 1e-4));
  const dropout = new PromptDropout(new Rng(5), c.dropout ?? 0);
  const base = forwardOf(model, proto, vars, { dropout });
  // `changing`: a forward that uploads a number of its own that changes every step (logits scaled by it).
  let calls = 0;
  const forward = c.changing ? (x: tf.Tensor) => tf.mul(base(x), tf.scalar(1 + 0.01 * calls++)) as tf.Tensor2D : base;
  const was = setReplay(replay);
  const before = tf.memory().numTensors;
  const stepper = new Stepper(forward, vars, opt, c.micro ?? B, dropout);
  const results: number[] = [];
  for (let i = 0; i < c.steps; i++) {
    // From outside the step: a variable given a new tensor (a restored checkpoint, say).
    if (i === c.assignAt) { const v = vars.get('prompts')!, half = tf.mul(v, 0.5); v.assign(half); half.dispose(); }
    const r = stepper.step(batchOf(i), 0.05 * (1 + (i % 4)));
    results.push((await r.loss.data())[0], (await r.correct.data())[0]);
    tf.dispose([r.loss, r.correct]);
  }
  const stats: StepperStats = { ...stepper.stats };
  const state: number[][] = [];
  for (const v of [...vars.values(), ...opt.stateVariables()]) state.push(Array.from(await v.data()));
  const slots = opt.stateVariables().length, optimizerSteps = (await opt.exportState()).step;
  stepper.dispose();
  const leaked = tf.memory().numTensors - before - slots;
  opt.dispose();
  disposeVars(vars);
  setReplay(was);
  return { results, state, stats, leaked, optimizerSteps };
}

const bitsEqual = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
const out: Record<string, unknown> = {};
const cases: Record<string, Case> = {
  // Two steps through tfjs, two captures, then replays; a variable assigned from outside after the first replay.
  deep: { steps: 7 }, passes: { steps: 7, micro: 1, spec: 'vpt-shallow-3' }, assigned: { steps: 8, assignAt: 5 },
  // AdamW: its bias corrections and decay factors change every step, written as step inputs.
  adamw: { steps: 7, optimizer: 'adamw' },
  // Prompt dropout: new masks every step, drawn ahead into the step's inputs; one pass and two.
  dropout: { steps: 7, dropout: 0.3 }, dropoutPasses: { steps: 7, dropout: 0.3, micro: 1 },
  // Host data the step uploads by itself, new every step: four captures, none replayable.
  changing: { steps: 6, changing: true },
};
for (const [name, c] of Object.entries(cases)) {
  const plain = await train(false, c), replayed = await train(true, c);
  out[name] = {
    identical: bitsEqual(plain.results, replayed.results) && plain.state.length === replayed.state.length && plain.state.every((s, i) => bitsEqual(s, replayed.state[i])),
    finite: replayed.results.every(Number.isFinite),
    stats: replayed.stats, leaked: [plain.leaked, replayed.leaked], plainReplayed: plain.stats.replayed,
    optimizerSteps: [plain.optimizerSteps, replayed.optimizerSteps, c.steps],
  };
}
out.poolConsistent = poolConsistent();
model.dispose();
console.log(JSON.stringify(out));
