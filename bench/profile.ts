// `npx tsx bench/profile.ts [wasm|cpu|webgpu] [prompts] [batch] [--recompute] [--forward] [--vit-b]`: where one VPT-deep
// training step (or, with --forward, one inference pass) of ViT-Ti/16 (or ViT-B/16) at 224 spends its time,
// by kernel (tf.profile), largest first.
import { describeBackend, useBackend, type NodeBackend } from '../src/cli/backend';
import { PRESETS } from '../src/core/vit/config';
import { formatProfile, profileStep } from './profile-step';

const [backend = 'wasm', ps = '10', bs = '8'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
await useBackend(backend as NodeBackend);
const modelName = process.argv.includes('--vit-b') ? 'ViT-B/16' : 'ViT-Ti/16';
const c = PRESETS.find((p) => p.name === modelName)!.config;
const forward = process.argv.includes('--forward');
const r = await profileStep(c, Number(ps), Number(bs), { recompute: process.argv.includes('--recompute'), forward });
console.log(formatProfile(`${describeBackend()}, ${modelName} p=${ps} batch ${bs}: ${forward ? 'forward' : 'step'}`, r));
