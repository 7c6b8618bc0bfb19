/** The `vpt` command line, run as a user runs it (a child process). */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/core/io/safetensors';
import { caseTensor, FIX, NOTMNIST, readCase, relErr, TINY, writeOfficialTask } from './helpers';

const BIN = resolve(__dirname, '../../bin/vpt.js');
function vpt(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let tmp: string;
let data: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vpt-cli-'));
  data = join(tmp, 'letters');
  for (const cls of ['A', 'B', 'C']) {
    mkdirSync(join(data, cls), { recursive: true });
    for (const f of readdirSync(join(NOTMNIST, 'train', cls)).slice(0, 8)) copyFileSync(join(NOTMNIST, 'train', cls, f), join(data, cls, f));
  }
  writeFileSync(join(data, 'notes.txt'), 'not an image');
  writeFileSync(join(data, 'A', 'broken.png'), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
});

describe('vpt CLI', () => {
  it('inspect prints JSON for a backbone, the same fingerprint from npz and safetensors', () => {
    const a = vpt('inspect', join(FIX, 'backbone.npz'));
    const b = vpt('inspect', join(FIX, 'backbone.safetensors'));
    expect(a.code).toBe(0);
    const ja = JSON.parse(a.out), jb = JSON.parse(b.out);
    expect(ja.kind).toBe('backbone');
    expect(ja.format).toBe('npz');
    expect(jb.format).toBe('hf');
    expect(ja.fingerprint).toBe(jb.fingerprint);
    expect(jb.tensors.length).toBe(4 + 16 * 3 + 2);
  });

  it('predict --tensors reproduces the official VPT-deep logits from an official-named task', () => {
    const c = readCase();
    const task = writeOfficialTask(c, join(tmp, 'official.safetensors'));
    const r = vpt('predict', '--backbone', join(FIX, 'backbone.npz'), '--task', task, '--tensors', join(FIX, 'case.safetensors'), '--key', 'input.images_nchw', '--json');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/no backbone fingerprint/);
    const j = JSON.parse(r.out);
    expect(j.inputs).toEqual([0, 1, 2]);
    expect(relErr(j.logits.flat(), caseTensor(c, 'deep.logits').data)).toBeLessThan(1e-4);
    expect(j.probabilities[0].reduce((s: number, v: number) => s + v, 0)).toBeCloseTo(1, 5);
    const plain = JSON.parse(vpt('predict', '--backbone', join(FIX, 'backbone.safetensors'), '--tensors', join(FIX, 'case.safetensors'), '--key', 'input.images_nchw', '--json', '--backend', 'cpu').out);
    expect(relErr(plain.logits.flat(), caseTensor(c, 'plain.cls_feature').data)).toBeLessThan(1e-4);
  });

  it('train, resume, eval and predict on a folder of PNGs', () => {
    const out = join(tmp, 'letters.vpt.safetensors');
    const t = vpt('train', '--backbone', TINY, '--data', data, '--out', out, '--epochs', '1', '--batch', '8', '--prompts', '2', '--resize', 'direct', '--json');
    expect(t.code, t.err).toBe(0);
    expect(t.err).toMatch(/skipped: .*notes\.txt: not an image/);
    expect(t.err).toMatch(/skipped: .*broken\.png: corrupt or truncated PNG/);
    expect(t.err).toMatch(/epoch 1\/1 .* img\/s/);
    const summary = JSON.parse(t.out);
    expect(summary.classes).toEqual(['A', 'B', 'C']);
    expect([summary.features_cached, summary.embeddings_cached]).toEqual([false, true]); // VPT-deep, no augmentation
    // wasm on every core of this machine (up to 8), said in the summary and the log.
    const cores = Math.min(availableParallelism(), 8);
    expect(summary.backend).toBe(`wasm (${cores} thread${cores === 1 ? '' : 's'})`);
    expect(t.err).toContain(`backend ${summary.backend}`);
    expect(summary.lr_applied).toBeCloseTo(1.0 * 8 / 256);
    const r = vpt('train', '--backbone', TINY, '--data', data, '--out', out, '--resume', join(tmp, 'letters.ckpt.safetensors'), '--epochs', '2', '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).history.map((h: { epoch: number }) => h.epoch)).toEqual([1, 2]);
    const info = JSON.parse(vpt('inspect', out).out);
    expect(info.kind).toBe('task');
    expect(info.metadata.format).toBe('vpt-task');
    expect(JSON.parse(info.metadata.training).epochs_run).toBe(2);
    const e = vpt('eval', '--backbone', TINY, '--task', out, '--data', data, '--json');
    expect(e.code, e.err).toBe(0);
    const ev = JSON.parse(e.out);
    expect(ev.count).toBe(24);
    expect(ev.confusion.classes).toEqual(['A', 'B', 'C']);
    expect(ev.confusion.matrix.flat().reduce((s: number, v: number) => s + v, 0)).toBe(24);
    expect(Object.keys(ev.per_class)).toEqual(['A', 'B', 'C']);
    const p = vpt('predict', '--backbone', TINY, '--task', out, '--images', join(data, 'B'), join(data, 'C'), '--json', '--csv', join(tmp, 'p.csv'));
    expect(p.code, p.err).toBe(0);
    const pj = JSON.parse(p.out);
    expect(pj.inputs.length).toBe(16);
    expect(pj.classes).toEqual(['A', 'B', 'C']);
    expect(pj.predictions.every((c: string) => ['A', 'B', 'C'].includes(c))).toBe(true);
    expect(readFileSync(join(tmp, 'p.csv'), 'utf8').split('\n')[0]).toBe('input,prediction,"A","B","C"');
  });

  it('compare --json prints one object per protocol; train --protocol writes that protocol\'s task', () => {
    const csv = join(tmp, 'cmp.csv');
    const r = vpt('compare', '--backbone', TINY, '--data', data, '--protocols', 'linear,bias', '--epochs', '1', '--batch', '8', '--seeds', '1,2', '--tasks', '10', '--csv', csv, '--json');
    expect(r.err).toMatch(/\[4\/4\] Bias/);
    expect(r.code).toBe(0);
    const rows = r.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => x.protocol)).toEqual(['linear', 'bias']);
    for (const x of rows) {
      for (const k of ['accuracy', 'tuned_params', 'file_bytes', 'seconds']) expect(typeof x[k]).toBe('number');
      expect(x.runs).toBe(2);
      expect(x.seeds.map((s: { seed: number }) => s.seed)).toEqual([1, 2]);
    }
    expect(rows[0].tuned_params).toBe(3 * 64 + 3);
    expect(rows[1].tuned_params).toBeGreaterThan(rows[0].tuned_params);
    expect(rows[0].stored_multiple).toBeCloseTo(1 + (10 * rows[0].tuned_params) / rows[0].backbone_params, 6);
    expect(readFileSync(csv, 'utf8').split('\n')[0]).toMatch(/^protocol,title,runs,accuracy,accuracy_std,tuned_params,file_bytes,stored_for_10_tasks_x_backbone/);
    const out = join(tmp, 'lora.vpt.safetensors');
    // A memory budget too small for the batch: passes of a few images, said in the log.
    const t = vpt('train', '--backbone', TINY, '--data', data, '--out', out, '--protocol', 'lora-2', '--epochs', '1', '--batch', '8', '--memory', '0.03');
    expect(t.code).toBe(0);
    expect(t.err).toMatch(/memory: passes of [1-7] images \(30\.7 MiB for the whole step\)/);
    const info = JSON.parse(vpt('inspect', out).out);
    expect(info.kind).toBe('task');
    expect(info.protocol).toBe('lora-2');
    expect(info.tensors.map((x: { name: string }) => x.name)).toContain('lora.3.v.B');
    const img = join(data, 'A', readdirSync(join(data, 'A')).find((f) => f !== 'broken.png')!);
    const p = vpt('predict', '--backbone', TINY, '--task', out, '--images', img, '--json');
    expect(p.code).toBe(0);
    expect(JSON.parse(p.out).predictions.length).toBeGreaterThan(0);
    expect(vpt('compare', '--backbone', TINY, '--data', data, '--protocols', 'linear,sidetune').err).toMatch(/unknown protocol "sidetune"/);
  });

  it('errors: one line naming the file, exit 1 for bad input and 2 for usage, never a stack', () => {
    const missing = vpt('inspect', join(tmp, 'nope.safetensors'));
    expect(missing.code).toBe(1);
    expect(missing.err.trim()).toBe(`error: ${join(tmp, 'nope.safetensors')}: no such file`);
    const trunc = join(tmp, 'trunc.safetensors');
    writeFileSync(trunc, readFileSync(join(FIX, 'backbone.safetensors')).subarray(0, 5000));
    const t = vpt('inspect', trunc);
    expect(t.code).toBe(1);
    expect(t.err).toMatch(new RegExp(`^error: ${trunc.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*truncated`));
    expect(t.err).not.toMatch(/\n\s+at /);
    expect(vpt('train', '--bogus').code).toBe(2);
    expect(vpt('train', '--backbone', TINY).code).toBe(2);
    const lr = vpt('train', '--backbone', TINY, '--data', data, '--out', join(tmp, 'x.safetensors'), '--lr', 'fast');
    expect(lr.code).toBe(2);
    expect(lr.err).toMatch(/--lr expects a number/);
    const mem = vpt('train', '--backbone', TINY, '--data', data, '--out', join(tmp, 'x.safetensors'), '--memory', '0');
    expect(mem.code).toBe(2);
    expect(mem.err).toMatch(/^error: --memory expects GiB for a training step, more than 0 and at most 1024, got "0"/m);
    const wrong = vpt('eval', '--backbone', join(FIX, 'backbone.npz'), '--task', join(tmp, 'letters.vpt.safetensors'), '--data', data);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/letters\.vpt\.safetensors: task was made for a backbone with hidden size 64/);
    const one = join(tmp, 'one');
    mkdirSync(join(one, 'A'), { recursive: true });
    copyFileSync(join(data, 'A', readdirSync(join(data, 'A'))[0]), join(one, 'A', 'x.png'));
    const oc = vpt('train', '--backbone', TINY, '--data', one, '--out', join(tmp, 'o.safetensors'));
    expect(oc.code).toBe(1);
    expect(oc.err).toMatch(/needs at least 2 class folders, found 1/);
    writeFileSync(join(tmp, 'empty.safetensors'), writeSafetensors(new Map()));
  });
});
