/** `vpt predict`: classify images (or raw tensors) with a task, or print backbone features. */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VptError } from '../../core/errors';
import { nchwToNhwc } from '../../core/image/layout';
import { readSafetensors } from '../../core/io/safetensors';
import { inferRows, inferTensor } from '../../core/train/evaluate';
import { argmaxRows, softmaxRows } from '../../core/train/metrics';
import { disposeVars, makeVars } from '../../core/tuning/params';
import { protocolOf } from '../../core/tuning/registry';
import { FrozenViT } from '../../core/vit/model';
import { num, str, UsageError, type Parsed } from '../args';
import { decoderFor } from '../decode-pool';
import { loadBackboneFromPath, readBytes, walk } from '../node-io';
import { IMAGE_EXT } from '../../data/layout';
import { classesFlag, loadTaskFor, log, preprocessingFromFlags } from './common';

function imagePaths(inputs: string[]): string[] {
  const out: string[] = [];
  for (const i of inputs) {
    if (existsSync(i) && statSync(i).isDirectory()) {
      const { files, skipped } = walk(i);
      for (const s of skipped) log(`skipped: ${join(i, s.path)}: ${s.reason}`);
      for (const f of files) {
        if (IMAGE_EXT.test(f) && !f.split('/').some((s) => s.startsWith('.'))) out.push(join(i, f));
        else log(`skipped: ${join(i, f)}: not an image (by extension)`);
      }
    } else out.push(i);
  }
  return out;
}

/** NCHW float32 tensor from a safetensors file, transposed to NHWC. */
function readNchw(file: string, key: string, S: number): { nhwc: Float32Array; n: number } {
  const t = readSafetensors(readBytes(file), file).tensors.get(key);
  if (!t) throw new VptError(file, `has no tensor "${key}"`);
  const [n, c, h, w] = t.shape;
  if (t.shape.length !== 4 || c !== 3 || h !== S || w !== S || !(t.data instanceof Float32Array)) {
    throw new VptError(file, `tensor "${key}" is ${t.dtype} ${JSON.stringify(t.shape)}, expected float [N, 3, ${S}, ${S}] (normalised NCHW)`);
  }
  return { nhwc: nchwToNhwc(t.data, n, 3, S, S), n };
}

export async function predict(p: Parsed): Promise<void> {
  const backbonePath = str(p, 'backbone');
  if (!backbonePath) throw new UsageError('predict needs --backbone PATH');
  const images = p.flags.get('images') as string[] | undefined;
  const tensors = str(p, 'tensors');
  if (!images === !tensors) throw new UsageError('predict needs exactly one of --images DIR|FILE... or --tensors FILE --key NAME');
  const b = await loadBackboneFromPath(backbonePath);
  const taskPath = str(p, 'task');
  const task = taskPath ? loadTaskFor(b, taskPath, classesFlag(p)) : null;
  const pre = preprocessingFromFlags(b, p, task?.meta.preprocessing);
  const model = new FrozenViT(b.weights);
  const proto = task ? protocolOf(task.state.protocol.name) : null;
  const vars = task ? makeVars(proto!, task.state, b.weights.config, false) : null;
  const tuned = vars ? { proto: proto!, vars } : null;
  try {
    let inputs: (string | number)[];
    let res: { values: Float32Array; cols: number };
    if (tensors) {
      const key = str(p, 'key');
      if (!key) throw new UsageError('--tensors needs --key NAME');
      const { nhwc, n } = readNchw(tensors, key, b.weights.config.imageSize);
      inputs = Array.from({ length: n }, (_, i) => i);
      res = await inferTensor(model, tuned, nhwc, n);
    } else {
      const paths = imagePaths(images!);
      if (!paths.length) throw new VptError(images!.join(' '), 'no images to classify');
      const decode = decoderFor(paths.length);
      const imgs = await Promise.all(paths.map((f) => decode(f, f, pre)));
      inputs = paths;
      res = await inferRows(model, tuned, imgs, pre, num(p, 'batch', true) ?? 16);
    }
    const n = inputs.length;
    const rows = (a: Float32Array) => Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * res.cols, (i + 1) * res.cols)));
    const classes = task ? task.meta.classes : null;
    const probs = task ? softmaxRows(res.values, n, res.cols) : null;
    const pred = task ? Array.from(argmaxRows(res.values, n, res.cols), (i) => classes![i]) : null;
    if (p.flags.get('json') === true) {
      process.stdout.write(JSON.stringify({ inputs, classes, logits: rows(res.values), probabilities: probs ? rows(probs) : null, predictions: pred }) + '\n');
    } else if (task) {
      const k = Math.min(num(p, 'top', true) ?? 3, res.cols);
      inputs.forEach((inp, i) => {
        const top = [...probs!.subarray(i * res.cols, (i + 1) * res.cols)].map((v, c) => [c, v] as const).sort((a, z) => z[1] - a[1]).slice(0, k);
        process.stdout.write(`${inp}\t${top.map(([c, v]) => `${classes![c]} ${(100 * v).toFixed(1)}%`).join('\t')}\n`);
      });
    } else {
      inputs.forEach((inp, i) => process.stdout.write(`${inp}\t[${rows(res.values)[i].slice(0, 4).map((v) => v.toFixed(4)).join(', ')}, ...] (${res.cols}-d features)\n`));
    }
    const csv = str(p, 'csv');
    if (csv) {
      const q = (s: string) => `"${String(s).replace(/"/g, '""')}"`;
      const header = ['input', ...(task ? ['prediction', ...classes!.map(q)] : Array.from({ length: res.cols }, (_, c) => `f${c}`))];
      const lines = inputs.map((inp, i) => [q(String(inp)), ...(task ? [q(pred![i]), ...Array.from(probs!.subarray(i * res.cols, (i + 1) * res.cols), String)] : Array.from(res.values.subarray(i * res.cols, (i + 1) * res.cols), String))].join(','));
      writeFileSync(csv, [header.join(','), ...lines].join('\n') + '\n');
    }
  } finally {
    if (vars) disposeVars(vars);
    model.dispose();
  }
}
