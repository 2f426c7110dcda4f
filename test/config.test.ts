import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compileConfig, DEMO_CONFIG, interpolate, loadConfig } from '../lib/config/config';
import { configFields, configMarkdown } from '../lib/config/docs';
import { configJsonSchema } from '../lib/config/json-schema';
import { ConfigError } from '../lib/errors';
import { parseBytes, parseDurationMs } from '../lib/duration';

const SWARMCTL = path.join(__dirname, '..', 'scripts', 'swarmctl');

describe('durations and sizes', () => {
  it('reads every unit and refuses nonsense', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('30s')).toBe(30_000);
    expect(parseDurationMs('5m')).toBe(300_000);
    expect(parseDurationMs('2h')).toBe(7_200_000);
    expect(parseDurationMs(1500)).toBe(1500);
    expect(parseDurationMs('5 minutes')).toBeNull();
    expect(parseDurationMs(-1)).toBeNull();
    expect(parseBytes('4G')).toBe(4 * 1024 ** 3);
    expect(parseBytes('512M')).toBe(512 * 1024 ** 2);
    expect(parseBytes('lots')).toBeNull();
  });
});

describe('config', () => {
  it('compiles the demo with defaults and absolute paths', () => {
    const c = loadConfig(DEMO_CONFIG, {});
    expect(c.name).toBe('demo');
    expect(path.isAbsolute(c.stateDir)).toBe(true);
    const job = c.jobs.optimizer;
    expect(job?.restart.delayMs).toBe(1000);
    expect(job?.progress?.staleAfterMs).toBe(8000);
    expect(job?.memoryLimitBytes).toBe(512 * 1024 ** 2);
    expect(c.queue.map((q) => q.id)).toContain('ETH-hangs');
  });

  it('names the file, the path inside it and what was expected', () => {
    const bad = { name: 'x', jobs: { optimizer: { command: ['node'], restart: { budget: 'five' } } } };
    try {
      compileConfig(bad, '/tmp/swarm.config.json', {});
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toContain('/tmp/swarm.config.json');
      expect(msg).toContain('jobs.optimizer.restart.budget');
      expect(msg).toMatch(/expected number/);
    }
  });

  it('refuses unknown placeholders, unknown lanes and duplicate task ids', () => {
    const bad = {
      name: 'x',
      jobs: { a: { command: ['node'], args: ['${nope}'], lane: 'gpu9' } },
      queue: [{ job: 'a', id: 't' }, { job: 'a', id: 't' }, { job: 'missing' }],
    };
    const err = (() => {
      try {
        compileConfig(bad, 'c.json', {});
      } catch (e) {
        return e as ConfigError;
      }
      return null;
    })();
    const paths = err?.issues.map((i) => i.path) ?? [];
    expect(paths).toContain('jobs.a.args.0');
    expect(paths).toContain('jobs.a.lane');
    expect(paths).toContain('queue.1.id');
    expect(paths).toContain('queue.2.job');
  });

  const issuesOf = (raw: unknown): { path: string; message: string }[] => {
    try {
      compileConfig(raw, 'c.json', {});
    } catch (e) {
      return (e as ConfigError).issues;
    }
    return [];
  };

  it('refuses a duration past 24 days, and a staleAfter under two ticks, naming the field', () => {
    const long = issuesOf({
      name: 'x',
      jobs: { j: { command: ['node'], maxRuntime: '25d', restart: { window: 2_147_483_648 } } },
    });
    expect(long).toEqual(
      expect.arrayContaining([
        { path: 'jobs.j.maxRuntime', message: expect.stringMatching(/at most "24d"/) },
        { path: 'jobs.j.restart.window', message: expect.stringMatching(/at most "24d"/) },
      ]),
    );
    expect(issuesOf({ name: 'x', jobs: { j: { command: ['node'], maxRuntime: '24d' } } })).toEqual([]);
    const fast = issuesOf({
      name: 'x',
      tick: '1s',
      watchdog: { staleAfter: '0ms' },
      jobs: { j: { command: ['node'], progress: { staleAfter: '1500ms' } } },
    });
    expect(fast).toEqual(
      expect.arrayContaining([
        { path: 'watchdog.staleAfter', message: expect.stringMatching(/at least two ticks \(2000ms/) },
        { path: 'jobs.j.progress.staleAfter', message: expect.stringMatching(/at least two ticks/) },
      ]),
    );
    expect(
      issuesOf({
        name: 'x',
        tick: '1s',
        watchdog: { staleAfter: '2s' },
        jobs: { j: { command: ['node'], progress: { staleAfter: '2s' } } },
      }),
    ).toEqual([]);
  });

  it('refuses tasks whose worker id another worker already has', () => {
    const clashes = issuesOf({
      name: 'x',
      jobs: { j: { command: ['node'], replicas: 2 }, a: { command: ['node'] }, 'a-b': { command: ['node'] } },
      // j-1 is replica 1 of j; a + b-c and a-b + c are both a-b-c.
      queue: [
        { job: 'j', id: '1' },
        { job: 'j', id: '2' },
        { job: 'a', id: 'b-c' },
        { job: 'a-b', id: 'c' },
      ],
    });
    expect(clashes).toEqual([
      { path: 'queue.0.id', message: expect.stringMatching(/"j-1" is already replica 1 of job j's/) },
      { path: 'queue.3.id', message: expect.stringMatching(/"a-b-c" is already task b-c of job a's/) },
    ]);
  });

  it('interpolates ${taskId}, ${workerId} and ${attempt}', () => {
    expect(interpolate('runs/${taskId}/${workerId}-${attempt}.json', { taskId: 'T', workerId: 'W', attempt: 3 })).toBe(
      'runs/T/W-3.json',
    );
  });

  it('SWARM_STATE_DIR overrides the config', () => {
    const c = loadConfig(DEMO_CONFIG, { SWARM_STATE_DIR: '/tmp/elsewhere' });
    expect(c.stateDir).toBe('/tmp/elsewhere');
  });

  it('swarmctl exits 2 on a bad config, with the reason on stderr', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-cfg-'));
    const file = path.join(dir, 'swarm.config.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'x', jobs: { j: { command: 'node job.js' } } }));
    const r = spawnSync(SWARMCTL, ['query', '--json', '--config', file], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('jobs.j.command');
    fs.writeFileSync(file, '{ not json');
    const r2 = spawnSync(SWARMCTL, ['status', '--config', file], { encoding: 'utf8' });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/expected JSON/);
  });

  it('a refused submit, ack or restart leaves no state folder and no run behind', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-cfg-'));
    const file = path.join(dir, 'swarm.config.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ name: 'x', stateDir: 'state', jobs: { j: { command: ['node'], replicas: 1 } } }),
    );
    const ctl = (...args: string[]) => spawnSync(SWARMCTL, ['--config', file, ...args], { encoding: 'utf8' });
    for (const args of [
      ['submit', 'nope'],
      ['submit', 'j', '--id', '../x'],
      ['submit', 'j', '--id', '0'],
      ['ack', '7'],
      ['restart', 'j-0'],
    ]) {
      const r = ctl(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).not.toBe('');
    }
    expect(ctl('submit', 'j', '--id', '0').stderr).toMatch(/worker id "j-0" is already replica 0 of job j's/);
    expect(fs.existsSync(path.join(dir, 'state'))).toBe(false);
  });

  it('docs/swarm.config.schema.json is up to date (npm run gen:docs)', () => {
    const committed = fs.readFileSync(path.join(__dirname, '..', 'docs', 'swarm.config.schema.json'), 'utf8');
    expect(committed).toBe(configJsonSchema());
  });

  it('docs/config.md lists every field with its meaning, and is up to date (npm run gen:docs)', () => {
    const fields = configFields();
    expect(fields.filter((f) => !f.description).map((f) => f.path)).toEqual([]);
    for (const p of [
      'name',
      'tick',
      'lanes.<name>.slots',
      'jobs.<name>.restart.budget',
      'queue[].id',
      'postgres.passwordEnv',
    ]) {
      expect(fields.map((f) => f.path)).toContain(p);
    }
    expect(fields.find((f) => f.path === 'jobs.<name>.restart.budget')).toMatchObject({
      type: 'integer ≥ 0',
      default: '`5`',
    });
    expect(fields.find((f) => f.path === 'tick')).toMatchObject({ type: 'duration', default: '`"1s"`' });
    const committed = fs.readFileSync(path.join(__dirname, '..', 'docs', 'config.md'), 'utf8');
    expect(committed).toBe(configMarkdown());
  });
});
