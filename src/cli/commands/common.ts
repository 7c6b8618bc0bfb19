/** Pieces shared by the CLI commands. */
import { readFileSync } from 'node:fs';
import { VptError } from '../../core/errors';
import { checkTaskAgainstBackbone, readTask, type Task } from '../../core/io/task-file';
import type { Preprocessing } from '../../core/vit/config';
import type { Backbone } from '../../core/vit/load';
import { oneOf, triple, type Parsed } from '../args';
import { readBytes } from '../node-io';

export const log = (msg: string) => process.stderr.write(msg + '\n');

/** Backbone preprocessing with `--resize`, `--mean`, `--std` applied on top. */
export function preprocessingFromFlags(b: Backbone, p: Parsed, base?: Preprocessing): Preprocessing {
  const pre = { ...(base ?? b.preprocessing) };
  const resize = oneOf(p, 'resize', ['crop', 'direct'] as const);
  if (resize) pre.resize = resize;
  const mean = triple(p, 'mean');
  const std = triple(p, 'std');
  if (mean) { pre.mean = mean; pre.source = 'flags'; }
  if (std) {
    if (std.some((s) => s <= 0)) throw new VptError('--std', 'every value must be positive');
    pre.std = std; pre.source = 'flags';
  }
  return pre;
}

export function loadTaskFor(b: Backbone, path: string, classes?: string[]): Task {
  const task = readTask(readBytes(path), path, classes);
  checkTaskAgainstBackbone(task, b.weights.config, b.fingerprint, path);
  task.warnings.forEach((w) => log(`warning: ${path}: ${w}`));
  return task;
}

export function classesFlag(p: Parsed): string[] | undefined {
  const v = p.flags.get('classes');
  if (typeof v !== 'string') return undefined;
  if (v.startsWith('@')) return readFileSync(v.slice(1), 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
  return v.split(',').map((s) => s.trim());
}
