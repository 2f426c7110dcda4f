import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ensureDir, writeJsonAtomic } from './atomic-file';
import { StateFileError, UnsafeFileError } from './errors';
import { readRegular } from './safe-file';

// State files are snapshots for readers (query, the watchdog); the event log
// is the record. A missing or corrupt file is reported, never fatal.

export type ReadResult<T> = { ok: true; value: T } | { ok: false; error: StateFileError };

export interface StateStore {
  write(file: string, value: unknown): void;
  /**
   * Writes like write(), but first checks that the file is still the one this
   * store wrote last: if someone deleted or corrupted it in between, says so.
   */
  writeChecked(file: string, value: unknown, schema: z.ZodType): 'missing' | 'corrupt' | null;
  read<S extends z.ZodType>(file: string, schema: S): ReadResult<z.output<S>>;
}

export class JsonStateStore implements StateStore {
  constructor(readonly dir: string) {
    ensureDir(dir);
  }

  path(file: string): string {
    return path.join(this.dir, file);
  }

  private readonly lastWritten = new Map<string, { size: number; mtimeMs: number; ino: number }>();

  write(file: string, value: unknown): void {
    writeJsonAtomic(this.path(file), value, { durable: false });
  }

  writeChecked(file: string, value: unknown, schema: z.ZodType): 'missing' | 'corrupt' | null {
    const full = this.path(file);
    let problem: 'missing' | 'corrupt' | null = null;
    // Checked at the last moment before the rename, so a deletion during the write is still seen.
    const check = () => {
      const last = this.lastWritten.get(file);
      if (!last) {
        // First write by this process: a file a predecessor left corrupt is still a repair; a missing one is a first start.
        const r = readStateFile(full, schema);
        if (!r.ok && r.error.reason === 'corrupt') problem = 'corrupt';
        return;
      }
      let st: fs.Stats;
      try {
        st = fs.lstatSync(full);
      } catch {
        problem = 'missing';
        return;
      }
      if (st.size !== last.size || st.mtimeMs !== last.mtimeMs || st.ino !== last.ino) {
        const r = readStateFile(full, schema);
        if (!r.ok) problem = r.error.reason;
      }
    };
    writeJsonAtomic(full, value, { beforeRename: check, durable: false });
    const st = fs.statSync(full);
    this.lastWritten.set(file, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
    return problem;
  }

  read<S extends z.ZodType>(file: string, schema: S): ReadResult<z.output<S>> {
    return readStateFile(this.path(file), schema);
  }
}

export function readStateFile<S extends z.ZodType>(file: string, schema: S): ReadResult<z.output<S>> {
  let text: string | null;
  try {
    // A symlink, a FIFO or a huge file planted in its place is corrupt: repaired, never followed or waited on.
    text = readRegular(file);
  } catch (err) {
    const detail = err instanceof UnsafeFileError ? err.why : ((err as NodeJS.ErrnoException).code ?? String(err));
    return { ok: false, error: new StateFileError(file, 'corrupt', detail) };
  }
  if (text === null) return { ok: false, error: new StateFileError(file, 'missing', 'ENOENT') };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: new StateFileError(file, 'corrupt', `not JSON: ${(err as Error).message}`) };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return {
      ok: false,
      error: new StateFileError(file, 'corrupt', `${first?.path.join('.') || '(root)'}: ${first?.message}`),
    };
  }
  return { ok: true, value: parsed.data };
}
