import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DAEMON_STATE_FILES } from '../lib/state-files';
import { optimizerJob, TestSwarm } from './helpers/swarm';
import { freePort } from './helpers/ports';
import { skipReason } from './helpers/system-packages';
import { tmpDir, waitFor } from './helpers/tmp';

// GET /metrics against a real Prometheus (Debian's package): the test starts
// it with a generated config scraping operator-gateway every second, kills a
// worker with kill -9, and asks Prometheus' HTTP API until
// swarm_detections_total{class="worker_crashed"} has risen. promtool checks
// the text format.

const skip = skipReason(['prometheus']);
const swarm = new TestSwarm({
  name: 'metrics',
  tick: '250ms',
  http: { port: 0 },
  lanes: { cpu: { kind: 'cpu', slots: 2, fill: 'slots' } },
  jobs: { steady: optimizerJob(['--trials', '100000000', '--trial-ms', '200'], { restart: { delay: '200ms' } }) },
  queue: [{ job: 'steady', id: 'a' }],
});
let prometheus: ChildProcess | null = null;

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus?.once('exit', r));
    prometheus.kill('SIGTERM');
    await Promise.race([exited, waitFor('prometheus gone', () => prometheus?.exitCode !== null, 10_000, 100)]).catch(
      () => prometheus?.kill('SIGKILL'),
    );
  }
  swarm.teardown();
});

async function get(url: string): Promise<{ status: number; body: string; type: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' };
}

/** The gateway's /metrics address, from its state file. */
const metricsUrl = () =>
  waitFor(
    'operator-gateway listening',
    () => {
      try {
        const s = JSON.parse(
          fs.readFileSync(path.join(swarm.stateDir, DAEMON_STATE_FILES['operator-gateway']), 'utf8'),
        ) as { http?: { kind: string; url?: string } };
        return s.http?.kind === 'listening' ? `${s.http.url}/metrics` : null;
      } catch {
        return null;
      }
    },
    60_000,
    200,
  );

const METRICS = [
  'swarm_detections_total',
  'swarm_actions_total',
  'swarm_restarts_total',
  'swarm_escalations_open',
  'swarm_workers',
  'swarm_tasks',
  'swarm_lane_slots',
  'swarm_lane_utilization_ratio',
  'swarm_gpu_utilization_ratio',
  'swarm_gpu_memory_used_bytes',
  'swarm_daemon_last_tick_age_seconds',
  'swarm_event_append_seconds',
  'swarm_notifications_total',
];

describe('metrics', () => {
  beforeEach((ctx) => ctx.skip(skip !== null, skip ?? undefined));

  it('GET /metrics has every metric, passes promtool, and Prometheus sees a kill -9 as worker_crashed', async () => {
    swarm.up();
    const url = await metricsUrl();
    const pid = await swarm.workerPid('steady-a');
    const first = await get(url);
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const m of METRICS) expect(first.body, m).toContain(`# TYPE ${m} `);
    expect(first.body).toMatch(/^swarm_workers\{status="running"\} 1$/m);
    expect(first.body).toMatch(/^swarm_lane_slots\{lane="cpu",state="free"\} 1$/m);
    expect(first.body).toMatch(/^swarm_event_append_seconds_bucket\{daemon="worker-sentry",le="\+Inf"\} [1-9]/m);
    expect(first.body).not.toMatch(/^swarm_detections_total\{class="worker_crashed"\}/m);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: first.body, encoding: 'utf8', timeout: 30_000 });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
    expect((await get(url.replace('/metrics', '/nope'))).status).toBe(404);

    const dir = tmpDir('swarm-prom-');
    const port = await freePort();
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: swarm',
        '    static_configs:',
        `      - targets: ['${new URL(url).host}']`,
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    const api = `http://127.0.0.1:${port}`;
    await waitFor(
      'prometheus ready',
      async () => (await get(`${api}/-/ready`).catch(() => null))?.status === 200,
      60_000,
      250,
    );
    const query = async (q: string): Promise<number | null> => {
      const r = await get(`${api}/api/v1/query?query=${encodeURIComponent(q)}`);
      const v = (JSON.parse(r.body) as { data?: { result?: { value: [number, string] }[] } }).data?.result?.[0]?.value;
      return v ? Number(v[1]) : null;
    };
    await waitFor('the swarm scraped', async () => (await query('up{job="swarm"}')) === 1, 60_000, 500);
    expect(await query('swarm_detections_total{class="worker_crashed"}')).toBeNull();

    process.kill(pid, 'SIGKILL');
    await swarm.waitEvent('detect.worker_crashed', 'worker:steady-a');
    const seen = await waitFor(
      'worker_crashed risen in Prometheus',
      async () => {
        const v = await query('swarm_detections_total{class="worker_crashed"}');
        return v !== null && v >= 1 ? v : null;
      },
      60_000,
      500,
    );
    expect(seen).toBe(1);
    // Prometheus' own `job` label (the scrape job) wins: ours arrives as exported_job (docs/metrics.md).
    await waitFor(
      'the restart counted',
      async () => (await query('swarm_restarts_total{exported_job="steady"}')) === 1,
      60_000,
      500,
    );
    expect(await query('swarm_actions_total{type="restart_worker",outcome="started"}')).toBe(1);
  }, 180_000);
});
