/**
 * The `vpt` command line. Exit codes: 0 ok, 1 bad input (one line
 * `error: FILE: what is wrong` on stderr), 2 usage. Never a stack trace.
 */
import { VptError } from '../core/errors';
import { DEFAULT_LR, DEFAULT_TRAIN } from '../core/train/config';
import { formatSpec, PROTOCOLS } from '../core/tuning/registry';
import { compare } from './commands/compare';
import { num, parseArgs, oneOf, UsageError, type FlagSpec } from './args';
import { describeBackend, resolveThreads, useBackend } from './backend';
import { setDecodeThreads } from './decode-pool';
import { MAX_WASM_THREADS } from './wasm-threads';
import { evaluate } from './commands/eval';
import { inspect } from './commands/inspect';
import { predict } from './commands/predict';
import { train } from './commands/train';

const D = DEFAULT_TRAIN;
export const HELP = `vpt: Visual Prompt Tuning of frozen Vision Transformers

usage:
  vpt inspect FILE
  vpt train --backbone PATH --data DIR --out FILE [options]
  vpt predict --backbone PATH [--task FILE] (--images DIR|FILE... | --tensors FILE --key NAME) [--json] [--top K] [--csv FILE]
  vpt eval --backbone PATH --task FILE --data DIR [--split train|val|test] [--json]
  vpt compare --backbone PATH --data DIR --protocols A,B,... [--seeds 1,2,3] [--search small|paper] [--tasks N] [--csv FILE] [--json]

backbone PATH: a .safetensors file (config.json beside it, or inferred), a Hugging Face
folder (model.safetensors + config.json), or an original ViT .npz.
DIR: class sub-folders, or train/val/test folders holding class sub-folders.

protocols (NAME or NAME-N, N the size; defaults shown):
  ${PROTOCOLS.map((x) => formatSpec({ name: x.name, n: x.size?.default ?? 0 }) + (x.size ? ` (N = ${x.size.label})` : '')).join(', ')}

train options (defaults in brackets):
  --protocol NAME[-N]  [${formatSpec(D.protocol)}]   (--variant deep|shallow and --prompts N: VPT shorthands)
  --epochs N  [${D.epochs}]                   --batch N  [${D.batch}]
  --lr X  learning rate per 256 images; applied = lr x batch / 256  [sgd ${DEFAULT_LR.sgd} (x0.1 bias, x0.05 partial, x0.01 full), adamw ${DEFAULT_LR.adamw} (x0.1 bias, x0.01 partial, x0.001 full)]
  --wd X  weight decay  [${D.weightDecay}]    --optimizer sgd|adamw  [${D.optimizer}] (SGD momentum 0.9)
  --warmup N  warm-up epochs  [epochs / 10]   --schedule step|epoch  [${D.schedule}]
  --prompt-dropout X  [${D.promptDropout}]    --val-split X  [${D.valSplit}] (0 trains on everything)
  --resize crop|direct  [crop]                --augment  random crop + horizontal flip  [off]
  --mean R,G,B --std R,G,B  override the backbone's normalisation
  --seed N  [${D.seed}]                       --micro-batch N  images per pass, exact accumulation  [whole batch]
  --resume FILE  continue from a checkpoint   --checkpoint FILE  [OUT with .ckpt.safetensors]
  --fp16  write float16 tensors               --naming vpt|official  tensor names  [vpt]
  --no-cache  recompute features every step (Linear, Mlp)   --json  print a summary on stdout
  --recompute  keep only each frozen block's input and rerun it in backward (VPT, Linear, Mlp: less memory, ~1.5x the time)
  --memory GiB  memory for a whole training step, the backbone included; larger batches run as passes within it  [2]

compare options (and the train options above, shared by every protocol):
  --protocols A,B,...  e.g. linear,bias,vpt-shallow,vpt-deep    --seeds 1,2,3  [--seed]
  --search small|paper  tune lr and wd per protocol first (90/10 or 800/200 split, then retrain)
  --tasks N  tasks for the "stored for N tasks" column  [24]    --csv FILE  write the table
  --json  one JSON object per protocol per line on stdout

common options:
  --backend wasm|webgpu|cpu  [wasm]  webgpu: a GPU through Dawn (the optional \`webgpu\` package, a Vulkan driver)
  --classes A,B,C|@FILE  names for a task file without them
  --threads N  cores wasm computes on, 1-${MAX_WASM_THREADS}  [VPT_THREADS, else every core up to ${MAX_WASM_THREADS}]
  --resize, --mean, --std  as above (a task file's own preprocessing wins otherwise)
`;

const SPEC: FlagSpec = {
  backbone: 'string', data: 'string', out: 'string', variant: 'string', prompts: 'string', epochs: 'string', batch: 'string',
  lr: 'string', wd: 'string', optimizer: 'string', warmup: 'string', schedule: 'string', 'prompt-dropout': 'string',
  'val-split': 'string', resize: 'string', augment: 'bool', mean: 'string', std: 'string', seed: 'string', resume: 'string',
  checkpoint: 'string', json: 'bool', 'micro-batch': 'string', fp16: 'bool', naming: 'string', backend: 'string',
  task: 'string', images: 'list', tensors: 'string', key: 'string', top: 'string', csv: 'string', split: 'string',
  classes: 'string', help: 'bool', protocol: 'string', protocols: 'string', seeds: 'string', search: 'string', tasks: 'string', 'no-cache': 'bool', recompute: 'bool', memory: 'string', threads: 'string',
};

export async function main(argv: string[]): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') { process.stdout.write(HELP); return cmd ? 0 : 2; }
    const p = parseArgs(rest, SPEC);
    if (p.flags.get('help')) { process.stdout.write(HELP); return 0; }
    const name = oneOf(p, 'backend', ['wasm', 'webgpu', 'cpu'] as const) ?? 'wasm';
    const threads = num(p, 'threads', true);
    if (threads !== undefined && (threads < 1 || threads > MAX_WASM_THREADS)) throw new UsageError(`--threads must be from 1 to ${MAX_WASM_THREADS}, got ${threads}`);
    if (threads !== undefined && name !== 'wasm') throw new UsageError('--threads applies to the wasm backend only');
    // One count for both: wasm's threads and the image decode threads (before training, or between
    // its steps when a dataset streams).
    const n = resolveThreads(threads);
    await useBackend(name, n);
    setDecodeThreads(n);
    const backend = describeBackend();
    switch (cmd) {
      case 'inspect': await inspect(p); break;
      case 'train': await train(p, backend); break;
      case 'predict': await predict(p); break;
      case 'eval': await evaluate(p); break;
      case 'compare': await compare(p, backend); break;
      default: throw new UsageError(`unknown command "${cmd}"`);
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`error: ${e.message}\nrun \`vpt --help\` for usage\n`); return 2; }
    if (e instanceof VptError) { process.stderr.write(`error: ${e.message}\n`); return 1; }
    process.stderr.write(`error: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
