import { describe, expect, it } from 'vitest';
import { prepare, resizeTarget, toInput } from '../../src/core/image/preprocess';
import { resize, type RgbImage } from '../../src/core/image/resize';
import { splitTrainVal } from '../../src/core/train/split';
import { Rng } from '../../src/core/train/rng';
import { detectLayout } from '../../src/data/layout';
import type { Preprocessing } from '../../src/core/vit/config';

const img = (w: number, h: number, f: (x: number, y: number, c: number) => number): RgbImage => {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = f(x, y, c);
  return { width: w, height: h, data };
};
const P: Preprocessing = { size: 4, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resize: 'crop', source: 'default' };

describe('resize and preprocessing', () => {
  it('keeps a constant image constant and is the identity at the same size', () => {
    const c = img(37, 23, () => 77);
    expect(resize(c, 8, 5).data.every((v) => v === 77)).toBe(true);
    expect(resize(c, 100, 60).data.every((v) => v === 77)).toBe(true);
    expect(resize(c, 37, 23)).toBe(c);
  });

  it('antialiases when shrinking: a 1-pixel stripe pattern averages to grey', () => {
    const stripes = img(64, 4, (x) => (x % 2 ? 255 : 0));
    const small = resize(stripes, 8, 4);
    for (const v of small.data) expect(Math.abs(v - 127.5)).toBeLessThan(12);
  });

  it('triangle-filter weights at 2x shrink match the definition', () => {
    // Output 0 covers inputs 0..2 with weights 0.75, 0.75, 0.25 (normalised over 1.75).
    const r = resize(img(4, 1, (x) => [0, 70, 140, 210][x]), 2, 1);
    expect(r.data[0]).toBe(Math.round((0.75 * 0 + 0.75 * 70 + 0.25 * 140) / 1.75));
  });

  it('crop mode: shorter side to floor(S*256/224), then centre crop; direct mode: S x S', () => {
    expect(resizeTarget(640, 480, { size: 224, resize: 'crop' })).toEqual([341, 256]);
    expect(resizeTarget(480, 640, { size: 224, resize: 'crop' })).toEqual([256, 341]);
    expect(resizeTarget(640, 480, { size: 224, resize: 'direct' })).toEqual([224, 224]);
    const p = prepare(img(10, 6, (x) => x * 20), { size: 4, resize: 'crop' });
    expect([p.width, p.height]).toEqual([6, 4]);
    const out = new Float32Array(4 * 4 * 3);
    toInput(img(6, 4, (x) => x * 51), P, out, 0);
    // centre crop starts at x = round((6 - 4) / 2) = 1: value 51 -> 51/255/0.5 - 1
    expect(out[0]).toBeCloseTo(51 / 127.5 - 1, 6);
  });

  it('training augmentation crops randomly and flips, reproducibly per seed', () => {
    const src = img(6, 6, (x, y) => x * 40 + y);
    const a = new Float32Array(48), b = new Float32Array(48);
    toInput(src, P, a, 0, new Rng(3));
    toInput(src, P, b, 0, new Rng(3));
    expect(Array.from(a)).toEqual(Array.from(b));
    const seen = new Set<string>();
    const rng = new Rng(9);
    for (let i = 0; i < 40; i++) { const o = new Float32Array(48); toInput(src, P, o, 0, rng); seen.add(o.join()); }
    expect(seen.size).toBeGreaterThan(8);
  });
});

describe('dataset layout', () => {
  it('flat layout: sorted class folders, junk reported with reasons, nested files kept in their class', () => {
    const l = detectLayout(['b/1.png', 'a/x.JPG', 'a/deep/er/y.jpeg', 'README.md', 'a/.DS_Store', '__MACOSX/a/._x.png', 'a/notes.txt', 'c/Thumbs.db', 'stray.png', 'Ünï cödé 🐱/z.png']);
    expect(l.kind).toBe('flat');
    const s = l.splits.train!;
    expect(s.classes).toEqual(['a', 'b', 'Ünï cödé 🐱']);
    expect(s.files.map((f) => [f.path, f.label])).toEqual([['a/deep/er/y.jpeg', 0], ['a/x.JPG', 0], ['b/1.png', 1], ['Ünï cödé 🐱/z.png', 2]]);
    const reasons = Object.fromEntries(l.skipped.map((k) => [k.path, k.reason]));
    expect(reasons).toEqual({
      'README.md': 'not an image (by extension)', 'a/.DS_Store': 'hidden or system file', '__MACOSX/a/._x.png': 'hidden or system file',
      'a/notes.txt': 'not an image (by extension)', 'c/Thumbs.db': 'hidden or system file', 'stray.png': 'not inside a class folder',
    });
  });

  it('split layout: train/val/test with one class list across splits', () => {
    const l = detectLayout(['train/cat/1.png', 'train/dog/2.png', 'test/dog/3.png', 'test/cat/4.png', 'val/dog/5.png', 'other/x.png']);
    expect(l.kind).toBe('split');
    expect(l.splits.train!.classes).toEqual(['cat', 'dog']);
    expect(l.splits.val!.files).toEqual([{ path: 'val/dog/5.png', label: 1 }]);
    expect(l.splits.test!.files.map((f) => f.label)).toEqual([0, 1]); // sorted by path
    expect(l.skipped).toEqual([{ path: 'other/x.png', reason: 'outside the train/val/test folders' }]);
  });

  it('seeded stratified 90/10 split', () => {
    const labels = Array.from({ length: 100 }, (_, i) => i % 4);
    const a = splitTrainVal(labels, 0.1, 1);
    expect(a.val.length).toBe(12); // round(2.5) = 3 per class
    expect(new Set(a.val.map((i) => labels[i])).size).toBe(4);
    expect(splitTrainVal(labels, 0.1, 1)).toEqual(a);
    expect(splitTrainVal(labels, 0.1, 2)).not.toEqual(a);
    expect([...a.train, ...a.val].sort((x, y) => x - y)).toEqual(labels.map((_, i) => i));
  });
});
