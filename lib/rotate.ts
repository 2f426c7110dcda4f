import path from 'node:path';
import { PACKAGE_ROOT } from './package-root';
import { regularSize } from './safe-file';

// The typed face of scripts/rotate-files.js, shared with the worker shim:
// files that only grow (the session heartbeat, a worker's output log) are
// rotated by size, keeping `logs.keep` generations.

// eslint-disable-next-line @typescript-eslint/no-require-imports
const mod = require(path.join(PACKAGE_ROOT, 'scripts', 'rotate-files.js')) as {
  rotate(file: string, keep: number): void;
};

/** Rotates FILE once it has reached `maxBytes`; returns whether it did. */
export function rotateIfOver(file: string, maxBytes: number, keep: number): boolean {
  const size = regularSize(file);
  if (size === null || size < maxBytes) return false;
  mod.rotate(file, keep);
  return true;
}
