import fs from 'node:fs';
import path from 'node:path';
import { openRegular, readRegular } from './safe-file';

// The hash chain proves a row was not edited in place, but not that the log
// was not cut short, or rehashed from an edited row onwards by someone who
// can write swarm.db. The head anchor is the chain's head (seq and hash)
// kept outside swarm.db, in a 0600 file of its own: `verify-log` checks the
// log still reaches that seq with that hash.
//
// The anchor names the last row committed before the current append, so it
// only ever names a committed row, and trails the log by at most the last
// batch: cutting off that batch alone goes unseen, anything more does not.
// It is rewritten in place, at a fixed size, under the event log's write
// lock, so it never goes backwards and costs one pwrite per append.

export const ANCHOR_FILE = 'chain_head.json';
const RECORD_BYTES = 128;

export interface ChainHead {
  seq: number;
  hash: string;
}

export class ChainAnchor {
  private fd: number | null = null;
  private written = -1;

  constructor(readonly file: string) {}

  static in(stateDir: string): ChainAnchor {
    return new ChainAnchor(path.join(stateDir, ANCHOR_FILE));
  }

  /** Must run under the event log's write lock. */
  write(head: ChainHead): void {
    if (head.seq <= this.written) return;
    this.fd ??= openRegular(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT);
    const record = JSON.stringify({ seq: head.seq, hash: head.hash }).padEnd(RECORD_BYTES - 1, ' ');
    fs.writeSync(this.fd, `${record}\n`, 0);
    this.written = head.seq;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * The anchor as last written, null if there is none; garbage in it is
 * reported, not ignored. It is rewritten in place while the swarm runs, and a
 * read that meets a write half done sees a torn record: read again, and only
 * garbage that stays is garbage.
 */
export function readAnchor(
  stateDir: string,
  read: (file: string, maxBytes: number) => string | null = readRegular,
): ChainHead | { error: string } | null {
  let r = readAnchorOnce(stateDir, read);
  for (let i = 0; i < TORN_READ_RETRIES && r !== null && 'error' in r; i++) r = readAnchorOnce(stateDir, read);
  return r;
}

const TORN_READ_RETRIES = 3;

function readAnchorOnce(
  stateDir: string,
  read: (file: string, maxBytes: number) => string | null,
): ChainHead | { error: string } | null {
  const file = path.join(stateDir, ANCHOR_FILE);
  let text: string | null;
  try {
    text = read(file, 4096);
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as { seq?: unknown; hash?: unknown };
    if (
      typeof v.seq === 'number' &&
      Number.isInteger(v.seq) &&
      typeof v.hash === 'string' &&
      /^[0-9a-f]{64}$/.test(v.hash)
    )
      return { seq: v.seq, hash: v.hash };
  } catch {
    // Falls through to the error below: an anchor that is not JSON was written by someone else.
  }
  return { error: `${file} holds no head anchor` };
}
