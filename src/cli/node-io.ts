/** Node-side file access for the CLI: backbones, tasks, images and folders. */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { VptError } from '../core/errors';
import { prepare } from '../core/image/preprocess';
import { rgbaToRgb, type RgbImage } from '../core/image/resize';
import type { Preprocessing } from '../core/vit/config';
import { loadBackbone, type Backbone } from '../core/vit/load';
import { detectLayout, type Layout, type Skipped } from '../data/layout';
import type { Example } from '../core/train/evaluate';

export function readBytes(path: string): Uint8Array {
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new VptError(path, 'is a folder, expected a file');
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    if (e instanceof VptError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new VptError(path, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((e as Error).message));
  }
}

function readJsonIf(path: string): unknown | undefined {
  if (!existsSync(path)) return undefined;
  try { return JSON.parse(readFileSync(path, 'utf8')); } catch { throw new VptError(path, 'is not valid JSON'); }
}

/** A `.safetensors` (config.json beside it, or inferred), a Hugging Face folder, or a `.npz`. */
export async function loadBackboneFromPath(path: string): Promise<Backbone> {
  let file = path;
  if (existsSync(path) && statSync(path).isDirectory()) {
    file = join(path, 'model.safetensors');
    if (!existsSync(file)) throw new VptError(path, 'folder has no model.safetensors (Hugging Face layout expected)');
  }
  const dir = dirname(file);
  const isNpz = file.toLowerCase().endsWith('.npz');
  return loadBackbone({
    name: file,
    bytes: readBytes(file),
    config: isNpz ? undefined : readJsonIf(join(dir, 'config.json')),
    preprocessor: readJsonIf(join(dir, 'preprocessor_config.json')),
  });
}

/** PNG or JPEG (recognised by content, not extension) to RGB pixels. */
export function decodeImage(bytes: Uint8Array, file: string): RgbImage {
  if (bytes.byteLength === 0) throw new VptError(file, 'empty file (0 bytes)');
  const isPng = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  try {
    if (isPng) {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return rgbaToRgb(png.data, png.width, png.height);
    }
    if (isJpeg) {
      // Bound what a hostile header can make us allocate.
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 100, maxMemoryUsageInMB: 1024 });
      return rgbaToRgb(img.data, img.width, img.height);
    }
  } catch (e) {
    throw new VptError(file, `corrupt or truncated ${isPng ? 'PNG' : 'JPEG'} (${(e as Error).message})`);
  }
  throw new VptError(file, 'not a PNG or JPEG image (by content)');
}

/** Every file under `dir` (relative paths, '/'-separated), following symlinks once. */
export function walk(dir: string): string[] {
  if (!existsSync(dir)) throw new VptError(dir, 'no such folder');
  if (!statSync(dir).isDirectory()) throw new VptError(dir, 'is not a folder');
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (d: string, depth: number) => {
    const real = realpathSync(d);
    if (seen.has(real) || depth > 16) return; // symlink loops and absurd nesting stop here
    seen.add(real);
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      let st;
      try { st = statSync(full); } catch { continue; }
      if (st.isDirectory()) visit(full, depth + 1);
      else if (st.isFile()) out.push(relative(dir, full).split(sep).join('/'));
    }
  };
  visit(dir, 0);
  return out;
}

export interface LoadedSplit { classes: string[]; examples: Example[]; skipped: Skipped[] }

export function readLayout(dir: string): Layout {
  const layout = detectLayout(walk(dir));
  if (!Object.keys(layout.splits).length) throw new VptError(dir, 'no images found in class sub-folders');
  return layout;
}

/** Decode and resize one split's images; unreadable ones are reported in `skipped`. */
export function loadExamples(dir: string, layout: Layout, split: 'train' | 'val' | 'test', p: Preprocessing): LoadedSplit {
  const set = layout.splits[split];
  if (!set) throw new VptError(dir, `has no "${split}" split`);
  const skipped: Skipped[] = [];
  const examples: Example[] = [];
  for (const f of set.files) {
    try {
      examples.push({ image: prepare(decodeImage(readBytes(join(dir, f.path)), f.path), p), label: f.label, name: f.path });
    } catch (e) {
      skipped.push({ path: f.path, reason: e instanceof VptError ? e.problem : String(e) });
    }
  }
  return { classes: set.classes, examples, skipped };
}

export function taskNameFromPath(path: string): string {
  return basename(path).replace(/\.vpt\.safetensors$|\.safetensors$/, '');
}
