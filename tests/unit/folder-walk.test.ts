import { describe, expect, it } from 'vitest';
import { fromFileList, walkEntries, type EntryLike } from '../../src/data/folder-walk';
import { detectLayout } from '../../src/data/layout';

/** A fake FileSystemEntry tree: objects are folders, strings are file contents. */
type Tree = { [name: string]: Tree | string };

function entry(name: string, node: Tree | string, parent: string, batch = 2): EntryLike {
  const fullPath = `${parent}/${name}`;
  if (typeof node === 'string') {
    return { name, fullPath, isFile: true, isDirectory: false, file: (ok: (f: File) => void) => ok(new File([node], name)) } as EntryLike;
  }
  const kids = Object.entries(node).map(([n, v]) => entry(n, v, fullPath, batch));
  return {
    name, fullPath, isFile: false, isDirectory: true,
    createReader: () => { let i = 0; return { readEntries: (ok: (e: EntryLike[]) => void) => { const b = kids.slice(i, i + batch); i += batch; ok(b); } }; },
  } as EntryLike;
}

describe('folder walk', () => {
  it('walks nested folders in batches, strips the single dropped root, keeps unicode names', async () => {
    const root = entry('letters', {
      A: { '1.png': 'a', '2.png': 'b', '3.png': 'c', deeper: { '4.png': 'd' } },
      'Ünï 🐱': { 'x.jpg': 'e' },
      '.DS_Store': 'junk', 'README.md': 'hi',
    }, '');
    const files = await walkEntries([root]);
    expect(files.map((f) => f.path).sort()).toEqual(['.DS_Store', 'A/1.png', 'A/2.png', 'A/3.png', 'A/deeper/4.png', 'README.md', 'Ünï 🐱/x.jpg']);
    expect(await files.find((f) => f.path === 'A/2.png')!.file.text()).toBe('b');
    const layout = detectLayout(files.map((f) => f.path));
    expect(layout.splits.train!.classes).toEqual(['A', 'Ünï 🐱']);
    expect(layout.skipped.map((s) => s.path).sort()).toEqual(['.DS_Store', 'README.md']);
  });

  it('several dropped class folders keep their names; splits are recognised', async () => {
    const files = await walkEntries([entry('cat', { 'a.png': '1' }, ''), entry('dog', { 'b.png': '2' }, '')]);
    expect(files.map((f) => f.path)).toEqual(['cat/a.png', 'dog/b.png']);
    const split = await walkEntries([entry('ds', { train: { cat: { 'a.png': '1' } }, test: { cat: { 'b.png': '2' } } }, '')]);
    expect(detectLayout(split.map((f) => f.path)).kind).toBe('split');
  });

  it('webkitdirectory file lists lose the picked folder name', () => {
    const mk = (p: string) => Object.assign(new File(['x'], p.split('/').pop()!), { webkitRelativePath: p });
    expect(fromFileList([mk('data/A/1.png'), mk('data/B/2.png')]).map((f) => f.path)).toEqual(['A/1.png', 'B/2.png']);
  });

  it('reports unreadable files and absurd nesting instead of failing', async () => {
    let deep: Tree = { 'z.png': 'z' };
    for (let i = 0; i < 40; i++) deep = { [`d${i}`]: deep };
    const bad = { name: 'bad.png', fullPath: '/bad.png', isFile: true, isDirectory: false, file: (_ok: unknown, err: (e: unknown) => void) => err(new Error('gone')) } as unknown as EntryLike;
    const errors: string[] = [];
    const files = await walkEntries([bad, entry('deep', deep, '')], (p, r) => errors.push(`${p}: ${r}`));
    expect(files).toEqual([]);
    expect(errors[0]).toBe('/bad.png: could not be read');
    expect(errors[1]).toMatch(/nesting too deep/);
  });
});
