// npm run soak -- --minutes N: a fault-injection soak against a real swarm
// with real workers. Faults land at random times on random targets; at the
// end the log is read back to see what was detected, remediated, verified or
// escalated, what was missed, what was done to healthy work, and whether
// anything was lost. Writes soak/out/report.json and soak/out/report.md.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { openDb } from '../lib/db';
import { verifyChain } from '../lib/event-log';
import { DAEMON_NAMES, type StoredEvent } from '../lib/event-kinds';
import { readStateFile } from '../lib/state-store';
import { ACTIVE_STATUSES } from '../lib/worker/lifecycle';
import {
  CONTROL_STATE_FILE,
  ControlStateSchema,
  DAEMON_STATE_FILES,
  DaemonHeaderSchema,
  SESSION_LATEST_FILE,
  SessionLatestSchema,
} from '../lib/state-files';
import { fakeNvidiaSmi } from '../test/helpers/fake-smi';
import { optimizerJob, TestSwarm } from '../test/helpers/swarm';
import { tmpDir, waitFor } from '../test/helpers/tmp';
import { seeded } from '../test/helpers/seeded';
import { mountTmpfs, tmpfsUnavailable, unmount } from '../test/helpers/tmpfs';
import { falseDaemonActions, falseWorkerActions } from './false-actions';
import { judgeSupervisor, strike, SUPERVISOR_FAULTS, type Struck, type SupervisorFault } from './supervisor-faults';

const arg = (name: string): string | undefined =>
  process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined;
const minutes = Number(arg('--minutes') || '2');
// --seed N replays the same choices of fault, target and timing (the swarm's
// own timing still varies); a run without one picks a seed and reports it.
const seed = Number(arg('--seed') ?? Math.floor(Math.random() * 2 ** 31));
// The mean pause between two faults; the hour-long soak runs at 1.5 s to reach 1,000 faults.
const meanGapMs = Number(arg('--mean-gap-s') || '4') * 1000;
// PM2 killed, a reboot and a full disk (each waits for the swarm to come back) are in the mix
// with --supervisor-faults; the full disk only where a tmpfs can be mounted for the state folder.
const supervisorFaults = process.argv.includes('--supervisor-faults');
const supervisorEveryMs = Number(arg('--supervisor-every-s') || '240') * 1000;
const noTmpfs = supervisorFaults ? tmpfsUnavailable() : 'not asked for';
const OUT = path.join(__dirname, 'out');

const random = seeded(seed);
const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)] as T;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type FaultClass =
  | 'kill_worker'
  | 'stop_worker'
  | 'kill_daemon'
  | 'stop_daemon'
  | 'corrupt_state'
  | 'delete_state'
  | 'sqlite_lock'
  | 'smi_hang'
  | 'crash_loop'
  | 'memory_growth'
  | SupervisorFault;
interface Fault {
  class: FaultClass;
  struck?: Struck;
  target: string;
  at: number;
  afterSeq: number;
  pid?: number;
  detected?: boolean;
  remediated?: boolean;
  verified?: boolean;
  escalated?: boolean;
}

const SLOTS = 8;
const smiDir = tmpDir('swarm-soak-smi-');
const smi = fakeNvidiaSmi(smiDir, { fixture: 'tesla-t4.xml' });
const restart = { delay: '200ms', maxDelay: '2s', budget: 50, window: '1h', healthyAfter: '20s' };
const swarm = new TestSwarm(
  {
    name: 'soak',
    tick: '500ms',
    watchdog: { staleAfter: '4s', diskMinFree: '64M' },
    consensus: { maxConcurrentActions: 8, breaker: { failures: 200 } },
    lanes: { cpu: { kind: 'cpu', slots: SLOTS, fill: 'slots' } },
    jobs: {
      steady: optimizerJob(['--trials', '100000000', '--trial-ms', '250'], {
        progress: { staleAfter: '4s' },
        restart,
        stagnationAfter: 1000,
      }),
      // Injected faults end, so their slots free up and the next ones can start: a crash loop is
      // quarantined on its 4th attempt, a person acks it (ackQuarantined) and the 5th runs clean; a leak
      // is remedied, and the restarted attempt, which does not leak, finishes.
      looping: optimizerJob(['--crash-at', '1', '--fault-attempts', '4', '--trials', '20'], {
        restart: { ...restart, budget: 3 },
      }),
      leaky: optimizerJob(['--trials', '60', '--leak-mb', '20'], { memoryLimit: '200M', restart }),
    },
    queue: [0, 1, 2, 3].map((i) => ({ job: 'steady', id: `w${i}` })),
  },
  { SWARM_NVIDIA_SMI: smi.bin },
);

const STATE_FILES: [string, Parameters<typeof readStateFile>[1]][] = [
  ...Object.values(DAEMON_STATE_FILES).map((f) => [f, DaemonHeaderSchema] as [string, typeof DaemonHeaderSchema]),
  [CONTROL_STATE_FILE, ControlStateSchema],
  [SESSION_LATEST_FILE, SessionLatestSchema],
];

/** Faults held in the background (a lock, a hang) until they are lifted. */
const held = new Set<Promise<void>>();
const holding = (p: Promise<void>): void => {
  const done: Promise<void> = p.finally(() => held.delete(done));
  held.add(done);
};

/**
 * Another process takes SQLite's write lock and holds it for `ms`. Not this one: the soak's own
 * swarmctl calls (spawnSync) block its event loop, and would wait on a lock it could not release.
 */
async function holdWriteLock(dbFile: string, ms: number): Promise<void> {
  const code = `const db = new (require(process.argv[1]))(process.argv[2]); db.exec('BEGIN IMMEDIATE');
process.stdout.write('locked\\n'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[3]));`;
  const child = spawn(process.execPath, ['-e', code, require.resolve('better-sqlite3'), dbFile, String(ms)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  holding(exited);
  // Counted once the lock is really held (or the holder gave up, which its stderr says).
  await Promise.race([new Promise((resolve) => child.stdout.once('data', resolve)), exited]);
}

async function inject(kind: FaultClass, faults: Fault[], n: number): Promise<void> {
  const q = swarm.query();
  const base = { at: Date.now(), afterSeq: q.events.lastSeq };
  const steady = q.workers.filter((w) => w.job === 'steady' && w.status === 'running' && w.pid);
  const daemons = q.daemons.filter((d) => d.status === 'online' && d.pid);
  const busy = new Set(faults.filter((f) => Date.now() - f.at < 15_000).map((f) => f.target));
  if (kind === 'kill_worker' || kind === 'stop_worker') {
    const w = steady.filter((x) => !busy.has(`worker:${x.id}`));
    if (!w.length) return;
    const t = pick(w);
    process.kill(t.pid as number, kind === 'kill_worker' ? 'SIGKILL' : 'SIGSTOP');
    faults.push({ class: kind, target: `worker:${t.id}`, pid: t.pid as number, ...base });
  } else if (kind === 'kill_daemon' || kind === 'stop_daemon') {
    // One control-plane fault at a time: the swarm heals any one, not all at once.
    if (faults.some((f) => (f.class === 'kill_daemon' || f.class === 'stop_daemon') && Date.now() - f.at < 15_000))
      return;
    if (daemons.length < DAEMON_NAMES.length) return;
    const d = pick(daemons);
    process.kill(d.pid as number, kind === 'kill_daemon' ? 'SIGKILL' : 'SIGSTOP');
    faults.push({ class: kind, target: `daemon:${d.name}`, pid: d.pid as number, ...base });
  } else if (kind === 'corrupt_state' || kind === 'delete_state') {
    const [file] = pick(STATE_FILES);
    if (busy.has(`state:${file}`)) return;
    const full = path.join(swarm.stateDir, file);
    if (kind === 'delete_state') fs.rmSync(full, { force: true });
    else fs.writeFileSync(full, '{"torn": ');
    faults.push({ class: kind, target: `state:${file}`, ...base });
  } else if (kind === 'sqlite_lock' || kind === 'smi_hang') {
    // Held in the background while other faults land, one of each at a time.
    const target = kind === 'sqlite_lock' ? 'state:swarm.db' : 'gpu';
    if (busy.has(target)) return;
    faults.push({ class: kind, target, ...base });
    if (kind === 'sqlite_lock') await holdWriteLock(path.join(swarm.stateDir, 'swarm.db'), 3000);
    else {
      smi.set({ fixture: 'tesla-t4.xml', mode: 'hang' });
      holding(sleep(6000).then(() => smi.set({ fixture: 'tesla-t4.xml' })));
    }
  } else if (kind === 'kill_pm2' || kind === 'reboot' || kind === 'disk_full') {
    // Alone: no new fault meanwhile, none in the last 10 s, every daemon and steady worker up, and no
    // injected loop or leak in flight, whose attempts a requeue would renumber. Waits up to a minute.
    let now = q;
    const quiet = await waitFor(
      'quiet for a supervisor fault',
      () => {
        now = swarm.query();
        return (
          held.size === 0 &&
          !faults.some((f) => Date.now() - f.at < 10_000) &&
          now.daemons.filter((d) => d.status === 'online' && d.pid).length === DAEMON_NAMES.length &&
          now.workers.filter((w) => w.job === 'steady' && w.status === 'running' && w.pid).length === 4 &&
          !now.workers.some((w) => w.job !== 'steady' && ACTIVE_STATUSES.includes(w.status)) &&
          now.tasks.queued === 0
        );
      },
      60_000,
      500,
    ).then(
      () => true,
      () => false,
    );
    if (!quiet) return;
    const fault: Fault = { class: kind, target: kind, at: Date.now(), afterSeq: now.events.lastSeq };
    faults.push(fault);
    const running = now.workers.filter((w) => w.job === 'steady').map((w) => ({ id: w.id, pid: w.pid as number }));
    const daemonPids = now.daemons.map((d) => d.pid as number);
    fault.struck = await strike(kind, swarm, running, daemonPids, sleep);
    fault.target = fault.struck.target;
  } else if (kind === 'crash_loop' || kind === 'memory_growth') {
    // A fault the swarm cannot start cannot be seen: leaky workers restart for
    // good and keep their slots, so a submission with no free slot would sit
    // in the queue and be counted as missed.
    const holding = q.workers.filter((w) => ACTIVE_STATUSES.includes(w.status) || w.status === 'quarantined');
    if (holding.length + q.tasks.queued >= SLOTS) return;
    const id = `${kind === 'crash_loop' ? 'loop' : 'leak'}${n}`;
    const r = swarm.ctl('submit', kind === 'crash_loop' ? 'looping' : 'leaky', '--id', id);
    // Not submitted is not injected: say why, and count nothing.
    if (r.status !== 0) {
      process.stderr.write(`soak: submit ${id} refused (exit ${r.status}): ${r.stderr}\n`);
      return;
    }
    faults.push({ class: kind, target: `worker:${kind === 'crash_loop' ? 'looping' : 'leaky'}-${id}`, ...base });
  }
}

/**
 * A person's part: a crash loop Swarm quarantined and escalated is looked at
 * and acked, as the escalation asks. Without this every quarantined loop
 * would hold its slot for good, and after a few minutes no new crash_loop
 * or memory_growth fault could start.
 */
function ackQuarantined(faults: Fault[], acked: Set<number>): void {
  const raised = swarm.events({ kind: 'escalation.raised' });
  for (const f of faults) {
    if (f.class !== 'crash_loop') continue;
    for (const e of raised) {
      if (e.target !== f.target || e.seq <= f.afterSeq || acked.has(e.seq)) continue;
      acked.add(e.seq);
      swarm.ctl('ack', String(e.seq));
    }
  }
}

function judge(f: Fault, ev: StoredEvent[]): void {
  if (f.class === 'kill_pm2' || f.class === 'reboot' || f.class === 'disk_full') {
    Object.assign(f, judgeSupervisor(f.class, f.struck ?? { target: f.target, workers: {} }, f.afterSeq, ev));
    return;
  }
  const after = ev.filter((e) => e.seq > f.afterSeq);
  const on = after.filter((e) => e.target === f.target);
  switch (f.class) {
    case 'kill_worker':
    case 'stop_worker': {
      const d = on.find((e) => e.kind.startsWith('detect.') && e.data.pid === f.pid);
      f.detected = Boolean(d);
      f.remediated = Boolean(d && on.some((e) => e.kind === 'action.started' && e.seq > d.seq));
      f.verified = Boolean(d && on.some((e) => e.kind === 'action.verified' && e.data.incidentId === d.seq));
      f.escalated = on.some((e) => e.kind === 'escalation.raised');
      break;
    }
    case 'kill_daemon':
    case 'stop_daemon': {
      const back = on.find((e) => e.kind === 'daemon.started' && e.data.pid !== f.pid);
      f.detected = f.class === 'kill_daemon' ? Boolean(back) : on.some((e) => e.kind === 'detect.daemon_stale');
      f.remediated = Boolean(back);
      f.verified = f.class === 'kill_daemon' ? Boolean(back) : on.some((e) => e.kind === 'action.verified');
      f.escalated = false;
      break;
    }
    case 'corrupt_state':
    case 'delete_state':
      f.detected = on.some((e) => e.kind === 'detect.state_corrupt');
      f.remediated = f.verified = on.some((e) => e.kind === 'state.repaired');
      f.escalated = false;
      break;
    case 'sqlite_lock':
    case 'smi_hang':
      // Survived: nothing crashed. Every daemon online afterwards is checked at the end.
      f.detected = f.remediated = f.verified = true;
      f.escalated = false;
      break;
    case 'crash_loop':
      f.detected = on.some((e) => e.kind === 'detect.crash_loop');
      f.remediated = f.verified = f.escalated = on.some((e) => e.kind === 'escalation.raised');
      break;
    case 'memory_growth':
      f.detected = on.some((e) => e.kind === 'detect.worker_oom');
      f.remediated = on.some((e) => e.kind === 'action.started');
      f.verified = on.some((e) => e.kind === 'action.verified');
      f.escalated = on.some((e) => e.kind === 'escalation.raised');
      break;
  }
}

async function main(): Promise<void> {
  const faults: Fault[] = [];
  const kinds: FaultClass[] = [
    'kill_worker',
    'stop_worker',
    'kill_worker',
    'stop_worker',
    'kill_daemon',
    'stop_daemon',
    'corrupt_state',
    'delete_state',
    'sqlite_lock',
    'smi_hang',
    'crash_loop',
    'memory_growth',
  ];
  const supervisor = supervisorFaults ? SUPERVISOR_FAULTS.filter((k) => k !== 'disk_full' || noTmpfs === null) : [];
  if (supervisorFaults && noTmpfs === null) {
    const err = mountTmpfs(swarm.stateDir, '512m');
    if (err) throw new Error(err);
  }
  swarm.up();
  let allOnline = false;
  try {
    await waitFor(
      'workers running',
      () => swarm.query().workers.filter((w) => w.status === 'running').length >= 4,
      90_000,
      500,
    );
    const end = Date.now() + minutes * 60_000;
    let n = 0;
    const acked = new Set<number>();
    // A supervisor fault (PM2 killed, a reboot, a full disk, in turn) every few minutes: each takes
    // the whole swarm down for a while, so they are spaced, not drawn with the rest.
    let nextSupervisorAt = Date.now() + supervisorEveryMs / 2;
    let s = 0;
    while (Date.now() < end) {
      ackQuarantined(faults, acked);
      if (supervisor.length && Date.now() >= nextSupervisorAt) {
        await inject(supervisor[s++ % supervisor.length] as FaultClass, faults, n);
        nextSupervisorAt = Date.now() + supervisorEveryMs;
      } else {
        // Every class once in the first round, then at random.
        await inject(n < kinds.length ? (kinds[n] as FaultClass) : pick(kinds), faults, n);
      }
      n += 1;
      await sleep(meanGapMs * (0.5 + random()));
    }
    await Promise.all(held);
    // Let the last faults be seen and heal: every fault judged, every daemon and steady worker back.
    await waitFor(
      'quiet',
      async () => {
        const q = swarm.query();
        const ev = swarm.events();
        for (const f of faults) judge(f, ev);
        return (
          faults.every((f) => f.detected && (f.verified || f.escalated)) &&
          q.daemons.every((d) => d.status === 'online') &&
          q.workers.filter((w) => w.job === 'steady').every((w) => w.status === 'running')
        );
      },
      90_000,
      1000,
    ).then(
      () => (allOnline = true),
      () => (allOnline = swarm.query().daemons.every((d) => d.status === 'online')),
    );
    await sleep(3000);
  } finally {
    const ev = swarm.events();
    for (const f of faults) judge(f, ev);
    const db = openDb(swarm.stateDir, { readonly: true });
    const chain = verifyChain(db);
    db.close();
    const stateFiles = Object.fromEntries(
      STATE_FILES.map(([f, schema]) => [f, readStateFile(path.join(swarm.stateDir, f), schema).ok]),
    );
    // Lost events: each start a worker counted itself must be a worker.launched in the log.
    const lost: Record<string, { started: number; launched: number }> = {};
    for (const w of fs.readdirSync(path.join(swarm.stateDir, 'checkpoints'))) {
      const starts = path.join(swarm.stateDir, 'checkpoints', w, 'starts.log');
      if (!fs.existsSync(starts)) continue;
      const started = fs.readFileSync(starts, 'utf8').trim().split('\n').filter(Boolean).length;
      const launched = ev.filter((e) => e.kind === 'worker.launched' && e.target === `worker:${w}`).length;
      if (started > launched) lost[w] = { started, launched };
    }
    const falseActions = falseWorkerActions(ev, faults);
    const falseDaemon = falseDaemonActions(ev, faults);
    const restarts = Math.max(
      0,
      ...swarm
        .query()
        .workers.filter((w) => w.job === 'steady')
        .map((w) => w.restarts),
    );
    swarm.teardown();
    // The whole log of a run with a missed fault, kept to read (the state folder may be a tmpfs).
    fs.mkdirSync(OUT, { recursive: true });
    for (const f of ['swarm.db', 'swarm.db-wal']) {
      const from = path.join(swarm.stateDir, f);
      if (fs.existsSync(from)) fs.copyFileSync(from, path.join(OUT, f));
    }
    fs.writeFileSync(path.join(OUT, 'faults.json'), `${JSON.stringify(faults, null, 1)}\n`);
    if (supervisorFaults && noTmpfs === null) unmount(swarm.stateDir);
    const byClass: Record<string, Record<string, number>> = {};
    for (const f of faults) {
      const c = (byClass[f.class] ??= {
        injected: 0,
        detected: 0,
        remediated: 0,
        verified: 0,
        escalated: 0,
        missed: 0,
      });
      c.injected = (c.injected ?? 0) + 1;
      for (const k of ['detected', 'remediated', 'verified', 'escalated'] as const) if (f[k]) c[k] = (c[k] ?? 0) + 1;
      if (!f.detected) c.missed = (c.missed ?? 0) + 1;
    }
    const missed = faults.filter((f) => !f.detected).length;
    // Seen but neither healed (verified) nor handed to a person (escalated).
    const unhealed = faults.filter((f) => f.detected && !f.verified && !f.escalated).length;
    const report = {
      generatedAt: new Date().toISOString(),
      minutes,
      seed,
      command: `npm run soak -- --minutes ${minutes} --seed ${seed} --mean-gap-s ${meanGapMs / 1000}${supervisorFaults ? ` --supervisor-faults --supervisor-every-s ${supervisorEveryMs / 1000}` : ''}`,
      diskFull: noTmpfs ?? 'injected',
      faults: faults.length,
      byClass,
      missed,
      unhealed,
      falseActions: falseActions.map((e) => ({ seq: e.seq, kind: e.kind, target: e.target })),
      falseDaemonActions: falseDaemon.map((e) => ({ seq: e.seq, kind: e.kind, target: e.target, ts: e.ts })),
      eventsLost: lost,
      chain,
      stateFilesValid: stateFiles,
      allDaemonsOnlineAtEnd: allOnline,
      maxRestartsOnOneSteadyWorker: restarts,
      pass:
        missed === 0 &&
        unhealed === 0 &&
        falseActions.length === 0 &&
        falseDaemon.length === 0 &&
        Object.keys(lost).length === 0 &&
        chain.ok &&
        allOnline,
    };
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(path.join(OUT, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    const md = [
      `# Soak (${report.generatedAt}, ${minutes} min, seed ${seed}): ${report.pass ? 'PASS' : 'FAIL'}`,
      '',
      `Replay the same fault choices: \`${report.command}\``,
      '',
      ...(supervisorFaults && noTmpfs ? [`disk_full not injected: ${noTmpfs}`, ''] : []),
      '| fault | injected | detected | remediated | verified | escalated | missed |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...Object.entries(byClass).map(
        ([k, c]) =>
          `| ${k} | ${c.injected} | ${c.detected ?? 0} | ${c.remediated ?? 0} | ${c.verified ?? 0} | ${c.escalated ?? 0} | ${c.missed ?? 0} |`,
      ),
      '',
      `- seen but neither healed nor escalated: ${unhealed}`,
      `- actions on healthy workers (false positives): ${falseActions.length}`,
      `- actions on healthy daemons (false positives): ${falseDaemon.length}`,
      `- events lost (worker starts without worker.launched): ${Object.keys(lost).length}`,
      `- hash chain: ${chain.ok ? `intact (${chain.count} events)` : `BROKEN at ${(chain as { badSeq: number }).badSeq}`}`,
      `- state files valid at the end: ${Object.values(stateFiles).every(Boolean) ? 'all' : JSON.stringify(stateFiles)}`,
      `- all daemons online at the end: ${allOnline}`,
      `- most restarts of one steady worker: ${restarts}`,
    ].join('\n');
    fs.writeFileSync(path.join(OUT, 'report.md'), `${md}\n`);
    process.stdout.write(`${md}\n`);
    process.exitCode = report.pass ? 0 : 1;
  }
}

// CI's timeout, or a person's Ctrl-C: leave no PM2 daemon or worker behind.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    process.stderr.write(`soak: ${sig}, tearing the swarm down\n`);
    swarm.teardown();
    if (supervisorFaults && noTmpfs === null) unmount(swarm.stateDir);
    process.exit(1);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`soak failed: ${String(err)}\n`);
  swarm.teardown();
  if (supervisorFaults && noTmpfs === null) unmount(swarm.stateDir);
  process.exit(1);
});
