// The soak's faults that take a whole supervisor down (issue 17): PM2's God
// daemon killed, a reboot (every process of the swarm killed at once), and
// the state folder's disk filled. Each plays a person's part too, as an
// operator would: `swarmctl up` after PM2 or the machine is back, the files
// removed once the disk is called out. Each waits for the swarm to be back
// before the next fault, so that it is judged on its own.
import fs from 'node:fs';
import path from 'node:path';
import type { StoredEvent } from '../lib/event-kinds';
import { isAlive } from '../lib/proc';
import type { TestSwarm } from '../test/helpers/swarm';
import { fillDisk } from '../test/helpers/tmpfs';
import { waitFor } from '../test/helpers/tmp';

export type SupervisorFault = 'kill_pm2' | 'reboot' | 'disk_full';
export const SUPERVISOR_FAULTS: SupervisorFault[] = ['kill_pm2', 'reboot', 'disk_full'];

export interface Struck {
  target: string;
  /** Steady workers running when it struck, by id, with their pids. */
  workers: Record<string, number>;
}

const MiB = 1024 * 1024;
const readPids = (swarm: TestSwarm, worker: string): number[] => {
  try {
    const p = JSON.parse(fs.readFileSync(path.join(swarm.stateDir, 'workers', worker, 'pid.json'), 'utf8')) as {
      pid?: number;
      shimPid?: number;
    };
    return [p.pid, p.shimPid].filter((x): x is number => typeof x === 'number');
  } catch {
    return []; // no pid.json yet: nothing of it runs
  }
};

/** Every process started with this swarm's PM2_HOME: PM2, daemons, anchors, shims, workers. */
function processesOf(swarm: TestSwarm): number[] {
  const mark = Buffer.from(`PM2_HOME=${swarm.pm2Home}\0`);
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/environ`).includes(mark)) out.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

const killAll = (pids: number[]): void => {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
};

/**
 * Strikes, plays the operator, and waits (up to a minute) for the swarm to
 * be back; whether it healed is judged from the log afterwards.
 */
export async function strike(
  kind: SupervisorFault,
  swarm: TestSwarm,
  steady: { id: string; pid: number }[],
  daemonPids: number[],
  pause: (ms: number) => Promise<void>,
): Promise<Struck> {
  const workers = Object.fromEntries(steady.map((w) => [w.id, w.pid]));
  const settle = (what: string, cond: () => boolean): Promise<void> =>
    waitFor(what, cond, 60_000, 250).then(
      () => undefined,
      (err: unknown) => {
        process.stderr.write(`soak: ${String(err)}\n`);
      },
    );
  if (kind === 'disk_full') {
    const a = path.join(swarm.stateDir, 'soak-fill-a');
    const b = path.join(swarm.stateDir, 'soak-fill-b');
    const before = swarm.events().at(-1)?.seq ?? 0;
    // Under the minimum first: called out while there is room to record it.
    fillDisk(a, 32 * MiB);
    await settle('detect.disk_low', () =>
      swarm.events({ kind: 'detect.disk_low' }).some((e: StoredEvent) => e.seq > before),
    );
    fillDisk(b, 0);
    await pause(3000);
    fs.rmSync(b, { force: true });
    fs.rmSync(a, { force: true });
    await settle('escalation.resolved', () =>
      swarm.events({ kind: 'escalation.resolved' }).some((e) => e.seq > before && e.target.startsWith('state:disk:')),
    );
    return { target: 'state:disk', workers };
  }
  const god = Number(fs.readFileSync(path.join(swarm.pm2Home, 'pm2.pid'), 'utf8'));
  const gone =
    kind === 'reboot' ? [god, ...processesOf(swarm), ...steady.flatMap((w) => readPids(swarm, w.id))] : [god];
  killAll(gone);
  const down = kind === 'reboot' ? gone : [god, ...daemonPids];
  await settle('the swarm down', () => down.every((p) => !isAlive(p)));
  await pause(1000);
  const before = swarm.events().at(-1)?.seq ?? 0;
  swarm.up();
  if (kind === 'kill_pm2')
    await settle('the workers adopted', () =>
      steady.every((w) =>
        swarm.events({ kind: 'worker.adopted', target: `worker:${w.id}` }).some((e) => e.seq > before),
      ),
    );
  else await settle('run.resumed', () => swarm.events({ kind: 'run.resumed' }).some((e) => e.seq > before));
  return { target: kind === 'kill_pm2' ? 'pm2' : 'machine', workers };
}

export interface Verdict {
  detected: boolean;
  remediated: boolean;
  verified: boolean;
  escalated: boolean;
}

/** What the log says the swarm saw and did about a supervisor fault struck after `afterSeq`. */
export function judgeSupervisor(
  kind: SupervisorFault,
  struck: Struck,
  afterSeq: number,
  events: StoredEvent[],
): Verdict {
  const after = events.filter((e) => e.seq > afterSeq);
  const ids = Object.keys(struck.workers);
  const launchedAgain = (id: string, since: number): boolean =>
    after.some((e) => e.kind === 'worker.launched' && e.target === `worker:${id}` && e.seq > since);
  if (kind === 'kill_pm2') {
    // Every running worker adopted with the pid it had, and nothing done to it before that:
    // no detection, no relaunch.
    const adoption = ids.map((id) =>
      after.find(
        (e) => e.kind === 'worker.adopted' && e.target === `worker:${id}` && e.data.pid === struck.workers[id],
      ),
    );
    const adopted = adoption.every(Boolean);
    const untouched = ids.every((id, i) =>
      after.every(
        (e) =>
          e.target !== `worker:${id}` ||
          e.seq > (adoption[i]?.seq ?? Infinity) ||
          !(e.kind === 'worker.launched' || e.kind.startsWith('detect.')),
      ),
    );
    const back = after.some((e) => e.kind === 'daemon.started' && e.source === 'worker-sentry');
    return { detected: adopted, remediated: back, verified: adopted && untouched, escalated: false };
  }
  if (kind === 'reboot') {
    const resumed = after.find((e) => e.kind === 'run.resumed');
    const listed = new Set(((resumed?.data.requeued ?? []) as { workerId: string }[]).map((r) => r.workerId));
    const all = Boolean(resumed) && ids.every((id) => listed.has(id));
    return {
      detected: all,
      remediated: all,
      verified: all && ids.every((id) => launchedAgain(id, resumed?.seq ?? afterSeq)),
      escalated: false,
    };
  }
  const on = after.filter((e) => e.target.startsWith('state:disk:'));
  const raised = on.some((e) => e.kind === 'escalation.raised');
  return {
    detected: on.some((e) => e.kind === 'detect.disk_low'),
    remediated: raised,
    verified: on.some((e) => e.kind === 'escalation.resolved'),
    escalated: raised,
  };
}
