import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpDir, waitFor } from './tmp';

// A real one-node SLURM cluster for a test: munged with its own key and
// socket, slurmctld and slurmd with their own slurm.conf, ports, spool and
// log folders, all in a temporary folder, and ended afterwards. It needs
// root (slurmd runs jobs as their user), as Debian's slurm-wlm 22.05 and
// munge packages install it.

export interface TestSlurm {
  dir: string;
  conf: string;
  /** The environment a SLURM command (or a swarm that runs them) needs: SLURM_CONF. */
  env: Record<string, string>;
  node: string;
  partition: string;
  /** Runs a SLURM command against this cluster; throws on a non-zero exit. */
  run(cmd: string, args: string[]): string;
  /** kill -9 of slurmd, as a node failure looks to slurmctld. */
  killSlurmd(): void;
  startSlurmd(): void;
  /** The node's state as sinfo reports it (idle, alloc, down*…). */
  nodeState(): string;
  stop(): void;
}

const PORT_BASE = 17000 + (process.pid % 500) * 4;

function daemon(bin: string, args: string[], env: NodeJS.ProcessEnv): void {
  const r = spawnSync(bin, args, { env, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

function readPidFile(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

function killPidFile(file: string, signal: NodeJS.Signals): void {
  const pid = readPidFile(file);
  if (pid === null) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export async function startSlurm(opts: { cpus?: number } = {}): Promise<TestSlurm> {
  const dir = tmpDir('swarm-slurm-');
  fs.chmodSync(dir, 0o755);
  for (const d of ['munge', 'spool/ctld', 'spool/d', 'run', 'log'])
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.chmodSync(path.join(dir, 'munge'), 0o700);
  const key = path.join(dir, 'munge', 'munge.key');
  fs.writeFileSync(key, crypto.randomBytes(1024), { mode: 0o400 });
  const sock = path.join(dir, 'munge', 'munge.sock');
  daemon(
    '/usr/sbin/munged',
    [
      `--key-file=${key}`,
      `--socket=${sock}`,
      `--pid-file=${path.join(dir, 'run', 'munged.pid')}`,
      `--log-file=${path.join(dir, 'log', 'munged.log')}`,
      `--seed-file=${path.join(dir, 'munge', 'seed')}`,
      '--force',
    ],
    process.env,
  );
  const node = os.hostname();
  const memMb = Math.max(1024, Math.floor(os.totalmem() / 1024 / 1024) - 1024);
  // More CPUs than the machine has (config_overrides lets slurmd believe slurm.conf): the tests' jobs mostly sleep.
  const cpus = opts.cpus ?? 8;
  const partition = 'main';
  const conf = path.join(dir, 'slurm.conf');
  const lines = [
    'ClusterName=swarmtest',
    `SlurmctldHost=${node}(127.0.0.1)`,
    `SlurmctldPort=${PORT_BASE}`,
    `SlurmdPort=${PORT_BASE + 1}`,
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${sock}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    `StateSaveLocation=${path.join(dir, 'spool', 'ctld')}`,
    `SlurmdSpoolDir=${path.join(dir, 'spool', 'd')}`,
    `SlurmctldPidFile=${path.join(dir, 'run', 'slurmctld.pid')}`,
    `SlurmdPidFile=${path.join(dir, 'run', 'slurmd.pid')}`,
    `SlurmctldLogFile=${path.join(dir, 'log', 'slurmctld.log')}`,
    `SlurmdLogFile=${path.join(dir, 'log', 'slurmd.log')}`,
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SchedulerType=sched/backfill',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    'ReturnToService=2',
    // Short, so that a killed slurmd is seen in seconds; not so short that a loaded test machine loses its node.
    'SlurmdTimeout=15',
    'SlurmctldTimeout=10',
    'MessageTimeout=5',
    'InactiveLimit=0',
    'KillWait=3',
    'MinJobAge=300',
    'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none',
    'MpiDefault=none',
    'SlurmdParameters=config_overrides',
    `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memMb} State=UNKNOWN`,
    `PartitionName=${partition} Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
  ];
  fs.writeFileSync(conf, `${lines.join('\n')}\n`);
  const env = { SLURM_CONF: conf };
  const full = { ...process.env, ...env };
  const run = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { env: full, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const nodeState = (): string => {
    const r = spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { env: full, encoding: 'utf8', timeout: 30_000 });
    return r.status === 0 ? r.stdout.trim() : `unknown: ${r.stderr.trim()}`;
  };
  const startSlurmd = (): void => daemon('/usr/sbin/slurmd', [], full);
  const cluster: TestSlurm = {
    dir,
    conf,
    env,
    node,
    partition,
    run,
    nodeState,
    startSlurmd,
    killSlurmd: () => killPidFile(path.join(dir, 'run', 'slurmd.pid'), 'SIGKILL'),
    stop: () => {
      // Jobs first: slurmstepd outlives slurmd by design, and a job left running would outlive the test.
      spawnSync('scancel', ['--full', `--user=${os.userInfo().username}`], { env: full, timeout: 15_000 });
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const q = spawnSync('squeue', ['-h', '-t', 'R,CG,S'], { env: full, encoding: 'utf8', timeout: 10_000 });
        if (q.status !== 0 || q.stdout.trim() === '') break;
        spawnSync('sleep', ['0.2']);
      }
      spawnSync('scontrol', ['shutdown'], { env: full, timeout: 15_000 });
      // scontrol shutdown ends both; a slurmd killed by a test and never restarted is ended here too.
      for (const f of ['slurmctld.pid', 'slurmd.pid']) killPidFile(path.join(dir, 'run', f), 'SIGKILL');
      killPidFile(path.join(dir, 'run', 'munged.pid'), 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    daemon('/usr/sbin/slurmctld', [], full);
    startSlurmd();
    await waitFor('the SLURM node to come up idle', () => /^(idle|mixed|alloc)/.test(nodeState()), 30_000, 200);
  } catch (err) {
    const logs = ['slurmctld.log', 'slurmd.log']
      .map((f) => {
        try {
          return `--- ${f}\n${fs.readFileSync(path.join(dir, 'log', f), 'utf8').slice(-2000)}`;
        } catch {
          return '';
        }
      })
      .join('\n');
    cluster.stop();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return cluster;
}
