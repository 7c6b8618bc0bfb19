/** `vpt inspect FILE`: what a file is, its tensors and metadata, as JSON. */
import { dirname, join } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { readTensorFile } from '../../core/vit/load';
import { isTaskFile, readTask } from '../../core/io/task-file';
import { formatSpec } from '../../core/tuning/registry';
import { countTuned } from '../../core/tuning/params';
import { countParams } from '../../core/vit/weights';
import { UsageError, type Parsed } from '../args';
import { loadBackboneFromPath, readBytes } from '../node-io';

export async function inspect(p: Parsed): Promise<void> {
  const path = p.positional[0];
  if (!path) throw new UsageError('inspect needs a FILE');
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'model.safetensors') : path;
  const bytes = readBytes(file);
  const { tensors, metadata } = await readTensorFile(bytes, file);
  const list = [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  const md = Object.fromEntries(metadata);
  let out: Record<string, unknown>;
  if (metadata.get('format') === 'vpt-checkpoint') {
    out = { file, kind: 'checkpoint', bytes: bytes.byteLength, metadata: md, tensors: list };
  } else if (isTaskFile(tensors, metadata)) {
    const task = readTask(bytes, file);
    out = {
      file, kind: 'task', bytes: bytes.byteLength, naming: task.naming, protocol: formatSpec(task.state.protocol),
      tuned_params: countTuned(task.state), classes: task.meta.classes, backbone: task.meta.backbone ?? null,
      warnings: task.warnings, metadata: md, tensors: list,
    };
  } else {
    const b = await loadBackboneFromPath(path === file ? file : dirname(file));
    out = {
      file, kind: 'backbone', bytes: bytes.byteLength, format: b.format, architecture: b.architecture,
      config: b.weights.config, parameters: countParams(b.weights), preprocessing: b.preprocessing,
      fingerprint: b.fingerprint, ignored: b.ignored, warnings: b.warnings, metadata: md, tensors: list,
    };
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}
