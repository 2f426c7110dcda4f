import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

// The Debian packages some tests need beyond Node. The test run's global
// setup installs the missing ones with apt-get when it runs as root, so
// `npm install && npm test` is the whole set-up on a fresh Debian machine;
// as another user it cannot, and the tests that need them are skipped, each
// with the reason. A later issue adds its package here, in one line.

export interface SystemPackage {
  /** What it gives the tests, for the skip reason. */
  gives: string;
  /** The Debian packages that provide it. */
  apt: string[];
  present(): boolean;
}

const POSTGRES_BIN = '/usr/lib/postgresql';

export const SYSTEM_PACKAGES = {
  postgresql: {
    gives: 'a real PostgreSQL server',
    apt: ['postgresql'],
    present: () =>
      fs.existsSync(POSTGRES_BIN) &&
      fs.readdirSync(POSTGRES_BIN).some((v) => fs.existsSync(path.join(POSTGRES_BIN, v, 'bin', 'postgres'))),
  },
  'python3-optuna': {
    gives: 'a real Optuna study',
    apt: ['python3-optuna'],
    present: () =>
      spawnSync('/usr/bin/python3', ['-c', 'import optuna'], { stdio: 'ignore', timeout: 60_000 }).status === 0,
  },
  prometheus: {
    gives: 'a real Prometheus server and promtool',
    apt: ['prometheus'],
    present: () =>
      spawnSync('prometheus', ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0 &&
      spawnSync('promtool', ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0,
  },
  chromium: {
    gives: 'a real browser (Chromium, driven by playwright-core)',
    apt: ['chromium'],
    present: () => spawnSync('/usr/bin/chromium', ['--version'], { stdio: 'ignore', timeout: 60_000 }).status === 0,
  },
  slurm: {
    gives: 'a real SLURM cluster (slurmctld, slurmd, munge)',
    apt: ['slurm-wlm', 'munge'],
    present: () =>
      ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch', '/usr/bin/squeue'].every((f) =>
        fs.existsSync(f),
      ),
  },
  'stress-ng': {
    gives: 'a machine made busy on purpose (stress-ng)',
    apt: ['stress-ng'],
    present: () => spawnSync('stress-ng', ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0,
  },
} satisfies Record<string, SystemPackage>;

export type PackageName = keyof typeof SYSTEM_PACKAGES;

/** Set SWARM_TEST_APT=0 to keep the test run from installing anything, even as root. */
export function mayInstall(): boolean {
  return process.getuid?.() === 0 && process.env.SWARM_TEST_APT !== '0';
}

export function missingPackages(
  names: readonly PackageName[] = Object.keys(SYSTEM_PACKAGES) as PackageName[],
): PackageName[] {
  return names.filter((n) => !SYSTEM_PACKAGES[n].present());
}

/**
 * What a test that needs these packages should do: run (null), or be skipped
 * with a one-line reason. Where the run could have installed them (root),
 * a missing package is a failure, not a skip: a green run must not hide a
 * set-up step that did not happen.
 */
export function skipReason(names: readonly PackageName[]): string | null {
  const missing = missingPackages(names);
  if (missing.length === 0) return null;
  const what = missing
    .map((n) => `${SYSTEM_PACKAGES[n].gives} (apt-get install ${SYSTEM_PACKAGES[n].apt.join(' ')})`)
    .join(' and ');
  if (mayInstall()) throw new Error(`needs ${what}, which the test setup failed to install: see its output above`);
  return `needs ${what}; run the tests as root and they install it`;
}
