/**
 * `vpt compare`: several protocols on the same split with the same budget,
 * one after another; optionally each tuned by the grid search first.
 * Prints the table on stderr and, with --json, one JSON object per protocol
 * per line on stdout.
 */
import { writeFileSync } from 'node:fs';
import { writeTask } from '../../core/io/task-file';
import { compareCsv, compareProtocols, storedMultiple, summarise, type CompareRun, type Runner } from '../../core/train/compare';
import { train } from '../../core/train/loop';
import { resolveTrainConfig } from '../../core/train/config';
import { planPasses } from '../../core/train/memory';
import { paperGrid, searchHyper, smallGrid } from '../../core/train/search';
import { countTuned } from '../../core/tuning/params';
import { formatSpec, parseSpec, titleOf } from '../../core/tuning/registry';
import { FrozenViT } from '../../core/vit/model';
import { countParams } from '../../core/vit/weights';
import { num, oneOf, str, UsageError, type Parsed } from '../args';
import { loadBackboneFromPath } from '../node-io';
import { backboneRef, loadTrainData, log, memoryFlag, preprocessingFromFlags } from './common';
import { configFromFlags } from './train';
import { engineKernels } from '../../core/vit/ops';

export async function compare(p: Parsed, backend: string): Promise<void> {
  const backbonePath = str(p, 'backbone'), dataDir = str(p, 'data');
  const list = str(p, 'protocols');
  if (!backbonePath || !dataDir || !list) throw new UsageError('compare needs --backbone PATH --data DIR --protocols A,B,...');
  const specs = list.split(',').filter(Boolean).map(parseSpec);
  const seeds = (str(p, 'seeds') ?? String(num(p, 'seed', true) ?? 42)).split(',').map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n)) throw new UsageError(`--seeds: "${s}" is not an integer`);
    return n;
  });
  const search = oneOf(p, 'search', ['small', 'paper'] as const);
  const tasks = num(p, 'tasks', true) ?? 24;
  const settings = { ...configFromFlags(p), protocol: undefined };
  resolveTrainConfig(settings); // validate the shared flags once, before any work
  const budgetBytes = memoryFlag(p);
  const b = await loadBackboneFromPath(backbonePath);
  const pre = preprocessingFromFlags(b, p);
  const data = await loadTrainData(dataDir, pre, resolveTrainConfig(settings));
  log(`data: ${data.classes.length} classes, ${data.train.length} train, ${data.val.length} validation images; backend ${backend}`);
  const ref = backboneRef(b);
  const dtype = p.flags.get('fp16') === true ? 'F16' as const : 'F32' as const;
  const fileBytes = (s: Parameters<typeof writeTask>[0]) => writeTask(s, { classes: data.classes, backbone: ref, preprocessing: pre }, { dtype }).byteLength;
  const model = new FrozenViT(b.weights);
  const run: Runner = (d, cfg, hooks) => train(model, pre, d, planPasses(b.weights.config, cfg, { budgetBytes, ...engineKernels() }), b.fingerprint, hooks);
  const runs: CompareRun[] = [];
  try {
    if (!search) {
      runs.push(...await compareProtocols(run, data, settings, specs, seeds, (s) => fileBytes(s), {
        onStart: (spec, seed, i, n) => log(`[${i + 1}/${n}] ${titleOf(spec)}, seed ${seed}`),
        onRun: (r) => { log(`  ${r.title}: ${r.accuracy === null ? 'no validation' : `${(100 * r.accuracy).toFixed(1)}%`} in ${r.seconds.toFixed(1)} s`); },
      }));
    } else {
      for (const spec of specs) for (const seed of seeds) {
        const cfg = resolveTrainConfig({ ...settings, protocol: spec, seed });
        const grid = search === 'paper' ? paperGrid(cfg) : smallGrid(cfg);
        log(`${titleOf(spec)}, seed ${seed}: searching ${grid.lr.length} x ${grid.wd.length} settings`);
        const t0 = performance.now();
        const r = await searchHyper(run, data, { ...settings, protocol: spec, seed }, grid, {
          onCell: (c) => { if (c.status !== 'pending' && c.status !== 'running') log(`  lr ${c.lr} wd ${c.wd}: ${c.status} ${c.accuracy === null ? '' : `${(100 * c.accuracy).toFixed(1)}%`}${c.reason ? ` (${c.reason})` : ''}`); },
          onFinalStart: (best) => log(`  best lr ${best.lr} wd ${best.wd}; retraining on all training data`),
        });
        runs.push({
          protocol: formatSpec(spec), title: titleOf(spec), seed, accuracy: r.final.bestValAccuracy, tunedParams: countTuned(r.final.state),
          fileBytes: fileBytes(r.final.state), seconds: (performance.now() - t0) / 1000, peakBytes: r.final.peakBytes,
          bestEpoch: r.final.bestEpoch, lr: r.best.lr, cached: r.final.cached,
        });
      }
    }
  } finally {
    model.dispose();
  }
  const rows = summarise(runs);
  const P = countParams(b.weights);
  const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
  log(`\nprotocol\taccuracy\ttuned params\tfile bytes\tstored for ${tasks} tasks\tseconds\tpeak MB`);
  for (const r of rows) {
    log(`${r.title}\t${pct(r.accuracy)}${r.accuracyStd === null ? '' : ` ± ${(100 * r.accuracyStd).toFixed(1)}`}\t${r.tunedParams}\t${r.fileBytes}\t${storedMultiple(r, tasks, P).toFixed(2)}x\t${r.seconds.toFixed(1)}\t${r.peakBytes === null ? '-' : (r.peakBytes / 2 ** 20).toFixed(0)}`);
  }
  const csv = str(p, 'csv');
  if (csv) writeFileSync(csv, compareCsv(rows, tasks, P));
  if (p.flags.get('json') === true) {
    for (const r of rows) {
      process.stdout.write(JSON.stringify({
        protocol: r.protocol, title: r.title, accuracy: r.accuracy, accuracy_std: r.accuracyStd, runs: r.runs,
        tuned_params: r.tunedParams, file_bytes: r.fileBytes, stored_multiple: storedMultiple(r, tasks, P), tasks,
        seconds: r.seconds, peak_bytes: r.peakBytes, backbone_params: P,
        seeds: runs.filter((x) => x.protocol === r.protocol).map((x) => ({ seed: x.seed, accuracy: x.accuracy, lr: x.lr, best_epoch: x.bestEpoch })),
      }) + '\n');
    }
  }
}
