/**
 * One decode thread of the CLI's pool (decode-pool.ts): reads, decodes and
 * prepares one image per message, and answers with its pixels or with the
 * problem a VptError names (the pool turns it back into one).
 */
import { parentPort } from 'node:worker_threads';
import { VptError } from '../core/errors';
import type { Preprocessing } from '../core/vit/config';
import { decodeFile } from './node-io';

export interface DecodeJob { id: number; path: string; name: string; pre: Preprocessing }
export type DecodeReply =
  | { id: number; ok: true; width: number; height: number; data: Uint8Array }
  | { id: number; ok: false; source: string; problem: string };

parentPort!.on('message', async (job: DecodeJob) => {
  let reply: DecodeReply;
  try {
    const img = await decodeFile(job.path, job.name, job.pre);
    reply = { id: job.id, ok: true, width: img.width, height: img.height, data: img.data };
  } catch (e) {
    reply = e instanceof VptError
      ? { id: job.id, ok: false, source: e.source, problem: e.problem }
      : { id: job.id, ok: false, source: job.name, problem: String((e as Error)?.message ?? e) };
  }
  parentPort!.postMessage(reply);
});
