/** The worker's dataset: the folder layout, decoded + resized images, splits and class edits. */
import { VptError } from '../core/errors';
import { prepare } from '../core/image/preprocess';
import { keepsPixels, PIXEL_BUDGET_BYTES, type Example, type ImageSource } from '../core/train/evaluate';
import { splitTrainVal } from '../core/train/split';
import type { Preprocessing } from '../core/vit/config';
import { detectLayout, type Layout, type SplitName } from '../data/layout';
import { decodeBlob, mapLimit, thumbOf } from './decode';
import type { ClassEdits, DataFile, DatasetSummary, Thumb } from './protocol';

export interface LoadedImage { path: string; split: SplitName; cls: string; image: ImageSource }

export interface StudioDataset { layout: Layout; images: LoadedImage[]; summary: DatasetSummary }

/**
 * Decode every image once, a few at a time (bad ones are reported, not kept).
 * The prepared pixels are kept while they fit `pixelBudget`; past it (tens of
 * thousands of images) only the file is kept and decoded again per batch, so
 * memory stays bounded whatever the folder holds.
 */
export async function loadDataset(files: DataFile[], pre: Preprocessing, progress: (done: number, total: number) => void, pixelBudget = PIXEL_BUDGET_BYTES): Promise<StudioDataset> {
  const byPath = new Map(files.map((f) => [f.path, f.file]));
  const layout = detectLayout(files.map((f) => f.path));
  const skipped = [...layout.skipped];
  const todo: { path: string; split: SplitName; cls: string }[] = [];
  for (const [split, set] of Object.entries(layout.splits) as [SplitName, NonNullable<Layout['splits'][SplitName]>][]) {
    for (const f of set.files) todo.push({ path: f.path, split, cls: set.classes[f.label] });
  }
  if (!todo.length) throw new VptError('dataset', files.length ? 'no images inside class folders (expected one sub-folder per class)' : 'the folder is empty');
  const keep = keepsPixels(todo.length, pre.size, pixelBudget);
  // Thumbnails of each class's first training images, made while decoding (a streamed image is not kept).
  const thumbAt = new Set<number>();
  const perClass = new Map<string, number>();
  todo.forEach((t, i) => { const n = perClass.get(t.cls) ?? 0; if (t.split === 'train' && n < 6) { thumbAt.add(i); perClass.set(t.cls, n + 1); } });
  const thumbs = new Map<number, Thumb>();
  const decode = async (path: string) => prepare(await decodeBlob(byPath.get(path)!, path), pre);
  const decoded = await mapLimit(todo, 4, async (t, i) => {
    try {
      const img = await decode(t.path);
      if (thumbAt.has(i)) thumbs.set(i, thumbOf(img));
      return { ...t, image: keep ? img : { load: () => decode(t.path) }, index: i };
    } catch (e) {
      skipped.push({ path: t.path, reason: e instanceof VptError ? e.problem : String(e) });
      return null;
    }
  }, (d) => { if (d % 8 === 0 || d === todo.length) progress(d, todo.length); });
  const ok = decoded.filter((x): x is LoadedImage & { index: number } => x !== null);
  const names = [...new Set(ok.map((i) => i.cls))].sort();
  if (names.length < 2) throw new VptError('dataset', `the dataset has ${names.length} class folder${names.length === 1 ? '' : 's'}${names.length ? ` (${names[0]})` : ''}: training needs at least 2, one sub-folder per class`);
  const training = ok.filter((i) => i.split === 'train');
  const summary: DatasetSummary = {
    kind: layout.kind,
    classes: names.map((name) => {
      const mine = training.filter((i) => i.cls === name);
      return { name, count: mine.length, thumbs: mine.map((i) => thumbs.get(i.index)).filter((x): x is Thumb => !!x) };
    }),
    splits: Object.fromEntries((['train', 'val', 'test'] as const).map((s) => [s, ok.filter((i) => i.split === s).length]).filter(([, n]) => n)),
    skipped,
    streamed: !keep,
  };
  return { layout, images: ok.map(({ index: _, ...i }) => i), summary };
}

export type SplitRule = 'fgvc' | 'vtab' | 'own';

/** Apply class edits, then split: own val folder, the paper's FGVC 90/10, or VTAB-1k's 800/200. */
export function makeSplits(ds: StudioDataset, edits: ClassEdits, rule: SplitRule, valFraction: number, seed: number): { train: Example[]; val: Example[]; classes: string[] } {
  const rename = (c: string) => (edits.renamed[c] ?? c).trim();
  const kept = ds.images.filter((i) => !edits.dropped.includes(i.cls));
  const classes = [...new Set(kept.map((i) => rename(i.cls)))].sort();
  if (classes.length < 2) throw new VptError('dataset', `training needs at least 2 classes, there ${classes.length === 1 ? 'is 1' : `are ${classes.length}`}`);
  const ex = (i: LoadedImage): Example => ({ image: i.image, label: classes.indexOf(rename(i.cls)), name: i.path });
  const train = kept.filter((i) => i.split === 'train').map(ex);
  const ownVal = kept.filter((i) => i.split === 'val').map(ex);
  for (const c of classes) if (!train.some((e) => classes[e.label] === c)) throw new VptError('dataset', `class "${c}" has no training images`);
  if (rule === 'own' && ownVal.length) return { train, val: ownVal, classes };
  const frac = rule === 'vtab' ? 0.2 : valFraction;
  const s = splitTrainVal(train.map((e) => e.label), frac, seed);
  return { train: s.train.map((i) => train[i]), val: s.val.map((i) => train[i]), classes };
}
