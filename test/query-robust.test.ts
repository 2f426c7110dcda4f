import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { SWARMCTL } from './helpers/swarm';
import { tmpDir } from './helpers/tmp';

// `query` is what a person runs when something is wrong, so it must answer
// then too: with swarm.db unreadable it prints what the state files know,
// names the problem, and exits 0.

describe('query on a damaged state folder', () => {
  it('a swarm.db that is not a database: the snapshot from the state files, the problem named', () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'swarm.config.json');
    fs.writeFileSync(cfg, JSON.stringify({ name: 'q', stateDir: 'state', jobs: { j: { command: ['true'] } } }));
    const ctl = (...args: string[]) => spawnSync(SWARMCTL, ['--config', cfg, ...args], { encoding: 'utf8' });
    expect(ctl('submit', 'j', '--id', 't1').status).toBe(0);
    const state = path.join(dir, 'state');
    const runId = (JSON.parse(ctl('query', '--json').stdout) as { run: { id: string } }).run.id;
    fs.writeFileSync(
      path.join(state, 'session_latest.json'),
      JSON.stringify({
        runId,
        status: 'running',
        startedAt: '2026-11-25T00:00:00.000Z',
        updatedAt: '2026-11-25T00:00:01.000Z',
        nextSteps: [],
        tasks: { queued: 1, running: 0, completed: 0, failed: 0, quarantined: 0 },
      }),
      { mode: 0o600 },
    );
    for (const f of ['swarm.db-wal', 'swarm.db-shm']) fs.rmSync(path.join(state, f), { force: true });
    fs.writeFileSync(path.join(state, 'swarm.db'), Buffer.alloc(8192, 0x5a));
    const r = ctl('query', '--json');
    expect(r.status).toBe(0);
    const snap = JSON.parse(r.stdout) as {
      run: { id: string };
      tasks: { queued: number };
      problems: string[];
      swarm: string;
    };
    expect(snap).toMatchObject({ swarm: 'q', run: { id: runId }, tasks: { queued: 1 } });
    expect(snap.problems[0]).toMatch(/cannot read the event log .*swarm\.db: file is not a database/);
  });

  it('a full disk: query needs no write of its own, names what it cannot read, and answers', () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'swarm.config.json');
    fs.writeFileSync(cfg, JSON.stringify({ name: 'q', stateDir: 'state', jobs: { j: { command: ['true'] } } }));
    expect(spawnSync(SWARMCTL, ['--config', cfg, 'submit', 'j', '--id', 't1'], { encoding: 'utf8' }).status).toBe(0);
    fs.rmSync(path.join(dir, 'state', 'clock_anchor.json'), { force: true });
    // RLIMIT_FSIZE 0: any write that grows a file fails, as on a full disk.
    const r = spawnSync('prlimit', ['--fsize=0', SWARMCTL, '--config', cfg, 'query', '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const snap = JSON.parse(r.stdout) as { swarm: string; problems: string[] };
    expect(snap.swarm).toBe('q');
    // SQLite cannot make the shared-memory file it reads a WAL database with: said, and the rest still printed.
    expect(snap.problems[0]).toMatch(/cannot read the event log .*swarm\.db: disk I\/O error/);
  });
});
