import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DAEMON_STATE_FILES } from '../lib/state-files';
import { ROOT, SWARMCTL } from './helpers/swarm';
import { tmpDir } from './helpers/tmp';

// Found by the hour-long soak: `swarmctl query --json` of a swarm that had
// run a few hundred workers (~220 KB), read through a pipe, came back cut
// short with exit code 0, because swarmctl exited before Node had written
// the rest to the pipe. A script reading the JSON would get half of it.

const WORKERS = 2000;

function bigSwarm(): { config: string } {
  const dir = tmpDir('swarm-cliout-');
  const config = path.join(dir, 'swarm.config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      name: 'cliout',
      stateDir: 'state',
      lanes: { cpu: { kind: 'cpu', slots: 1 } },
      jobs: { j: { command: ['node', '-e', '0'] } },
    }),
  );
  // A submit makes the state folder and the run; the sentry's state file then lists many workers.
  expect(spawnSync(SWARMCTL, ['--config', config, 'submit', 'j', '--id', 'a'], { encoding: 'utf8' }).status).toBe(0);
  const now = new Date().toISOString();
  const views = Array.from({ length: WORKERS }, (_, i) => ({
    id: `j-t${i}`,
    job: 'j',
    taskId: `t${i}`,
    lane: 'cpu',
    status: 'completed',
    pid: null,
    attempt: 1,
    restarts: 0,
    startedAt: now,
    lastProgressAt: null,
    progressAgeMs: null,
    lastOutputAt: null,
    cpuPct: null,
    memBytes: null,
    gpus: [],
    progress: null,
    slurm: null,
  }));
  const header = { daemon: 'worker-sentry', pid: 1, runId: 'r', lifecycle: 'stopped', startedAt: now, lastTickAt: now };
  fs.writeFileSync(
    path.join(dir, 'state', DAEMON_STATE_FILES['worker-sentry']),
    JSON.stringify({ ...header, tickMs: 1000, ticks: 1, restarts: 0, views, incidents: [] }),
    { mode: 0o600 },
  );
  return { config };
}

describe('swarmctl output through a pipe', () => {
  it('query --json of a large swarm comes out whole, every time', () => {
    const { config } = bigSwarm();
    for (let i = 0; i < 5; i++) {
      const r = spawnSync(SWARMCTL, ['--config', config, 'query', '--json'], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      expect(r.status).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(500_000);
      expect((JSON.parse(r.stdout) as { workers: unknown[] }).workers).toHaveLength(WORKERS);
    }
  });
});

describe("swarmctl's own log", () => {
  it('goes to stderr, never into what a command prints on stdout', () => {
    // A warning from `up --json` (PM2 slow to answer, say) must not land in its JSON.
    const code = `require(${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'logger.js'))}).cliLogger().warn({ app: 'x' }, 'pm2 call slow');`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr)).toMatchObject({ name: 'swarmctl', msg: 'pm2 call slow', app: 'x' });
  });
});
