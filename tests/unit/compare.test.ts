/** The comparison table and the grid search, on the real tiny backbone with Linear (features cached: fast). */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadExamples, readLayout } from '../../src/cli/node-io';
import { compareCsv, compareProtocols, storedMultiple, summarise, type CompareRun, type Runner } from '../../src/core/train/compare';
import type { Example } from '../../src/core/train/evaluate';
import { train } from '../../src/core/train/loop';
import { hopeless, searchHyper, tuningSplit } from '../../src/core/train/search';
import { parseSpec } from '../../src/core/tuning/registry';
import type { FrozenViT } from '../../src/core/vit/model';
import { NOTMNIST, tinyModel } from './helpers';

let run: Runner;
let data: { train: Example[]; val: Example[]; classes: string[] };

beforeAll(async () => {
  const { b, model, pre } = await tinyModel();
  const layout = readLayout(NOTMNIST);
  const tr = await loadExamples(NOTMNIST, layout, 'train', pre);
  const take = (ex: Example[], n: number) => { const seen = new Map<number, number>(); return ex.filter((e) => { const k = seen.get(e.label) ?? 0; seen.set(e.label, k + 1); return k < n && e.label < 4; }); };
  const all = take(tr.examples, 30);
  data = { train: all.filter((_, i) => i % 5 !== 0), val: all.filter((_, i) => i % 5 === 0), classes: tr.classes.slice(0, 4) };
  run = (d, cfg, hooks) => train(model, pre, d, cfg, b.fingerprint, hooks);
});

describe('compare', () => {
  it('runs every protocol and seed, summarises mean and spread, writes CSV', async () => {
    const seen: string[] = [];
    const runs = await compareProtocols(run, data, { epochs: 3, batch: 16, warmupEpochs: 0 }, [parseSpec('linear'), parseSpec('mlp-1')], [1, 2], () => 1234, {
      onStart: (spec, seed, i, n) => seen.push(`${spec.name}/${seed}/${i}/${n}`),
    });
    expect(seen).toEqual(['linear/1/0/4', 'linear/2/1/4', 'mlp/1/2/4', 'mlp/2/3/4']);
    // Features are computed by the first run only: the other three reuse them.
    expect(runs[1].seconds).toBeLessThan(runs[0].seconds / 2);
    expect(runs.every((r) => r.accuracy !== null && r.accuracy > 0.4 && r.cached)).toBe(true); // 4 classes: chance 25%
    const rows = summarise(runs);
    expect(rows.map((r) => r.protocol)).toEqual(['linear', 'mlp-1']);
    const lin = rows[0];
    const accs = runs.filter((r) => r.protocol === 'linear').map((r) => r.accuracy!);
    expect(lin.accuracy).toBeCloseTo((accs[0] + accs[1]) / 2, 12);
    expect(lin.accuracyStd).toBeCloseTo(Math.abs(accs[0] - accs[1]) / Math.SQRT2, 12);
    expect(lin.tunedParams).toBe(4 * 64 + 4);
    expect(storedMultiple(lin, 24, 100_000)).toBeCloseTo(1 + 24 * 260 / 100_000, 12);
    const csv = compareCsv(rows, 24, 100_000).split('\n');
    expect(csv[1].startsWith('linear,Linear,2,')).toBe(true);
    expect(csv.length).toBe(4);
  });

  it('Full counts a whole model per task', () => {
    const r: CompareRun = { protocol: 'full', title: 'Full', seed: 1, accuracy: 0.5, tunedParams: 1000, fileBytes: 4000, seconds: 1, peakBytes: 1, bestEpoch: 1, lr: 0.01, cached: false };
    expect(storedMultiple(summarise([r])[0], 24, 1000)).toBe(24);
  });
});

describe('search', () => {
  it('fills the grid, stops hopeless settings, retrains the best on all training data', async () => {
    const cells: string[] = [];
    let finalBest: number | null = null;
    const r = await searchHyper(run, data, { protocol: parseSpec('linear'), epochs: 6, batch: 16, warmupEpochs: 0 }, { lr: [1e-6, 1], wd: [0] }, {
      onCell: (c) => { cells.push(`${c.lr}:${c.status}`); },
      onFinalStart: (b) => { finalBest = b.lr; },
    });
    expect(cells[0]).toBe('0.000001:pending');
    expect(cells).toContain('1:done');
    expect(r.cells[0].status).toBe('stopped-early'); // lr 1e-6 learns nothing: at chance after a third of the epochs
    expect(r.cells[0].reason).toMatch(/chance/);
    expect(r.best.lr).toBe(1);
    expect(finalBest).toBe(1);
    expect(r.final.history.length).toBe(6);
    expect(r.tuneTrain + r.tuneVal).toBe(data.train.length);
    expect(r.split).toBe('fgvc');
  });

  it('800/200 for VTAB-1k-sized sets, 90/10 otherwise; hopeless rule', () => {
    const vt = tuningSplit(Array.from({ length: 1000 }, (_, i) => i % 10), 1);
    expect([vt.train.length, vt.val.length, vt.rule]).toEqual([800, 200, 'vtab']);
    const fg = tuningSplit(Array.from({ length: 500 }, (_, i) => i % 5), 1);
    expect([fg.train.length, fg.val.length, fg.rule]).toEqual([450, 50, 'fgvc']);
    expect(hopeless(1, 9, 0.9, 4, null)).toBeNull(); // too early
    expect(hopeless(3, 9, 0.255, 4, null)).toMatch(/chance/);
    expect(hopeless(3, 9, 0.5, 4, 0.9)).toMatch(/25 points behind/);
    expect(hopeless(3, 9, 0.7, 4, 0.9)).toBeNull();
  });
});
