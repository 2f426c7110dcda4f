import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file';
import { PACKAGE_ROOT } from '../package-root';

// The batch script of a slurm lane's worker is the worker shim itself. sbatch
// copies the script to the compute node and runs it from SLURM's spool
// folder, where the shim's own requires (../scripts/…) do not resolve, so it
// is submitted as one self-contained file: the shim bundled with esbuild,
// behind a #! line that runs it with the node on the compute node's PATH.

const SHIM_SOURCE = path.join(PACKAGE_ROOT, 'lib', 'worker-shim.js');

let bundled: string | null = null;

/** Writes the bundled shim under the state folder (once per process) and returns its path for sbatch. */
export function slurmShimScript(stateDir: string): string {
  const file = path.join(stateDir, 'slurm', 'worker-shim.js');
  if (bundled === null) {
    // esbuild is loaded here, on a slurm lane's first launch, not with the sentry: it would cost
    // every sentry ~4 MiB that only slurm lanes use.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on use, as said above
    const { buildSync } = require('esbuild') as typeof import('esbuild');
    const r = buildSync({
      entryPoints: [SHIM_SOURCE],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node18',
      write: false,
      logLevel: 'silent',
      banner: { js: '#!/usr/bin/env node' },
    });
    bundled = r.outputFiles[0]?.text ?? '';
    if (!bundled) throw new Error(`esbuild produced nothing for ${SHIM_SOURCE}`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let current: string | null = null;
  try {
    current = fs.readFileSync(file, 'utf8');
  } catch {
    // not written yet
  }
  if (current !== bundled) writeFileAtomic(file, bundled);
  return file;
}
