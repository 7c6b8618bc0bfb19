/**
 * Turn what the user dropped or picked into (relative path, file) pairs.
 * Works on the FileSystemEntry API of drag and drop (typed structurally so
 * tests can pass fake trees) and on `<input webkitdirectory>` file lists.
 * A single dropped root folder is stripped, so `letters/A/x.png` becomes `A/x.png`.
 */
export interface EntryLike {
  name: string;
  fullPath: string;
  isFile: boolean;
  isDirectory: boolean;
}
export interface FileEntryLike extends EntryLike { file(ok: (f: File) => void, err?: (e: unknown) => void): void }
export interface DirEntryLike extends EntryLike { createReader(): { readEntries(ok: (es: EntryLike[]) => void, err?: (e: unknown) => void): void } }

export interface PickedFile { path: string; file: File }

const MAX_DEPTH = 32;

function readAll(dir: DirEntryLike): Promise<EntryLike[]> {
  const reader = dir.createReader();
  const out: EntryLike[] = [];
  // readEntries returns batches (100 in Chromium) until an empty one.
  return new Promise((resolve, reject) => {
    const next = () => reader.readEntries((batch) => {
      if (!batch.length) resolve(out);
      else { out.push(...batch); next(); }
    }, reject);
    next();
  });
}

export async function walkEntries(roots: EntryLike[], onError: (path: string, reason: string) => void = () => {}): Promise<PickedFile[]> {
  const files: PickedFile[] = [];
  const visit = async (e: EntryLike, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) { onError(e.fullPath, 'folder nesting too deep'); return; }
    if (e.isFile) {
      try {
        files.push({ path: e.fullPath.replace(/^\/+/, ''), file: await new Promise<File>((ok, err) => (e as FileEntryLike).file(ok, err)) });
      } catch {
        onError(e.fullPath, 'could not be read');
      }
    } else if (e.isDirectory) {
      for (const child of await readAll(e as DirEntryLike)) await visit(child, depth + 1);
    }
  };
  for (const r of roots) await visit(r, 0);
  return stripSingleRoot(files, roots.length === 1 && roots[0].isDirectory);
}

/** Files from `<input type="file" webkitdirectory>`: paths from webkitRelativePath. */
export function fromFileList(list: ArrayLike<File>): PickedFile[] {
  const files = Array.from(list, (f) => ({ path: (f.webkitRelativePath || f.name).replace(/^\/+/, ''), file: f }));
  return stripSingleRoot(files, true);
}

function stripSingleRoot(files: PickedFile[], single: boolean): PickedFile[] {
  if (!single || !files.length) return files;
  const first = files[0].path.split('/')[0];
  if (!files.every((f) => f.path.startsWith(first + '/'))) return files;
  return files.map((f) => ({ ...f, path: f.path.slice(first.length + 1) }));
}
