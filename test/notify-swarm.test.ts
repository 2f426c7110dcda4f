import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DAEMON_STATE_FILES } from '../lib/state-files';
import { SWARMCTL, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';
import { WebhookReceiver } from './helpers/webhook-receiver';

// Webhooks from a real swarm under real PM2: operator-gateway is kill -9'd
// while it retries, comes back, and the receiver still ends with exactly one
// accepted delivery per event, in seq order, each signed with a secret that
// appears nowhere else. An endpoint that never answers is given up
// (notify.failed, a line in status) and holds up no daemon's tick.

const SECRET = 'hook-secret-value-7d1e0b';
const receiver = new WebhookReceiver(['fail', 'fail', 'fail', 'hang'], SECRET);
const silent = new WebhookReceiver(['hang', 'hang', 'hang', 'hang', 'hang', 'hang']);
let swarm: TestSwarm;

afterAll(async () => {
  swarm?.teardown();
  await receiver.close();
  await silent.close();
});

const ctlAsync = (...args: string[]) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(SWARMCTL, ['--config', swarm.configFile, ...args], { env: swarm.env }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

type GatewayState = { ticks: number; pid: number; notify: { name: string; state: string; seq: number | null }[] };
const gateway = (): GatewayState | null => {
  try {
    return JSON.parse(
      fs.readFileSync(path.join(swarm.stateDir, DAEMON_STATE_FILES['operator-gateway']), 'utf8'),
    ) as GatewayState;
  } catch {
    return null;
  }
};

describe('notifications from a running swarm', () => {
  it('kill -9 of the sender mid-retry: every event accepted exactly once, in order, signed; a silent endpoint is given up and delays no tick', async () => {
    const url = await receiver.listen();
    const silentUrl = await silent.listen();
    swarm = new TestSwarm(
      {
        name: 'tell',
        tick: '250ms',
        lanes: { cpu: { kind: 'cpu', slots: 3, fill: 'slots' } },
        jobs: { quick: { command: [process.execPath, '-e', 'setTimeout(() => {}, 300)'] } },
        queue: [
          { job: 'quick', id: 'a' },
          { job: 'quick', id: 'b' },
          { job: 'quick', id: 'c' },
        ],
        notify: [
          {
            name: 'hook',
            url,
            on: ['task.completed'],
            secretEnv: 'SWARM_HOOK_SECRET',
            timeout: '1s',
            retry: { attempts: 10, delay: '1s', maxDelay: '2s' },
          },
          {
            name: 'silent',
            url: silentUrl,
            on: ['task.completed'],
            timeout: '3s',
            retry: { attempts: 2, delay: '250ms' },
          },
        ],
      },
      { SWARM_HOOK_SECRET: SECRET },
    );
    swarm.up();
    const completed = await waitFor(
      'three task.completed',
      () => {
        const c = swarm.events({ kind: 'task.completed' });
        return c.length === 3 ? c : null;
      },
      60_000,
      200,
    );
    // Mid-retry: two attempts have failed. kill -9 the sender.
    await waitFor('two failed attempts', () => receiver.requests.length >= 2, 30_000, 50);
    const first = gateway();
    expect(first?.pid).toBeGreaterThan(1);
    process.kill(first!.pid, 'SIGKILL');
    await waitFor(
      'operator-gateway back with a new pid',
      () => (gateway()?.pid ?? first!.pid) !== first!.pid,
      30_000,
      100,
    );

    // A POST to the silent endpoint hangs for 3 s; the gateway's ticks go on meanwhile.
    await waitFor(
      'a POST to silent in flight',
      () => gateway()?.notify.find((n) => n.name === 'silent')?.state === 'sending',
      30_000,
      50,
    );
    const ticksAt = gateway()!.ticks;
    await waitFor(
      'four more ticks while it hangs',
      () => {
        const g = gateway();
        return g !== null && g.ticks >= ticksAt + 4 && g.notify.find((n) => n.name === 'silent')?.state === 'sending';
      },
      2_900,
      50,
    );

    await waitFor('all three accepted', () => receiver.accepted().length >= 3, 60_000, 100);
    await waitFor(
      'the hook cursor past the last task.completed',
      () => (gateway()?.notify.find((n) => n.name === 'hook')?.seq ?? 0) >= completed[2]!.seq,
      30_000,
      100,
    );
    const want = completed.map((e) => e.seq);
    expect(receiver.accepted().map((r) => r.seq)).toEqual(want);
    expect(receiver.accepted().map((r) => r.body.kind)).toEqual(['task.completed', 'task.completed', 'task.completed']);
    expect(receiver.requests.every((r) => r.signatureOk === true)).toBe(true);
    // Attempts at the first event: 3 fails, 1 hang, then accepted; the kill lost none and added none.
    expect(receiver.requests.filter((r) => r.seq === want[0]).map((r) => r.answer)).toEqual([
      'fail',
      'fail',
      'fail',
      'hang',
      'accept',
    ]);

    // The silent endpoint: given up after 2 attempts at its first event.
    const failed = await swarm.waitEvent('notify.failed', 'notify:silent', () => true, 60_000);
    expect(failed.data).toMatchObject({ endpoint: 'silent', eventSeq: want[0], attempts: 2 });
    const status = swarm.ctl('status');
    expect(status.stdout).toMatch(/notify silent (gave up on an event|is failing)/);

    // The secret is in no event, no state file and not in PM2's copy of the environment.
    const everything = JSON.stringify(swarm.events());
    expect(everything).not.toContain(SECRET);
    for (const f of fs.readdirSync(swarm.stateDir).filter((x) => x.endsWith('.json') && x !== 'secrets.json'))
      expect(fs.readFileSync(path.join(swarm.stateDir, f), 'utf8')).not.toContain(SECRET);
    expect(swarm.pm2('jlist')).not.toContain(SECRET);

    // swarmctl notify test, from a shell without the secret: sent from the CLI, signed with the one `up`
    // saved in the state folder, and it says what came back.
    delete swarm.env.SWARM_HOOK_SECRET;
    const before = receiver.requests.length;
    // Not swarm.ctl(): spawnSync would block this process, and the receiver with it.
    const ok = await ctlAsync('notify', 'test', 'hook');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^hook: delivered, HTTP 200, signed/);
    expect(receiver.requests[before]).toMatchObject({ seq: 0, kind: 'notify.test', signatureOk: true });
    const bad = swarm.ctl('notify', 'test', 'nope');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no such endpoint; it has hook, silent/);
  }, 180_000);
});
