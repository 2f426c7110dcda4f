import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optimizerJob, SWARMCTL, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// The queue, submitted tasks, manual actions and the end of a run.

const swarm = new TestSwarm({
  name: 'runs',
  tick: '200ms',
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
  jobs: {
    opt: optimizerJob(['--trials', '4'], { progress: { staleAfter: '20s' } }),
    // Long enough to be seen mid-run; the second one writes a progress field Swarm cannot use.
    slow: optimizerJob(['--trials', '20', '--trial-ms', '300'], { progress: { staleAfter: '20s' } }),
    odd: optimizerJob(['--trials', '20', '--trial-ms', '300', '--bad-progress'], { progress: { staleAfter: '20s' } }),
  },
  queue: [1, 2, 3, 4, 5].map((i) => ({ job: 'opt', id: `q${i}` })),
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

describe('queue, manual actions and run completion', () => {
  it('runs 5 queued tasks on 2 slots, never more than 2 at once, in order', async () => {
    let maxRunning = 0;
    await waitFor(
      'all 5 completed',
      () => {
        const q = swarm.query();
        maxRunning = Math.max(maxRunning, q.tasks.running);
        const total = q.tasks.queued + q.tasks.running + q.tasks.completed;
        expect(total).toBe(5);
        return q.tasks.completed === 5;
      },
      90_000,
      100,
    );
    expect(maxRunning).toBeLessThanOrEqual(2);
    const order = swarm.events({ kind: 'task.started' }).map((e) => e.target);
    expect(order).toEqual(['task:q1', 'task:q2', 'task:q3', 'task:q4', 'task:q5']);
  });

  it('swarmctl submit adds a task while the swarm runs', async () => {
    const r = swarm.ctl('submit', 'opt', '--id', 'late', '--json', '--', '--trials', '2');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).id).toBe('late');
    const queued = await swarm.waitEvent('task.queued', 'task:late');
    expect(queued.source).toBe('swarmctl');
    await swarm.waitEvent('task.completed', 'task:late');
    const bad = swarm.ctl('submit', 'opt', '--id', '../../etc');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--id/);
    expect(swarm.ctl('submit', 'nope').status).toBe(2);
  });

  it('swarmctl restart and stop are granted, carried out and verified', async () => {
    swarm.ctl('submit', 'opt', '--id', 'manual', '--', '--trials', '120');
    const pid = await swarm.workerPid('opt-manual', 1);
    const r = swarm.ctl('restart', 'opt-manual', '--json');
    expect(r.status).toBe(0);
    const { actionId } = JSON.parse(r.stdout) as { actionId: number };
    const proposed = swarm
      .events({ kind: 'action.proposed', target: 'worker:opt-manual' })
      .find((e) => e.seq === actionId);
    expect(proposed?.source).toBe('swarmctl');
    const verified = await swarm.waitEvent('action.verified', 'worker:opt-manual', (e) => e.actionId === actionId);
    expect(verified.source).toBe('worker-sentry');
    expect(await swarm.workerPid('opt-manual', 2)).not.toBe(pid);
    const s = swarm.ctl('stop', 'opt-manual', '--json');
    const stopId = (JSON.parse(s.stdout) as { actionId: number }).actionId;
    await swarm.waitEvent('action.verified', 'worker:opt-manual', (e) => e.actionId === stopId);
    await waitFor('stopped', () => swarm.query().workers.find((w) => w.id === 'opt-manual')?.status === 'stopped');
  });

  it('shows what workers report of their progress: "3/20 best=… (in_progress)", an ETA, and ignores a bad field with one warning', async () => {
    expect(swarm.ctl('submit', 'slow', '--id', 'p1').status).toBe(0);
    expect(swarm.ctl('submit', 'odd', '--id', 'p2').status).toBe(0);
    const p1 = await waitFor(
      'p1 progress with a rate',
      () =>
        swarm
          .query()
          .workers.find((w) => w.id === 'slow-p1' && (w.progress?.iteration ?? 0) >= 3 && w.progress?.etaMs !== null)
          ?.progress,
      60_000,
      200,
    );
    expect(p1).toMatchObject({
      total: 20,
      status: 'in_progress',
      best: expect.any(Number),
      metric: expect.any(Number),
    });
    expect(p1.summary).toMatch(/^\d+\/20 metric=-?[\d.]+ best=-?[\d.]+ \(in_progress\)$/);
    expect(p1.etaMs).toBeGreaterThan(0);
    const status = swarm.ctl('status').stdout;
    expect(status).toMatch(/slow-p1 .*\d+\/20 metric=-?[\d.]+ best=-?[\d.]+ \(in_progress\), eta \d/);
    // total: "lots" is left out; the other fields still show.
    const p2 = await waitFor(
      'p2 progress',
      () => swarm.query().workers.find((w) => w.id === 'odd-p2' && (w.progress?.iteration ?? 0) >= 3)?.progress,
      60_000,
      200,
    );
    expect(p2).not.toHaveProperty('total');
    expect(p2.summary).toMatch(/^#\d+ metric=/);
    const log = fs.readFileSync(path.join(swarm.pm2Home, 'logs', 'worker-sentry-out.log'), 'utf8');
    expect(log.split('\n').filter((l) => l.includes('progress fields ignored') && l.includes('odd-p2'))).toHaveLength(
      1,
    );
  }, 90_000);

  it('query --json has every field CONTRACT names', () => {
    const q = swarm.query() as unknown as Record<string, unknown>;
    for (const k of [
      'schemaVersion',
      'generatedAt',
      'swarm',
      'run',
      'daemons',
      'workers',
      'tasks',
      'lanes',
      'utilization',
      'incidents',
      'escalations',
      'nextSteps',
      'events',
    ])
      expect(q).toHaveProperty(k);
    const s = swarm.query();
    expect(s.schemaVersion).toBe(1);
    expect(Object.keys(s.run ?? {})).toEqual(['id', 'status', 'startedAt', 'paused', 'degraded']);
    expect(Object.keys(s.daemons[0] ?? {})).toEqual([
      'name',
      'status',
      'pid',
      'restarts',
      'lastTickAt',
      'tickAgeMs',
      'configVersion',
    ]);
    expect(Object.keys(s.workers[0] ?? {}).sort()).toEqual(
      [
        'attempt',
        'cpuPct',
        'gpus',
        'id',
        'job',
        'lane',
        'lastOutputAt',
        'lastProgressAt',
        'memBytes',
        'pid',
        'progress',
        'progressAgeMs',
        'restarts',
        'slurm',
        'startedAt',
        'status',
        'taskId',
      ].sort(),
    );
    expect(Object.keys(s.tasks).sort()).toEqual(['completed', 'failed', 'queued', 'quarantined', 'running'].sort());
    expect(s.lanes).toEqual([{ name: 'cpu', kind: 'cpu', slots: 2, busy: expect.any(Number), starved: null }]);
    expect(s.utilization.cpuPct).toEqual(expect.any(Number));
    expect(Object.keys(s.utilization)).toEqual(['cpuPct', 'memPct', 'gpus']);
    expect(s.events.lastSeq).toBeGreaterThan(0);
  });

  it('events --follow prints new events as they come, and stops on SIGINT', async () => {
    const p = spawn(
      SWARMCTL,
      [
        '--config',
        swarm.configFile,
        'events',
        '--follow',
        '--json',
        '--kind',
        'task.queued',
        '--since',
        String(swarm.query().events.lastSeq),
      ],
      { env: swarm.env },
    );
    let out = '';
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    await waitFor('follower ready', () => p.pid);
    swarm.ctl('submit', 'opt', '--id', 'followed', '--', '--trials', '1');
    await waitFor('followed event printed', () => out.includes('task:followed'), 20_000);
    expect(JSON.parse(out.trim().split('\n')[0] ?? '{}')).toMatchObject({
      kind: 'task.queued',
      target: 'task:followed',
    });
    p.kill('SIGINT');
    expect(await exited).toBe(0);
    await swarm.waitEvent('task.completed', 'task:followed');
  });

  it('doctor checks PM2, the state folder, SQLite and nvidia-smi', () => {
    const r = swarm.ctl('doctor', '--json');
    const d = JSON.parse(r.stdout) as { ok: boolean; checks: { name: string; ok: boolean; detail: string }[] };
    expect(d.checks.map((c) => c.name)).toEqual([
      'config',
      'pm2',
      'state folder',
      'state files',
      'sqlite',
      'nvidia-smi',
    ]);
    expect(d.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.status).toBe(0);
  });

  it('pause and resume are recorded', () => {
    expect(swarm.ctl('pause').status).toBe(0);
    expect(swarm.query().run?.paused).toBe(true);
    const status = swarm.ctl('status');
    expect(status.stdout.split('\n')[0]).toMatch(/PAUSED/);
    expect(status.stdout).toMatch(/PROBLEMS\n  ! the swarm is PAUSED/);
    expect(swarm.ctl('resume').status).toBe(0);
    expect(swarm.query().run?.paused).toBe(false);
    expect(swarm.events({ kind: 'run.paused' })).toHaveLength(1);
  });

  it('events filters by kind, target, since and limit', () => {
    const all = swarm
      .ctl('events', '--json')
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; kind: string; target: string });
    expect(all.length).toBeGreaterThan(20);
    expect(all.every((e, i) => i === 0 || e.seq > (all[i - 1]?.seq ?? 0))).toBe(true);
    const launched = swarm
      .ctl('events', '--json', '--kind', 'worker.launched', '--target', 'worker:opt-q1')
      .stdout.trim()
      .split('\n');
    expect(launched).toHaveLength(1);
    const since = swarm
      .ctl('events', '--json', '--since', String(all[9]?.seq), '--limit', '3')
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number });
    expect(since.map((e) => e.seq)).toEqual([all[10]?.seq, all[11]?.seq, all[12]?.seq]);
    expect(swarm.ctl('events', '--limit', 'x').status).toBe(2);
  });

  it('a stopped task holds the run open; restarted, it resumes and the run completes', async () => {
    expect(
      swarm
        .events({ kind: 'run.completed' })
        .filter((e) => e.seq > (swarm.events({ kind: 'task.queued', target: 'task:manual' })[0]?.seq ?? 0)),
    ).toHaveLength(0);
    expect(swarm.query().tasks.queued).toBe(1);
    expect(swarm.ctl('restart', 'opt-manual').status).toBe(0);
    await swarm.waitEvent('task.completed', 'task:manual', () => true, 60_000);
    const done = await swarm.waitEvent(
      'run.completed',
      undefined,
      (e) => e.seq > (swarm.events({ kind: 'task.completed', target: 'task:manual' })[0]?.seq ?? 0),
    );
    expect(done.data.tasks).toMatchObject({ completed: 10, queued: 0, running: 0 });
    expect(swarm.query().run?.status).toBe('completed');
    // task.completed carries the final metric and best the worker reported.
    const p1 = swarm.events({ kind: 'task.completed', target: 'task:p1' })[0];
    expect(p1?.data).toMatchObject({
      metric: expect.any(Number),
      best: expect.any(Number),
      runtimeMs: expect.any(Number),
    });
    // swarmctl results: one row per task, as JSON, TSV or a table, and for one job.
    const rows = JSON.parse(swarm.ctl('results', '--json').stdout) as {
      task: string;
      status: string;
      metric: number | null;
      best: number | null;
      attempts: number;
      verify: unknown;
    }[];
    expect(rows.map((r) => r.task)).toEqual(expect.arrayContaining(['q1', 'q5', 'p1', 'p2', 'manual']));
    expect(rows.every((r) => r.status === 'completed' && r.attempts >= 1)).toBe(true);
    expect(rows.find((r) => r.task === 'p1')).toMatchObject({
      metric: p1?.data.metric,
      best: p1?.data.best,
      verify: null,
    });
    const tsv = swarm.ctl('results', '--tsv', '--job', 'slow').stdout.trim().split('\n');
    expect(tsv[0]).toBe('task\tjob\tstatus\tattempts\truntimeMs\tmetric\tbest\tverify');
    expect(tsv.slice(1).map((l) => l.split('\t')[0])).toEqual(['p1']);
    expect(swarm.ctl('results').stdout).toMatch(/^TASK +JOB +STATUS +ATTEMPTS +RUNTIMEMS +METRIC +BEST +VERIFY\n/);
    const bad = swarm.ctl('results', '--job', 'nope');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--job nope: the config .* has no such job/);
    // The end-of-run report, written at run.completed, 0600 in a 0700 folder, and printed by swarmctl report.
    const runId = String(swarm.query().run?.id);
    expect(done.data.report).toBe(path.join(swarm.stateDir, 'reports', `${runId}.md`));
    expect(fs.statSync(path.join(swarm.stateDir, 'reports')).mode & 0o777).toBe(0o700);
    for (const ext of ['md', 'json'])
      expect(fs.statSync(path.join(swarm.stateDir, 'reports', `${runId}.${ext}`)).mode & 0o777).toBe(0o600);
    const md = swarm.ctl('report');
    expect(md.status).toBe(0);
    expect(md.stdout).toBe(fs.readFileSync(String(done.data.report), 'utf8'));
    expect(md.stdout).toMatch(new RegExp(`^# Run ${runId} \\(swarm runs\\)\n`));
    expect(md.stdout).toMatch(/10 completed, 0 failed, 0 quarantined, 0 running, 0 queued\./);
    expect(md.stdout).toMatch(/\| p1 \| slow \| completed \| 1 \|/);
    expect(md.stdout).toMatch(/## What remains\n\nNothing: every task completed\./);
    const json = JSON.parse(swarm.ctl('report', runId, '--json').stdout) as {
      runId: string;
      status: string;
      tasks: Record<string, number>;
      results: unknown[];
      remains: unknown[];
    };
    expect(json).toMatchObject({ runId, status: 'completed', tasks: { completed: 10 }, remains: [] });
    expect(json.results).toHaveLength(10);
    const unknown = swarm.ctl('report', 'r-nope');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(new RegExp(`no run r-nope; the latest here: ${runId}`));
  });
});
