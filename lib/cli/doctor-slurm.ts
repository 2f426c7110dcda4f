import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { CompiledConfig } from '../config/config';
import { sbatchArgv } from '../slurm/slurm-cli';

// What `swarmctl doctor` checks for each slurm lane: that SLURM's commands
// answer from this machine (squeue and scontrol reach slurmctld; sbatch
// --test-only accepts the lane's partition and arguments without running
// anything) and that the lane's shared folder can be written.

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

const ANSWER_MS = 15_000;

function answers(argv: string[]): { ok: boolean; out: string } {
  const [cmd = '', ...args] = argv;
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: ANSWER_MS });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  if (r.error) return { ok: false, out: r.error.message };
  return { ok: r.status === 0, out };
}

const SLURM_FIX = 'check SLURM_CONF, munge and that slurmctld is up (`scontrol ping`); see docs/slurm.md';

export function slurmChecks(config: CompiledConfig): Check[] {
  const lanes = Object.values(config.lanes).filter((l) => l.slurm);
  if (lanes.length === 0) return [];
  const checks: Check[] = [];
  const ping = answers(['scontrol', 'ping']);
  const up = ping.ok && /UP/.test(ping.out);
  checks.push({ name: 'scontrol', ok: up, detail: ping.out.split('\n')[0] ?? '', fix: up ? undefined : SLURM_FIX });
  const q = answers(['squeue', '--json', '--me']);
  checks.push({
    name: 'squeue',
    ok: q.ok,
    detail: q.ok ? 'squeue --json answers' : q.out.slice(0, 300),
    fix: q.ok ? undefined : SLURM_FIX,
  });
  // A script that is never run: --test-only asks slurmctld whether it would take the job, and when.
  const probe = path.join(os.tmpdir(), `swarm-doctor-${process.pid}.js`);
  fs.writeFileSync(probe, '#!/usr/bin/env node\n', { mode: 0o600 });
  try {
    for (const lane of lanes) {
      const s = lane.slurm;
      if (!s) continue;
      const argv = sbatchArgv({
        script: probe,
        args: [],
        jobName: `swarm-doctor-${lane.name}`,
        partition: s.partition,
        extraArgs: s.sbatchArgs,
        output: '/dev/null',
        cwd: os.tmpdir(),
        timeLimitMinutes: null,
      }).map((a) => (a === '--parsable' ? '--test-only' : a));
      const t = answers(argv);
      checks.push({
        name: `sbatch ${lane.name}`,
        ok: t.ok,
        detail: t.out.split('\n')[0]?.slice(0, 300) ?? '',
        fix: t.ok ? undefined : `check lanes.${lane.name}.partition and .sbatch in ${config.file}, and ${SLURM_FIX}`,
      });
      checks.push(sharedDirCheck(lane.name, s.sharedDir));
    }
  } finally {
    fs.rmSync(probe, { force: true });
  }
  return checks;
}

function sharedDirCheck(lane: string, dir: string): Check {
  const file = path.join(dir, `.swarm-doctor-${crypto.randomBytes(4).toString('hex')}`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, 'ok', { mode: 0o600 });
    fs.rmSync(file);
    return { name: `shared ${lane}`, ok: true, detail: `${dir} is writable` };
  } catch (err) {
    return {
      name: `shared ${lane}`,
      ok: false,
      detail: `${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      fix: `lanes.${lane}.sharedDir must be a folder this user can write, mounted at the same path on every compute node`,
    };
  }
}
