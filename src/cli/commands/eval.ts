/** `vpt eval`: accuracy, per-class accuracy and confusion of a task on a labelled folder. */
import { VptError } from '../../core/errors';
import { evaluateState } from '../../core/train/loop';
import { FrozenViT } from '../../core/vit/model';
import { oneOf, str, UsageError, type Parsed } from '../args';
import { decoderFor } from '../decode-pool';
import { loadBackboneFromPath, loadExamples, readLayout } from '../node-io';
import { classesFlag, loadTaskFor, log, preprocessingFromFlags } from './common';

export async function evaluate(p: Parsed): Promise<void> {
  const backbonePath = str(p, 'backbone'), taskPath = str(p, 'task'), dir = str(p, 'data');
  if (!backbonePath || !taskPath || !dir) throw new UsageError('eval needs --backbone PATH --task FILE --data DIR');
  const b = await loadBackboneFromPath(backbonePath);
  const task = loadTaskFor(b, taskPath, classesFlag(p));
  const pre = preprocessingFromFlags(b, p, task.meta.preprocessing);
  const layout = readLayout(dir);
  const split = oneOf(p, 'split', ['train', 'val', 'test'] as const) ??
    (layout.kind === 'split' ? (layout.splits.test ? 'test' : layout.splits.val ? 'val' : 'train') : 'train');
  const set = await loadExamples(dir, layout, split, pre, undefined, decoderFor);
  for (const s of [...layout.skipped, ...set.skipped]) log(`skipped: ${dir}/${s.path}: ${s.reason}`);
  // Match folders to the task's classes by name, not by position.
  const classes = task.meta.classes;
  const unknown = set.classes.filter((c) => !classes.includes(c));
  if (unknown.length) throw new VptError(dir, `folder(s) ${unknown.map((c) => `"${c}"`).join(', ')} are not classes of the task (its classes: ${classes.join(', ')})`);
  const ex = set.examples.map((e) => ({ ...e, label: classes.indexOf(set.classes[e.label]) }));
  if (!ex.length) throw new VptError(dir, 'no readable images to evaluate');
  const model = new FrozenViT(b.weights);
  try {
    const ev = await evaluateState(model, task.state, ex, classes, pre, 16);
    const out = { accuracy: ev.accuracy, per_class: ev.perClass, confusion: { classes: ev.classes, matrix: ev.confusion }, count: ev.count, split };
    if (p.flags.get('json') === true) process.stdout.write(JSON.stringify(out) + '\n');
    else {
      process.stdout.write(`accuracy ${(100 * ev.accuracy).toFixed(2)}% on ${ev.count} images (${split})\n`);
      for (const c of classes) process.stdout.write(`  ${c}\t${(100 * ev.perClass[c]).toFixed(1)}%\n`);
    }
  } finally {
    model.dispose();
  }
}
