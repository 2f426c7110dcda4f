import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { openDb } from '../../lib/db';
import { readEvents } from '../../lib/event-log';
import type { StoredEvent } from '../../lib/event-kinds';
import type { Snapshot } from '../../lib/snapshot';
import { tmpDir, waitFor } from './tmp';

// A real swarm for a test: its own folder, its own PM2_HOME and PM2 daemon,
// started with `swarmctl up` and torn down with `pm2 kill`.

export const ROOT = path.join(__dirname, '..', '..');
export const SWARMCTL = path.join(ROOT, 'scripts', 'swarmctl');
export const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');
export const OPTIMIZER = path.join(ROOT, 'examples', 'demo', 'optimizer.js');

export class TestSwarm {
  readonly dir = tmpDir('swarm-it-');
  readonly stateDir = path.join(this.dir, 'state');
  readonly configFile = path.join(this.dir, 'swarm.config.json');
  readonly pm2Home = path.join(this.dir, 'pm2');
  readonly env: NodeJS.ProcessEnv;

  constructor(config: Record<string, unknown>, extraEnv: Record<string, string> = {}) {
    this.writeConfig(config);
    this.env = { ...process.env, PM2_HOME: this.pm2Home, SWARM_CONFIG: this.configFile, ...extraEnv };
    delete this.env.SWARM_STATE_DIR;
  }

  writeConfig(config: Record<string, unknown>): void {
    fs.writeFileSync(this.configFile, JSON.stringify({ stateDir: 'state', ...config }, null, 2));
  }

  ctl(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    // --config goes before the command's own args: after `--`, it would be a task argument.
    const r = spawnSync(SWARMCTL, ['--config', this.configFile, ...args], {
      env: this.env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  pm2(...args: string[]): string {
    const r = spawnSync(PM2, args, { env: this.env, encoding: 'utf8', timeout: 60_000 });
    return r.stdout + r.stderr;
  }

  up(): void {
    const r = this.ctl('up');
    if (r.status !== 0) throw new Error(`swarmctl up failed: ${r.stderr}${r.stdout}`);
  }

  events(filter: { kind?: string; target?: string } = {}): StoredEvent[] {
    if (!fs.existsSync(path.join(this.stateDir, 'swarm.db'))) return [];
    const db = openDb(this.stateDir, { readonly: true });
    try {
      return readEvents(db, { kindPrefix: filter.kind, target: filter.target });
    } finally {
      db.close();
    }
  }

  async waitEvent(
    kind: string,
    target?: string,
    pred: (e: StoredEvent) => boolean = () => true,
    timeoutMs = 45_000,
  ): Promise<StoredEvent> {
    try {
      return await waitFor(
        `${kind} on ${target ?? 'any target'}`,
        () => this.events({ kind, target }).find(pred),
        timeoutMs,
        150,
      );
    } catch (err) {
      // What did happen is what a failure in CI needs: the last events of that target.
      const seen = this.events({ target })
        .slice(-15)
        .map((e) => `  #${e.seq} ${e.kind} ${JSON.stringify(e.data).slice(0, 200)}`);
      throw new Error(`${(err as Error).message}\nlast events${target ? ` of ${target}` : ''}:\n${seen.join('\n')}`);
    }
  }

  query(): Snapshot {
    const r = this.ctl('query', '--json');
    if (r.status !== 0) throw new Error(`query failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout) as Snapshot;
  }

  async workerPid(workerId: string, attempt?: number): Promise<number> {
    return waitFor(
      `pid of ${workerId}`,
      () => {
        const w = this.query().workers.find((x) => x.id === workerId);
        return w && w.pid && w.status === 'running' && (attempt === undefined || w.attempt === attempt) ? w.pid : null;
      },
      45_000,
      200,
    );
  }

  /** The iteration a worker last wrote to its progress.json (the demo optimizer's), or 0 before any. */
  progressIteration(workerId: string): number {
    try {
      const p = JSON.parse(
        fs.readFileSync(path.join(this.stateDir, 'checkpoints', workerId, 'progress.json'), 'utf8'),
      ) as { iteration?: number };
      return p.iteration ?? 0;
    } catch {
      // Not written yet, or caught mid-rename: no progress to report.
      return 0;
    }
  }

  /** pm2 kill, then make sure no worker of ours outlives the test. */
  teardown(): void {
    spawnSync(PM2, ['kill'], { env: this.env, timeout: 30_000 });
    // If pm2 kill could not reach its daemon, end the daemon by its pid file.
    try {
      process.kill(Number(fs.readFileSync(path.join(this.pm2Home, 'pm2.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // no pid file, or already gone: what we want
    }
    const workers = path.join(this.stateDir, 'workers');
    for (const d of fs.existsSync(workers) ? fs.readdirSync(workers) : []) {
      try {
        const { pgid } = JSON.parse(fs.readFileSync(path.join(workers, d, 'pid.json'), 'utf8')) as { pgid: number };
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export const optimizerJob = (args: string[], extra: Record<string, unknown> = {}) => ({
  command: ['node', OPTIMIZER],
  args: ['--task', '${taskId}', '--trial-ms', '100', ...args],
  ...extra,
});
