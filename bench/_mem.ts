import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/cli/backend';
import { activationBytesPerImage } from '../src/core/train/memory';
import { Rng } from '../src/core/train/rng';
import { batchGradients, forwardOf } from '../src/core/train/step';
import { disposeVars, initState, makeVars } from '../src/core/tuning/params';
import { protocolOf } from '../src/core/tuning/registry';
import { parseSpec } from '../src/core/tuning/registry';
import { FrozenViT } from '../src/core/vit/model';
import { setFusedKernels } from '../src/core/vit/webgpu-kernels';
import { randomWeights } from './step';
await useBackend('webgpu');
const c = { imageSize: 32, patchSize: 4, hiddenSize: 64, numLayers: 4, numHeads: 4, mlpDim: 256, layerNormEps: 1e-6 };
const w = randomWeights(c); const model = new FrozenViT(w); model.prepareBackward();
const spec = parseSpec('vpt-deep-10'); const proto = protocolOf(spec.name);
const B = Number(process.env.B ?? 8);
for (const fused of [true, false]) for (const recompute of [false, true]) {
  setFusedKernels(fused);
  const vars = makeVars(proto, initState(proto, w, spec, 3, new Rng(1)), c);
  const batch = { inputs: Float32Array.from({ length: B * 32 * 32 * 3 }, (_, i) => Math.sin(i)), rowShape: [32, 32, 3], labels: Int32Array.from({ length: B }, (_, i) => i % 3), weights: new Float32Array(B).fill(1), size: B };
  const base = tf.memory().numBytes;
  const prof = await tf.profile(() => { const r = batchGradients(forwardOf(model, proto, vars, { recompute }), vars, batch, B); return [r.loss, r.correct, ...r.grads.values()]; });
  for (const t of prof.result as tf.Tensor[]) t.dispose();
  console.log(`fused ${fused} recompute ${recompute}: measured ${((prof.peakBytes - base) / B / 1024).toFixed(0)} KB/img, estimate ${(activationBytesPerImage(c, 10, recompute) / 1024).toFixed(0)} KB`);
  disposeVars(vars);
}
