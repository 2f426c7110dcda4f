import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readAnchor } from '../chain-anchor';
import { loadHmacKey } from '../hmac-chain';
import { DB_FILE, openDb } from '../db';
import { verifyChain } from '../event-log';
import { cliConfig, printJson, type GlobalOptions } from './cli-context';
import { slurmChecks, type Check } from './doctor-slurm';

export function verifyLogCommand(opts: GlobalOptions): number {
  const config = cliConfig(opts);
  const file = path.join(config.stateDir, DB_FILE);
  if (!fs.existsSync(file)) {
    if (opts.json) printJson({ ok: true, count: 0, lastSeq: 0, note: 'no event log yet' });
    else process.stdout.write(`no event log at ${file} yet\n`);
    return 0;
  }
  const anchor = readAnchor(config.stateDir);
  if (anchor && 'error' in anchor) {
    if (opts.json) printJson({ ok: false, count: 0, badSeq: 0, reason: anchor.error });
    else process.stdout.write(`BROKEN: ${anchor.error}\n`);
    return 1;
  }
  const db = openDb(config.stateDir, { readonly: true });
  try {
    const r = verifyChain(db, anchor, loadHmacKey(config.history.hmacKeyFile));
    if (opts.json) printJson(r);
    else if (r.ok) process.stdout.write(`ok: ${r.count} events, hash chain intact to seq ${r.lastSeq}\n`);
    else process.stdout.write(`BROKEN at seq ${r.badSeq}: ${r.reason} (${r.count} events before it are intact)\n`);
    return r.ok ? 0 : 1;
  } finally {
    db.close();
  }
}

function which(cmd: string): string | null {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not in this folder
    }
  }
  return null;
}

export function doctorCommand(opts: GlobalOptions): number {
  const checks: Check[] = [];
  let config;
  try {
    config = cliConfig(opts);
    checks.push({ name: 'config', ok: true, detail: `${config.file} is valid` });
  } catch (err) {
    checks.push({
      name: 'config',
      ok: false,
      detail: (err as Error).message,
      fix: 'correct the config at the path named above',
    });
  }
  const pm2Home = process.env.PM2_HOME ?? path.join(os.homedir(), '.pm2');
  let pm2Pid: number | null = null;
  try {
    pm2Pid = Number(fs.readFileSync(path.join(pm2Home, 'pm2.pid'), 'utf8').trim());
    process.kill(pm2Pid, 0);
    checks.push({ name: 'pm2', ok: true, detail: `PM2 daemon pid ${pm2Pid} (PM2_HOME=${pm2Home})` });
  } catch {
    checks.push({
      name: 'pm2',
      ok: false,
      detail: `no PM2 daemon running for PM2_HOME=${pm2Home}`,
      fix: 'run `npm start` (or `scripts/swarmctl up`)',
    });
  }
  if (config) {
    const dir = config.stateDir;
    try {
      const st = fs.statSync(dir);
      const mode = st.mode & 0o777;
      checks.push({
        name: 'state folder',
        ok: mode === 0o700,
        detail: `${dir} mode ${mode.toString(8)}`,
        fix: mode === 0o700 ? undefined : `chmod 700 ${dir}`,
      });
      fs.accessSync(dir, fs.constants.W_OK);
      const loose = fs
        .readdirSync(dir)
        .filter(
          (f) =>
            !f.startsWith('.') &&
            fs.statSync(path.join(dir, f)).isFile() &&
            (fs.statSync(path.join(dir, f)).mode & 0o077) !== 0,
        );
      checks.push({
        name: 'state files',
        ok: loose.length === 0,
        detail: loose.length ? `readable by others: ${loose.join(', ')}` : 'all 0600',
        fix: loose.length ? `chmod 600 ${dir}/*` : undefined,
      });
    } catch (err) {
      checks.push({
        name: 'state folder',
        ok: false,
        detail: `${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`,
        fix: 'start the swarm once, or create it with mode 0700',
      });
    }
    if (fs.existsSync(path.join(dir, DB_FILE))) {
      try {
        const db = openDb(dir, { readonly: true });
        const qc = db.pragma('quick_check', { simple: true });
        db.close();
        checks.push({
          name: 'sqlite',
          ok: qc === 'ok',
          detail: `quick_check: ${String(qc)}`,
          fix: qc === 'ok' ? undefined : 'stop the swarm and restore swarm.db from a copy; run `swarmctl verify-log`',
        });
      } catch (err) {
        checks.push({
          name: 'sqlite',
          ok: false,
          detail: (err as Error).message,
          fix: 'check that no other program holds a lock on swarm.db',
        });
      }
    } else {
      checks.push({ name: 'sqlite', ok: true, detail: 'no event log yet; it is created on first start' });
    }
  }
  const smi = process.env.SWARM_NVIDIA_SMI ?? 'nvidia-smi';
  const smiPath = which(smi);
  if (!smiPath)
    checks.push({
      name: 'nvidia-smi',
      ok: true,
      detail: `${smi} not found: GPU checks are off (fine on a CPU-only machine)`,
    });
  else {
    const r = spawnSync(smiPath, ['-L'], { timeout: 5000, encoding: 'utf8' });
    checks.push({
      name: 'nvidia-smi',
      ok: r.status === 0,
      detail:
        r.status === 0
          ? `${smiPath}: ${r.stdout.trim().split('\n').length} GPU(s)`
          : `${smiPath} failed: ${r.error?.message ?? r.stderr.trim()}`,
      fix: r.status === 0 ? undefined : 'check the NVIDIA driver (nvidia-smi must answer within 5s)',
    });
  }
  if (config) checks.push(...slurmChecks(config));
  const ok = checks.every((c) => c.ok);
  if (opts.json) printJson({ ok, checks });
  else
    for (const c of checks)
      process.stdout.write(
        `${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(12)} ${c.detail}${c.fix ? `\n     fix: ${c.fix}` : ''}\n`,
      );
  return ok ? 0 : 1;
}
