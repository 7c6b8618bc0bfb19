/**
 * Bad input, one case at a time: each gets a specific message naming the
 * file, or is read correctly; nothing crashes and nothing is dropped without
 * a reason. (The studio's decoder shares the header checks: src/core/image/sniff.ts.)
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { loadTrainData } from '../../src/cli/commands/common';
import { decodeImage, readLayout } from '../../src/cli/node-io';
import { VptError } from '../../src/core/errors';
import { prepare } from '../../src/core/image/preprocess';
import { sniffImage } from '../../src/core/image/sniff';
import { readNpz } from '../../src/core/io/npz';
import { writeSafetensors } from '../../src/core/io/safetensors';
import { readTask, writeTask } from '../../src/core/io/task-file';
import { Rng } from '../../src/core/train/rng';
import { fromVptState } from '../../src/core/tuning/prompt';
import { initVpt } from '../../src/core/tuning/vpt';
import type { Preprocessing } from '../../src/core/vit/config';
import { npy, zip } from './zipmaker';

const IMG = join(__dirname, '../fixtures/images');
const img = (f: string) => new Uint8Array(readFileSync(join(IMG, f)));
const pre: Preprocessing = { size: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resize: 'direct', source: 'default' };

function problem(f: () => unknown): string {
  try { f(); } catch (e) {
    expect(e).toBeInstanceOf(VptError);
    return (e as VptError).message;
  }
  throw new Error('expected a VptError');
}

async function problemAsync(f: () => Promise<unknown>): Promise<string> {
  try { await f(); } catch (e) {
    expect(e).toBeInstanceOf(VptError);
    return (e as VptError).message;
  }
  throw new Error('expected a VptError');
}

describe('bad images', () => {
  it('reads the odd but valid ones: CMYK JPEG, 16-bit PNG, 1 x 1, EXIF-rotated (turned upright), PNG named .jpg', () => {
    const cmyk = decodeImage(img('cmyk.jpg'), 'cmyk.jpg');
    expect([cmyk.width, cmyk.height]).toEqual([32, 24]);
    expect(Array.from(cmyk.data.slice(0, 3)).map((v) => Math.round(v / 10))).toEqual([26, 17, 0]); // orange, not inverted
    const deep = decodeImage(img('rgb16.png'), 'rgb16.png');
    expect([deep.width, deep.height, deep.data[0]]).toEqual([8, 8, 255]);
    const one = decodeImage(img('one-pixel.png'), 'one.png');
    const resized = prepare(one, pre);
    expect([resized.width, resized.height]).toEqual([16, 16]);
    expect(resized.data.every((v, i) => v === one.data[i % 3])).toBe(true);
    // Stored 32 x 16 with red on the left; EXIF orientation 6 means "turn clockwise": 16 x 32, red on top.
    expect(sniffImage(img('exif-rotated.jpg'), 'r').orientation).toBe(6);
    const up = decodeImage(img('exif-rotated.jpg'), 'exif-rotated.jpg');
    expect([up.width, up.height]).toEqual([16, 32]);
    expect(up.data[0]).toBeGreaterThan(200);                 // top: red
    expect(up.data[up.data.length - 1]).toBeGreaterThan(200); // bottom: blue
    expect(up.data[up.data.length - 3]).toBeLessThan(50);
    expect(decodeImage(img('one-pixel.png'), 'actually-png.jpg').width).toBe(1);
  });

  it('refuses the broken ones by name, with the reason', () => {
    const rgba = new Uint8Array(64 * 64 * 4).map((_, i) => (i * 7) & 255);
    const jpg = new Uint8Array(jpeg.encode({ data: rgba, width: 64, height: 64 }, 90).data);
    const png = img('rgb16.png');
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty.jpg', new Uint8Array(0), /^empty\.jpg: empty file \(0 bytes\)$/],
      ['half.jpg', jpg.subarray(0, 200), /^half\.jpg: corrupt or truncated JPEG/],
      ['cut.png', png.subarray(0, 60), /^cut\.png: corrupt or truncated PNG/],
      ['header-only.png', png.subarray(0, 20), /^header-only\.png: corrupt or truncated PNG: no IHDR/],
      ['notes.jpg', new TextEncoder().encode('shopping list: eggs, milk'), /^notes\.jpg: not an image: .* \(it is text\), whatever its name says$/],
      ['weights.png', writeSafetensors(new Map([['w', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]])), /safetensors/],
      ['huge.png', img('huge.png'), /^huge\.png: image is 20000 x 20000 pixels \(400 megapixels\), over the 100 megapixel limit/],
      ['anim.gif', img('anim.gif'), /^anim\.gif: GIF images are read by the studio but not by the command line/],
    ];
    // A JPEG whose frame header claims 30000 x 30000 (jpeg-js would try to allocate 3.6 GB).
    const lying = jpg.slice();
    for (let i = 2; i < lying.length - 8; i++) if (lying[i] === 0xff && lying[i + 1] === 0xc0) { lying[i + 5] = 0x75; lying[i + 6] = 0x30; lying[i + 7] = 0x75; lying[i + 8] = 0x30; break; }
    cases.push(['lying.jpg', lying, /^lying\.jpg: image is 30000 x 30000 pixels/]);
    // Scrambled entropy data: a clean decoder error, not a crash.
    const scrambled = jpg.slice();
    for (let i = jpg.length - 400; i < jpg.length - 2; i++) scrambled[i] = 0xff;
    cases.push(['scrambled.jpg', scrambled, /^scrambled\.jpg: /]);
    for (const [name, bytes, want] of cases) {
      let msg = '';
      try { decodeImage(bytes, name); } catch (e) { expect(e, name).toBeInstanceOf(VptError); msg = (e as Error).message; }
      if (name === 'scrambled.jpg' && !msg) continue; // jpeg-js may decode garbage as grey: still no crash
      expect(msg, name).toMatch(want);
    }
  });
});

describe('bad folders', () => {
  function tree(spec: Record<string, Uint8Array | string>): string {
    const root = mkdtempSync(join(tmpdir(), 'vpt-bad-'));
    for (const [path, content] of Object.entries(spec)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), content);
    }
    return root;
  }
  const px = img('one-pixel.png');

  it('empty, one class, one class of one image, only junk: specific errors or a usable set', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'vpt-empty-'));
    expect(problem(() => readLayout(empty))).toBe(`${empty}: the folder is empty`);
    const junk = tree({ 'readme.txt': 'x', 'a.png': px });
    expect(problem(() => readLayout(junk))).toMatch(/no images inside class sub-folders \(expected one sub-folder per class; 2 file\(s\) elsewhere\)/);
    const one = tree({ 'cat/1.png': px, 'cat/2.png': px });
    expect(await problemAsync(() => loadTrainData(one, pre, { valSplit: 0.1, seed: 1 }))).toMatch(/needs at least 2 class folders, found 1/);
    const single = tree({ 'cat/1.png': px, 'cat/2.png': px, 'dog/1.png': px });
    const d = await loadTrainData(single, pre, { valSplit: 0.5, seed: 1 });
    expect(d.classes).toEqual(['cat', 'dog']);
    expect(d.train.filter((e) => e.label === 1)).toHaveLength(1); // the lone dog trains; it cannot also validate
    const broken = tree({ 'cat/1.png': px, 'dog/bad.png': 'no' });
    expect(await problemAsync(() => loadTrainData(broken, pre, { valSplit: 0, seed: 1 }))).toMatch(/class folder\(s\) without usable training images: dog/);
  });

  it('200 classes; unicode, emoji, spaces and HTML kept as names; hidden and system files reported', () => {
    const spec: Record<string, Uint8Array> = {};
    for (let i = 0; i < 200; i++) spec[`c${String(i).padStart(3, '0')}/x.png`] = px;
    const many = readLayout(tree(spec));
    expect(many.splits.train!.classes).toHaveLength(200);
    const odd = ['Ärger 😀', 'naïve café', '<img src=x onerror=alert(1)>', '  padded  '];
    const root = tree({
      ...Object.fromEntries(odd.map((c) => [`${c}/1.png`, px])),
      '.DS_Store': 'x', 'Ärger 😀/Thumbs.db': 'x', '__MACOSX/Ärger 😀/._1.png': 'x', 'naïve café/.hidden.png': px, 'desktop.ini': 'x',
    });
    const l = readLayout(root);
    expect(l.splits.train!.classes).toEqual(['<img src=x onerror=alert(1)>', 'naïve café', 'padded', 'Ärger 😀'].sort());
    const why = Object.fromEntries(l.skipped.map((s) => [s.path, s.reason]));
    expect(why).toMatchObject({
      '.DS_Store': 'hidden or system file', 'Ärger 😀/Thumbs.db': 'hidden or system file',
      '__MACOSX/Ärger 😀/._1.png': 'hidden or system file', 'naïve café/.hidden.png': 'hidden or system file', 'desktop.ini': 'hidden or system file',
    });
  });

  it('class names equal after trimming: the second folder is reported, not merged silently', () => {
    const l = readLayout(tree({ 'cat/1.png': px, 'cat /2.png': px, 'dog/1.png': px, '   /3.png': px }));
    expect(l.splits.train!.classes).toEqual(['cat', 'dog']);
    expect(l.splits.train!.files.map((f) => f.path)).toEqual(['cat/1.png', 'dog/1.png']);
    expect(l.skipped).toContainEqual({ path: 'cat /2.png', reason: 'class folder "cat " is the same as "cat" after trimming spaces: rename one' });
    expect(l.skipped).toContainEqual({ path: '   /3.png', reason: 'class folder name is blank' });
  });

  it('symlink loops, broken links and absurd nesting end the walk with a report', () => {
    const root = tree({ 'a/1.png': px, 'b/1.png': px });
    symlinkSync(join(root, 'a'), join(root, 'a', 'loop'));
    symlinkSync(join(root, 'nowhere'), join(root, 'b', 'dangling.png'));
    const deep = join(root, 'b', ...Array.from({ length: 20 }, (_, i) => `d${i}`));
    mkdirSync(deep, { recursive: true });
    copyFileSync(join(IMG, 'one-pixel.png'), join(deep, 'deep.png'));
    const l = readLayout(root);
    expect(l.splits.train!.files.map((f) => f.path)).toEqual(['a/1.png', 'b/1.png']);
    const why = l.skipped.map((s) => `${s.path}: ${s.reason}`).join('\n');
    expect(why).toMatch(/^a\/loop\/: a link to a folder already read/m);
    expect(why).toMatch(/^b\/dangling\.png: could not be read \(ENOENT: broken link\)/m);
    expect(why).toMatch(/d14\/d15\/: nested more than 16 folders deep: not read/);
  });
});

describe('bad weight and task files', () => {
  const cfg = { imageSize: 32, patchSize: 8, hiddenSize: 8, numLayers: 2, numHeads: 2, mlpDim: 16, layerNormEps: 1e-6 };

  it('a task holding NaN or Inf is refused, naming the tensor', () => {
    const s = initVpt(cfg, 'deep', 2, 3, new Rng(1));
    s.prompts[5] = NaN;
    expect(problem(() => readTask(writeTask(fromVptState(s), { classes: ['a', 'b', 'c'] }), 'nan.vpt.safetensors'))).toMatch(/^nan\.vpt\.safetensors: tensor "prompts" holds NaN at index 5: the task file is damaged/);
    const linear = writeSafetensors(new Map([
      ['head.weight', { dtype: 'F32', shape: [2, 8], data: new Float32Array(16).fill(Infinity) }],
      ['head.bias', { dtype: 'F32', shape: [2], data: new Float32Array(2) }],
    ]), { format: 'vpt-task', protocol: 'linear', classes: '["a","b"]' });
    expect(problem(() => readTask(linear, 'inf.safetensors'))).toMatch(/tensor "head\.weight" holds Infinity/);
  });

  it('an npz entry declaring more bytes than deflate can produce is refused before allocating', async () => {
    const z = zip([['a.npy', npy([4], new Float32Array(4))]], true);
    // Patch the central directory's uncompressed size to 3.9 GB.
    const dv = new DataView(z.buffer, z.byteOffset);
    for (let i = z.length - 22; i >= 0; i--) if (dv.getUint32(i, true) === 0x02014b50) { dv.setUint32(i + 24, 0xfffffff0, true); break; }
    expect(await problemAsync(() => readNpz(z, 'bomb.npz'))).toMatch(/^bomb\.npz: a\.npy: declares 4294967280 bytes inflated from only \d+: not a real deflate stream/);
  });
});

describe('exported file names', () => {
  it('are safe on every desktop system whatever the task or class name', async () => {
    const { safeFileName } = await import('../../src/core/io/file-name');
    const cases: [string, string][] = [
      ['letters-abcd', 'letters-abcd'],
      ['<img src=x onerror=alert(1)>', 'img src_x onerror_alert_1'],
      ['../../etc/passwd', 'etc_passwd'],
      ['C:\\Windows\\system32', 'C_Windows_system32'],
      ['.hidden', 'hidden'],
      ['CON', '_CON'],
      ['nul.txt', '_nul.txt'],
      ['trailing dots...', 'trailing dots'],
      ['tab\there\nnewline\u0000nul', 'tab_here_newline_nul'],
      ['Ärger 😀 café', 'Ärger _ café'],
      ['   ', 'task'],
      ['😀', 'task'],
      ['ｆｕｌｌｗｉｄｔｈ', 'fullwidth'],
    ];
    for (const [name, want] of cases) expect(safeFileName(name), name).toBe(want);
    expect([...safeFileName('é'.repeat(500))]).toHaveLength(80);
    expect(safeFileName('a/'.repeat(100)).length).toBeLessThanOrEqual(80);
  });
});

describe('large folders stream', () => {
  it('past the pixel budget images are decoded again per batch: same training, no pixels held', async () => {
    const { tinyModel, NOTMNIST } = await import('./helpers');
    const { resolveTrainConfig } = await import('../../src/core/train/config');
    const { train } = await import('../../src/core/train/loop');
    const { model, pre: p, b } = await tinyModel();
    const root = mkdtempSync(join(tmpdir(), 'vpt-stream-'));
    for (const c of ['A', 'B']) {
      mkdirSync(join(root, c));
      const { readdirSync } = await import('node:fs');
      for (const f of readdirSync(join(NOTMNIST, 'train', c)).slice(0, 6)) copyFileSync(join(NOTMNIST, 'train', c, f), join(root, c, f));
    }
    const kept = await loadTrainData(root, p, { valSplit: 0.25, seed: 1 });
    const streamed = await loadTrainData(root, p, { valSplit: 0.25, seed: 1 }, 0);
    expect(kept.train.every((e) => 'data' in e.image)).toBe(true);
    expect(streamed.train.every((e) => 'load' in e.image && !('data' in e.image))).toBe(true);
    const cfg = resolveTrainConfig({ epochs: 2, batch: 4, protocol: { name: 'vpt-shallow', n: 1 }, seed: 2, augment: true });
    const a = await train(model, p, kept, cfg, b.fingerprint);
    const s = await train(model, p, streamed, cfg, b.fingerprint);
    expect(Array.from(s.state.params.get('prompts')!.data)).toEqual(Array.from(a.state.params.get('prompts')!.data));
    expect(s.history.map((h) => h.valAccuracy)).toEqual(a.history.map((h) => h.valAccuracy));
  });

  it('20 000 files: the layout lists them all, decoding keeps at most 4 in flight', async () => {
    const { detectLayout } = await import('../../src/data/layout');
    const { mapLimit } = await import('../../src/worker/decode');
    const paths = Array.from({ length: 20_000 }, (_, i) => `class ${i % 200}/img${i}.jpg`);
    const l = detectLayout(paths);
    expect(l.splits.train!.classes).toHaveLength(200);
    expect(l.splits.train!.files).toHaveLength(20_000);
    let inFlight = 0, most = 0;
    const out = await mapLimit(paths, 4, async (_, i) => { inFlight++; most = Math.max(most, inFlight); await null; inFlight--; return i; });
    expect(most).toBe(4);
    expect(out[19_999]).toBe(19_999);
  });
});
