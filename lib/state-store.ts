import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ensureDir, writeJsonAtomic } from './atomic-file';
import { StateFileError } from './errors';

// State files are snapshots for readers (query, the watchdog); the event log
// is the record. A missing or corrupt file is reported, never fatal.

export type ReadResult<T> = { ok: true; value: T } | { ok: false; error: StateFileError };

export interface StateStore {
  write(file: string, value: unknown): void;
  read<S extends z.ZodType>(file: string, schema: S): ReadResult<z.output<S>>;
}

export class JsonStateStore implements StateStore {
  constructor(readonly dir: string) {
    ensureDir(dir);
  }

  path(file: string): string {
    return path.join(this.dir, file);
  }

  write(file: string, value: unknown): void {
    writeJsonAtomic(this.path(file), value);
  }

  read<S extends z.ZodType>(file: string, schema: S): ReadResult<z.output<S>> {
    return readStateFile(this.path(file), schema);
  }
}

export function readStateFile<S extends z.ZodType>(file: string, schema: S): ReadResult<z.output<S>> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, error: new StateFileError(file, code === 'ENOENT' ? 'missing' : 'corrupt', code ?? String(err)) };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: new StateFileError(file, 'corrupt', `not JSON: ${(err as Error).message}`) };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, error: new StateFileError(file, 'corrupt', `${first?.path.join('.') || '(root)'}: ${first?.message}`) };
  }
  return { ok: true, value: parsed.data };
}
