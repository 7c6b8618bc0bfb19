// Node-side helpers for the browser tests (run through tsx's loader).
import { readTask as read } from '../../src/core/io/task-file';
import { writeTask } from '../../src/core/io/task-file';
import { Rng } from '../../src/core/train/rng';
import { initVpt } from '../../src/core/tuning/vpt';
import { fromVptState } from '../../src/core/tuning/prompt';

export const readTask = read;

/** A task for the fixture backbone (d = 48, 3 layers), for refusal tests. */
export function writeFixtureTask(): Uint8Array {
  const cfg = { imageSize: 32, patchSize: 8, hiddenSize: 48, numLayers: 3, numHeads: 4, mlpDim: 96, layerNormEps: 1e-6 };
  return writeTask(fromVptState(initVpt(cfg, 'deep', 2, 3, new Rng(1))), { classes: ['x', 'y', 'z'], backbone: { name: 'fixture', architecture: 'ViT', fingerprint: 'f'.repeat(64), hidden_size: 48, num_layers: 3, patch_size: 8, image_size: 32 } });
}

/** A VPT-shallow task for the demo backbone (public/demo/tiny-vit-mnist): one the studio accepts. */
export async function writeDemoTask(dir: string): Promise<Uint8Array> {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { loadBackbone } = await import('../../src/core/vit/load');
  const { backboneRef } = await import('../../src/core/io/task-file');
  const b = await loadBackbone({ name: 'tiny-vit-mnist (demo)', bytes: readFileSync(join(dir, 'model.safetensors')), config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) });
  return writeTask(fromVptState(initVpt(b.weights.config, 'shallow', 1, 2, new Rng(3))), { classes: ['yes', 'no'], backbone: backboneRef(b) });
}
