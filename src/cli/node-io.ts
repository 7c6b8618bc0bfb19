/** Node-side file access for the CLI: backbones, tasks, images and folders. */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { VptError } from '../core/errors';
import { applyOrientation } from '../core/image/orient';
import { decodeJpegWasm, jpegWasmReady, jpegWasmUnavailable } from './jpeg-wasm';
import { rgbaToRgb, type RgbImage } from '../core/image/resize';
import { formatTitle, MAX_PIXELS, sniffImage } from '../core/image/sniff';
import type { Preprocessing } from '../core/vit/config';
import { loadBackbone, type Backbone } from '../core/vit/load';
import { detectLayout, type Layout, type Skipped } from '../data/layout';
import { keepsPixels, PIXEL_BUDGET_BYTES, type Example } from '../core/train/evaluate';
import { prepare } from '../core/image/preprocess';

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

/**
 * PNG or JPEG (recognised by content, not extension) to RGB pixels, turned
 * the right way up by its EXIF orientation. Size is checked from the header
 * before decoding, so a huge image never allocates its pixels.
 */
export function decodeImage(bytes: Uint8Array, file: string): RgbImage {
  const head = sniffImage(bytes, file);
  if (head.format !== 'png' && head.format !== 'jpeg') {
    throw new VptError(file, `${formatTitle(head.format)} images are read by the studio but not by the command line: convert it to PNG or JPEG`);
  }
  try {
    if (head.format === 'png') {
      // 16-bit channels are scaled to 8 bits, palettes and grey expanded to RGBA by pngjs.
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return rgbaToRgb(png.data, png.width, png.height);
    }
    // mozjpeg in WebAssembly where it takes the file (src/cli/jpeg-wasm.ts), else jpeg-js: CMYK and
    // YCCK (Adobe) JPEGs, truncated ones, and every error message; its limits bound what a hostile header
    // can allocate. RGB straight from jpeg-js: an RGBA buffer and a conversion pass cost a quarter of its decode.
    const fast = decodeJpegWasm(bytes);
    if (fast) return applyOrientation(fast, head.orientation);
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
    return applyOrientation({ width: img.width, height: img.height, data: img.data }, head.orientation);
  } catch (e) {
    throw new VptError(file, `corrupt or truncated ${formatTitle(head.format)} (${(e as Error).message})`);
  }
}

/**
 * Every file under `dir` (relative paths, '/'-separated), following symlinks
 * once; what is not read (a link back into a folder already read, nesting
 * past 16 levels, an entry that cannot be read) is reported, not dropped.
 */
export function walk(dir: string): { files: string[]; skipped: Skipped[] } {
  if (!existsSync(dir)) throw new VptError(dir, 'no such folder');
  if (!statSync(dir).isDirectory()) throw new VptError(dir, 'is not a folder');
  const files: string[] = [];
  const skipped: Skipped[] = [];
  const seen = new Set<string>();
  const rel = (p: string) => relative(dir, p).split(sep).join('/');
  const visit = (d: string, depth: number) => {
    const real = realpathSync(d);
    if (seen.has(real)) { skipped.push({ path: rel(d) + '/', reason: 'a link to a folder already read (symlink loop?): not followed' }); return; }
    if (depth > 16) { skipped.push({ path: rel(d) + '/', reason: 'nested more than 16 folders deep: not read' }); return; }
    seen.add(real);
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      let st;
      try { st = statSync(full); } catch (e) {
        skipped.push({ path: rel(full), reason: `could not be read (${(e as NodeJS.ErrnoException).code ?? 'error'}${(e as NodeJS.ErrnoException).code === 'ENOENT' ? ': broken link' : ''})` });
        continue;
      }
      if (st.isDirectory()) visit(full, depth + 1);
      else if (st.isFile()) files.push(rel(full));
    }
  };
  visit(dir, 0);
  return { files, skipped };
}

export interface LoadedSplit { classes: string[]; examples: Example[]; skipped: Skipped[] }

export function readLayout(dir: string): Layout {
  const { files, skipped } = walk(dir);
  if (!files.length) throw new VptError(dir, skipped.length ? `holds no readable files (${skipped[0].path}: ${skipped[0].reason})` : 'the folder is empty');
  const layout = detectLayout(files);
  layout.skipped.unshift(...skipped);
  if (!Object.keys(layout.splits).length) throw new VptError(dir, `no images inside class sub-folders (expected one sub-folder per class; ${files.length} file(s) elsewhere)`);
  return layout;
}

/** Images being decoded at once while a split loads. */
const LOAD_IN_FLIGHT = 16;

/** Reads, decodes and prepares one image: `path` on disk, `name` as errors call it. */
export type ImageDecoder = (path: string, name: string, pre: Preprocessing) => Promise<RgbImage>;

let warnedJpeg = false;

/** On the calling thread. */
export const decodeFile: ImageDecoder = async (path, name, pre) => {
  await jpegWasmReady();
  // Said once, by the main thread (each decode thread would say it again).
  if (!warnedJpeg && isMainThread && jpegWasmUnavailable()) {
    warnedJpeg = true;
    process.stderr.write(`warning: ${jpegWasmUnavailable()}\n`);
  }
  return prepare(decodeImage(readBytes(path), name), pre);
};

/**
 * Decode and resize one split's images with the decoder `decoderFor` picks
 * for their number (the CLI's pool of threads: decode-pool.ts; this thread by
 * default); unreadable ones are reported in `skipped`. Past `pixelBudget`
 * bytes of prepared pixels only the path is kept and the image is decoded
 * again when a batch needs it.
 */
export async function loadExamples(dir: string, layout: Layout, split: 'train' | 'val' | 'test', p: Preprocessing, pixelBudget = PIXEL_BUDGET_BYTES,
  decoderFor: (n: number) => ImageDecoder = () => decodeFile): Promise<LoadedSplit> {
  const set = layout.splits[split];
  if (!set) throw new VptError(dir, `has no "${split}" split`);
  const keep = keepsPixels(set.files.length, p.size, pixelBudget);
  const decode = decoderFor(set.files.length);
  const one = async (f: (typeof set.files)[number]) => {
    const load = () => decode(join(dir, f.path), f.path, p);
    try {
      const img = await load();
      return { example: { image: keep ? img : { load }, label: f.label, name: f.path } };
    } catch (e) {
      return { skipped: { path: f.path, reason: e instanceof VptError ? e.problem : String(e) } };
    }
  };
  // In file order, at most LOAD_IN_FLIGHT at a time: enough to keep 8 decode threads busy, and
  // few enough that a streamed dataset's pixels (dropped once an image is known to decode) never
  // pile up, as they would if every decode were started at once.
  const results: Awaited<ReturnType<typeof one>>[] = new Array(set.files.length);
  let next = 0;
  const lane = async () => { while (next < set.files.length) { const i = next++; results[i] = await one(set.files[i]); } };
  await Promise.all(Array.from({ length: Math.min(LOAD_IN_FLIGHT, set.files.length) }, lane));
  const examples: Example[] = [];
  const skipped: Skipped[] = [];
  for (const r of results) {
    if (r.example) examples.push(r.example);
    else skipped.push(r.skipped!);
  }
  return { classes: set.classes, examples, skipped };
}

export function taskNameFromPath(path: string): string {
  return basename(path).replace(/\.vpt\.safetensors$|\.safetensors$/, '');
}
