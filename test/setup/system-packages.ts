import { spawnSync } from 'node:child_process';
import { mayInstall, missingPackages, SYSTEM_PACKAGES } from '../helpers/system-packages';

// Vitest's global setup: once per `npm test`, before any test file loads,
// install the Debian packages the tests need and this machine lacks. One
// line says what it does; apt-get's own output is shown only on failure.

const APT_TIMEOUT_MS = 20 * 60_000;

function apt(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync('apt-get', args, {
    encoding: 'utf8',
    timeout: APT_TIMEOUT_MS,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return { ok: r.status === 0, output: `${r.error?.message ?? ''}${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

export default function setup(): void {
  const missing = missingPackages();
  if (missing.length === 0) return;
  const debs = [...new Set(missing.flatMap((n) => SYSTEM_PACKAGES[n].apt))];
  if (!mayInstall()) {
    const why = process.getuid?.() === 0 ? 'SWARM_TEST_APT=0' : 'not root';
    process.stdout.write(
      `test setup: ${debs.join(', ')} missing and ${why}, so not installed; the tests that need them are skipped\n`,
    );
    return;
  }
  process.stdout.write(`test setup: installing ${debs.join(', ')} with apt-get\n`);
  const update = apt(['update', '-qq']);
  const install = update.ok ? apt(['install', '-y', '-qq', '--no-install-recommends', ...debs]) : update;
  if (!install.ok)
    process.stdout.write(
      `test setup: apt-get failed; the tests that need ${debs.join(', ')} will fail:\n${install.output.slice(-4000)}\n`,
    );
}
