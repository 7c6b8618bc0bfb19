/**
 * Dataset layout from a list of file paths (relative, '/'-separated), the
 * same for the CLI's directory walk and the studio's dropped folder:
 *  - split: DIR holds train/val/test folders whose children are class folders;
 *  - flat: DIR's sub-folders are the classes.
 * Class order is the sorted folder names, as torchvision's ImageFolder.
 * Everything not used is reported with a reason, never dropped silently.
 */
export const IMAGE_EXT = /\.(png|jpe?g|bmp|gif|webp)$/i;
const SYSTEM = /^(\.ds_store|thumbs\.db|desktop\.ini)$/i;
export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface LabeledFile { path: string; label: number }
export interface ClassSet { classes: string[]; files: LabeledFile[] }
export interface Skipped { path: string; reason: string }

export interface Layout {
  kind: 'flat' | 'split';
  /** flat datasets put everything under `train`. */
  splits: Partial<Record<SplitName, ClassSet>>;
  skipped: Skipped[];
}

function classSet(entries: { cls: string; path: string }[], classes: string[]): ClassSet {
  const idx = new Map(classes.map((c, i) => [c, i]));
  const files = entries.map((e) => ({ path: e.path, label: idx.get(e.cls)! })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { classes, files };
}

export function detectLayout(paths: string[]): Layout {
  const skipped: Skipped[] = [];
  const parts = paths.map((p) => p.split('/').filter((s) => s.length));
  const top = new Set(parts.filter((p) => p.length > 1).map((p) => p[0]));
  const isSplit = [...top].some((t) => (SPLITS as readonly string[]).includes(t.toLowerCase())) &&
    parts.some((p) => p.length >= 3 && (SPLITS as readonly string[]).includes(p[0].toLowerCase()));
  const groups = new Map<SplitName, { cls: string; path: string }[]>();
  const rawName = new Map<string, string>();
  paths.forEach((path, i) => {
    const p = parts[i];
    const name = p[p.length - 1] ?? path;
    if (name.startsWith('.') || SYSTEM.test(name) || p.includes('__MACOSX')) { skipped.push({ path, reason: 'hidden or system file' }); return; }
    if (!IMAGE_EXT.test(name)) { skipped.push({ path, reason: 'not an image (by extension)' }); return; }
    let split: SplitName = 'train';
    let rest = p;
    if (isSplit) {
      const s = p[0].toLowerCase();
      if (!(SPLITS as readonly string[]).includes(s)) { skipped.push({ path, reason: 'outside the train/val/test folders' }); return; }
      split = s as SplitName;
      rest = p.slice(1);
    }
    if (rest.length < 2) { skipped.push({ path, reason: 'not inside a class folder' }); return; }
    // The class is the first folder; deeper folders belong to that class.
    const raw = rest[0];
    const cls = raw.trim();
    if (!cls) { skipped.push({ path, reason: 'class folder name is blank' }); return; }
    // "cat" and "cat " would be one class on screen but two on disk: keep the first, say so about the other.
    const first = rawName.get(cls) ?? (rawName.set(cls, raw), raw);
    if (first !== raw) { skipped.push({ path, reason: `class folder "${raw}" is the same as "${first}" after trimming spaces: rename one` }); return; }
    if (!groups.has(split)) groups.set(split, []);
    groups.get(split)!.push({ cls, path });
  });
  const splits: Partial<Record<SplitName, ClassSet>> = {};
  // One class list for all splits, so a label means the same class in each.
  const classes = [...new Set([...groups.values()].flat().map((e) => e.cls))].sort();
  for (const [s, e] of groups) splits[s] = classSet(e, classes);
  return { kind: isSplit ? 'split' : 'flat', splits, skipped };
}
