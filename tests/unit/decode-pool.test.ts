/**
 * The CLI's decode threads (src/cli/decode-pool.ts): the same pixels as
 * decoding on the calling thread, in order, the same errors for bad files,
 * no answer lost when the pool closes, and the CLI's output unchanged by
 * --threads.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodePool } from '../../src/cli/decode-pool';
import { decodeFile, loadExamples, readLayout } from '../../src/cli/node-io';
import { VptError } from '../../src/core/errors';
import type { RgbImage } from '../../src/core/image/resize';
import type { Preprocessing } from '../../src/core/vit/config';
import { NOTMNIST, TINY } from './helpers';

const pre: Preprocessing = { size: 32, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resize: 'crop', source: 'flags' };
let dir: string;
const pool = new DecodePool(2);
afterAll(() => pool.close());

/** A photo-like JPEG (gradients and texture), so the decoder does real work. */
function photo(w: number, h: number, seed: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = (y * w + x) * 4;
    rgba[o] = (128 + 100 * Math.sin((x + seed * 37) / 30) + ((x * 7 + y * 13) % 23)) & 255;
    rgba[o + 1] = (128 + 100 * Math.cos((y + seed * 11) / 20)) & 255;
    rgba[o + 2] = (x * y + seed) & 255;
    rgba[o + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width: w, height: h }, 85).data;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vpt-decode-'));
  for (const cls of ['A', 'B']) {
    mkdirSync(join(dir, cls));
    for (const f of readdirSync(join(NOTMNIST, 'train', cls)).slice(0, 6)) copyFileSync(join(NOTMNIST, 'train', cls, f), join(dir, cls, f));
    for (let i = 0; i < 3; i++) writeFileSync(join(dir, cls, `photo${i}.jpg`), photo(300 + 40 * i, 200 + 30 * i, i));
  }
  writeFileSync(join(dir, 'A', 'truncated.jpg'), photo(120, 90, 9).subarray(0, 400));
  writeFileSync(join(dir, 'B', 'gif-really.png'), new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0, 0, 0, 0]));
});

const same = (a: RgbImage, b: RgbImage) => a.width === b.width && a.height === b.height && Buffer.from(a.data).equals(Buffer.from(b.data));

async function outcome(f: () => Promise<RgbImage>): Promise<RgbImage | string> {
  try { return await f(); } catch (e) {
    expect(e).toBeInstanceOf(VptError); // rebuilt on this side of the thread boundary
    return (e as VptError).message;
  }
}

describe('decode pool', () => {
  it('decodes PNGs and JPEGs to the same bytes as this thread, and fails bad files with the same message', async () => {
    const files = ['A', 'B'].flatMap((c) => readdirSync(join(dir, c)).map((f) => `${c}/${f}`));
    expect(files.length).toBe(2 * 9 + 2);
    const here = await Promise.all(files.map((f) => outcome(() => decodeFile(join(dir, f), f, pre))));
    const there = await Promise.all(files.map((f) => outcome(() => pool.decode(join(dir, f), f, pre))));
    for (let i = 0; i < files.length; i++) {
      const [a, b] = [here[i], there[i]];
      if (typeof a === 'string') expect(b, files[i]).toBe(a);
      else expect(typeof b !== 'string' && same(a, b), files[i]).toBe(true);
    }
    expect(here.filter((r) => typeof r === 'string')).toEqual([
      expect.stringMatching(/^A\/truncated\.jpg: corrupt or truncated JPEG/),
      expect.stringMatching(/^B\/gif-really\.png: GIF images are read by the studio but not by the command line/),
    ]);
  });

  it('loads a split in file order with the same examples and skipped files as this thread', async () => {
    const layout = readLayout(dir);
    const a = await loadExamples(dir, layout, 'train', pre);
    const b = await loadExamples(dir, layout, 'train', pre, undefined, () => pool.decode);
    expect(b.examples.map((e) => [e.name, e.label])).toEqual(a.examples.map((e) => [e.name, e.label]));
    expect(b.skipped).toEqual(a.skipped);
    b.examples.forEach((e, i) => expect(same(e.image as RgbImage, a.examples[i].image as RgbImage)).toBe(true));
    // Past the pixel budget the pool checks each file once and keeps only a loader, which decodes again.
    const streamed = await loadExamples(dir, layout, 'train', pre, 0, () => pool.decode);
    const first = streamed.examples[0].image;
    expect('load' in first).toBe(true);
    expect(same(await (first as { load(): Promise<RgbImage> }).load(), a.examples[0].image as RgbImage)).toBe(true);
  });

  it('keeps at most 16 images in flight while a split loads, in file order', async () => {
    const big = mkdtempSync(join(tmpdir(), 'vpt-inflight-'));
    for (const cls of ['A', 'B']) {
      mkdirSync(join(big, cls));
      for (let i = 0; i < 20; i++) copyFileSync(join(dir, 'A', 'photo0.jpg'), join(big, cls, `${String(i).padStart(2, '0')}.jpg`));
    }
    let now = 0, most = 0;
    const slow = async (path: string, name: string, p: Preprocessing) => {
      most = Math.max(most, ++now);
      await new Promise((r) => setTimeout(r, 2));
      now--;
      return decodeFile(path, name, p);
    };
    const set = await loadExamples(big, readLayout(big), 'train', pre, undefined, () => slow);
    expect(set.examples.map((e) => e.name)).toEqual(['A', 'B'].flatMap((c) => Array.from({ length: 20 }, (_, i) => `${c}/${String(i).padStart(2, '0')}.jpg`)));
    expect(most).toBe(16);
  });

  it('refuses queued and new work once closed, with a message', async () => {
    const p = new DecodePool(1);
    const f = join(dir, 'A', 'photo2.jpg');
    const jobs = [1, 2, 3].map(() => p.decode(f, 'A/photo2.jpg', pre).then(() => 'done', (e: Error) => e.message));
    await p.close();
    expect(await Promise.all(jobs)).toEqual(Array(3).fill('the decode pool is closed'));
    await expect(p.decode(f, 'x', pre)).rejects.toThrow(/closed/);
  });
});

describe('vpt predict --threads', () => {
  const BIN = resolve(__dirname, '../../bin/vpt.js');
  const run = (images: string, threads: string) => spawnSync(process.execPath, [BIN, 'predict', '--backbone', TINY, '--images', images, '--json', '--threads', threads], { encoding: 'utf8', timeout: 120_000 });

  it('classifies a folder of images the same on one thread and on two', () => {
    const good = join(dir, 'good');
    mkdirSync(good);
    for (const f of readdirSync(join(dir, 'B')).filter((f) => f !== 'gif-really.png')) copyFileSync(join(dir, 'B', f), join(good, f));
    const one = run(good, '1'), two = run(good, '2');
    expect(one.status, one.stderr).toBe(0);
    expect(two.status, two.stderr).toBe(0);
    const [a, b] = [JSON.parse(one.stdout), JSON.parse(two.stdout)];
    expect(a.inputs.length).toBe(9); // past the pool's threshold: two threads really decode
    expect(b).toEqual(a);
  });

  it('names a bad image the same way on two threads', () => {
    const one = run(join(dir, 'B'), '1'), two = run(join(dir, 'B'), '2');
    expect(one.status).toBe(1);
    expect(two.status).toBe(1);
    expect(two.stderr).toBe(one.stderr);
    expect(two.stderr).toMatch(/gif-really\.png: GIF images are read by the studio but not by the command line/);
  });
});
