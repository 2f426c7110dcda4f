import fs from 'node:fs';
import path from 'node:path';
import { ECOSYSTEM, type CompiledConfig } from '../config/config';
import { z } from 'zod';
import { UsageError } from '../errors';
import { newToken, readToken } from '../gateway/token';
import { DAEMON_STATE_FILES } from '../state-files';
import { readStateFile } from '../state-store';
import { ecosystemAppNames } from '../ecosystem';
import { cliLogger } from '../logger';
import { Pm2ProcessManager } from '../pm2-api-manager';
import { PROJECTION_FILE } from '../projection';
import { daemonEnv, isSecretName, removeSecrets, saveSecrets } from '../daemon-env';
import { setControl } from '../run-registry';
import { pm2Home } from '../pm2-home';
import { lockRefusal, releaseLock, takeLock } from '../state-lock';
import { cliConfig, openWriter, printJson, type GlobalOptions } from './cli-context';
import { EXIT } from './exit-codes';

// Thin wrappers over PM2 that set the environment the daemons need.

export async function upCommand(opts: GlobalOptions): Promise<number> {
  // Refused before anything is made: the state folder another swarm holds, a PM2 that runs another swarm.
  const home = pm2Home();
  const cfg = cliConfig(opts);
  const locked = lockRefusal(cfg.stateDir, home);
  if (locked) return refuse(locked);
  const pm = new Pm2ProcessManager(cliLogger());
  try {
    const names = ecosystemAppNames();
    const before = await pm.list();
    const other = before.find((a) => names.includes(a.name) && a.configFile !== null && a.configFile !== cfg.file);
    if (other) {
      return refuse(
        `PM2 (PM2_HOME ${home}) already runs the swarm of ${other.configFile} (its ${other.name}); two swarms in one PM2 would restart each other's daemons. Run this one with its own PM2_HOME, e.g. PM2_HOME=~/.pm2-${cfg.name} swarmctl up`,
      );
    }
    const writer = openWriter(opts, { newIfCompleted: true });
    const config = writer.config;
    setControl(writer.db, 'swarm.down', 'false');
    writer.close();
    process.env.SWARM_CONFIG = config.file;
    // The secrets the daemons need go to secrets.json; then out of this process's environment, which PM2
    // would copy into the daemons' own when it restarts them for a new run.
    saveSecrets(config.stateDir, daemonEnv(process.env, config.file).secrets);
    // The dashboard's token is per start, as Jupyter's: a new `up` makes a new one (operator-gateway reads it).
    const token = newToken(config.stateDir);
    for (const k of Object.keys(process.env)) if (isSecretName(k)) delete process.env[k];
    const apps = before.map((a) => a.name);
    await pm.startEcosystem(ECOSYSTEM);
    takeLock(
      config.stateDir,
      { swarm: config.name, config: config.file, pm2Home: home, pm2Pid: readPm2Pid(home) },
      new Date(),
    );
    // Daemons already running joined the finished run; a new run needs them to start over.
    if (writer.created) for (const n of names.filter((x) => apps.includes(x))) await pm.restart(n);
    // So that `pm2 resurrect`, or the boot script of `pm2 startup`, brings the swarm back as `up` would.
    await pm.save();
    const log = path.join(config.stateDir, PROJECTION_FILE);
    if (opts.json)
      printJson({
        ok: true,
        daemons: names,
        alreadyRunning: names.filter((n) => apps.includes(n)),
        stateDir: config.stateDir,
        config: config.file,
      });
    else {
      process.stdout.write(
        `Swarm "${config.name}" is up: ${names.join(', ')} under PM2.\n` +
          `Config: ${config.file}\n\nWatch it:\n  tail -f ${path.relative(process.cwd(), log) || log}\n  scripts/swarmctl status\n  scripts/swarmctl query --json\n${metricsLine(config, token)}\nStop it with: npm stop\n`,
      );
    }
    return 0;
  } finally {
    pm.close();
  }
}

function refuse(why: string): number {
  process.stderr.write(`swarmctl up: refused: ${why}\n`);
  return EXIT.bad;
}

/** The PM2 daemon's pid, from its pid file: the holder the state folder's lock names. */
function readPm2Pid(home: string): number {
  const pid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`${home}/pm2.pid holds no pid`);
  return pid;
}

export async function downCommand(opts: GlobalOptions): Promise<number> {
  // Tell watchdog and hang-guard first, or they would bring back what we remove.
  const writer = openWriter(opts);
  const config = writer.config;
  setControl(writer.db, 'swarm.down', 'true');
  writer.close();
  const pm = new Pm2ProcessManager(cliLogger());
  try {
    const names = ecosystemAppNames();
    const apps = await pm.list();
    const removed: string[] = [];
    // Daemons first, so the sentry does not relaunch the workers we remove.
    // Only this swarm's: its daemons (started with its config) and its workers (in its namespace).
    for (const a of apps.filter(
      (x) => names.includes(x.name) && (x.configFile === null || x.configFile === config.file),
    )) {
      await pm.delete(a.name);
      removed.push(a.name);
    }
    for (const a of apps.filter(
      (x) => x.name.startsWith('swarm-worker-') && (x.namespace === config.name || x.namespace === 'default'),
    )) {
      await pm.delete(a.name);
      removed.push(a.name);
    }
    removeSecrets(config.stateDir);
    releaseLock(config.stateDir, pm2Home());
    if (opts.json) printJson({ ok: true, removed, stateDir: config.stateDir });
    else process.stdout.write(removed.length ? `removed from PM2: ${removed.join(', ')}\n` : 'nothing to remove\n');
    return 0;
  } finally {
    pm.close();
  }
}

/** Where operator-gateway serves the dashboard and /metrics, when the config asks it to. */
function metricsLine(config: CompiledConfig, token: string): string {
  if (!config.http) return '';
  if (config.http.port === 0)
    return `  scripts/swarmctl dashboard   (the dashboard's URL, once operator-gateway has a port)\n`;
  const base = `http://${config.http.host}:${config.http.port}`;
  return `  ${base}/?token=${token}   (the dashboard)\n  curl -s ${base}/metrics   (Prometheus metrics, docs/metrics.md)\n`;
}

export function dashboardCommand(opts: GlobalOptions): number {
  const config = cliConfig(opts);
  if (!config.http) throw new UsageError(`the config ${config.file} has no \`http\`: nothing serves a dashboard`);
  const token = readToken(config.stateDir);
  const state = readStateFile(
    path.join(config.stateDir, DAEMON_STATE_FILES['operator-gateway']),
    z.looseObject({ http: z.looseObject({ kind: z.string(), url: z.string().optional() }).optional() }),
  );
  const listening = state.ok && state.value.http?.kind === 'listening' ? (state.value.http.url ?? null) : null;
  const base = listening ?? `http://${config.http.host}:${config.http.port}`;
  const url = token ? `${base}/?token=${token}` : null;
  if (opts.json) printJson({ url, listening: listening !== null, token });
  else if (!url) process.stdout.write('no dashboard token yet: start the swarm with `swarmctl up`\n');
  else process.stdout.write(`${url}${listening ? '' : '   (operator-gateway is not listening yet)'}\n`);
  return url && listening ? EXIT.done : EXIT.bad;
}
