import path from 'node:path';
import { ECOSYSTEM } from '../config';
import { createLogger } from '../logger';
import { Pm2ProcessManager } from '../process-manager';
import { PROJECTION_FILE } from '../projection';
import { setControl } from '../run-registry';
import { openWriter, printJson, type GlobalOptions } from './cli-context';

// Thin wrappers over PM2 that set the environment the daemons need.

export async function upCommand(opts: GlobalOptions): Promise<number> {
  const writer = openWriter(opts, { newIfCompleted: true });
  const config = writer.config;
  setControl(writer.db, 'swarm.down', 'false');
  writer.close();
  process.env.SWARM_CONFIG = config.file;
  const pm = new Pm2ProcessManager(createLogger('swarmctl', 'warn'));
  try {
    const apps = (await pm.list()).map((a) => a.name);
    await pm.startEcosystem(ECOSYSTEM);
    const names = (require(ECOSYSTEM) as { apps: { name: string }[] }).apps.map((a) => a.name);
    // Daemons already running joined the finished run; a new run needs them to start over.
    if (writer.created) for (const n of names.filter((x) => apps.includes(x))) await pm.restart(n);
    const log = path.join(config.stateDir, PROJECTION_FILE);
    if (opts.json) printJson({ ok: true, daemons: names, alreadyRunning: names.filter((n) => apps.includes(n)), stateDir: config.stateDir, config: config.file });
    else {
      process.stdout.write(
        `Swarm "${config.name}" is up: ${names.join(', ')} under PM2.\n` +
        `Config: ${config.file}\n\nWatch it:\n  tail -f ${path.relative(process.cwd(), log) || log}\n  scripts/swarmctl status\n  scripts/swarmctl query --json\n\nStop it with: npm stop\n`,
      );
    }
    return 0;
  } finally {
    pm.close();
  }
}

export async function downCommand(opts: GlobalOptions): Promise<number> {
  // Tell watchdog and hang-guard first, or they would bring back what we remove.
  const writer = openWriter(opts);
  const config = writer.config;
  setControl(writer.db, 'swarm.down', 'true');
  writer.close();
  const pm = new Pm2ProcessManager(createLogger('swarmctl', 'warn'));
  try {
    const names = (require(ECOSYSTEM) as { apps: { name: string }[] }).apps.map((a) => a.name);
    const apps = await pm.list();
    const removed: string[] = [];
    // Daemons first, so the sentry does not relaunch the workers we remove.
    for (const a of apps.filter((x) => names.includes(x.name))) {
      await pm.delete(a.name);
      removed.push(a.name);
    }
    for (const a of apps.filter((x) => x.name.startsWith('swarm-worker-'))) {
      await pm.delete(a.name);
      removed.push(a.name);
    }
    if (opts.json) printJson({ ok: true, removed, stateDir: config.stateDir });
    else process.stdout.write(removed.length ? `removed from PM2: ${removed.join(', ')}\n` : 'nothing to remove\n');
    return 0;
  } finally {
    pm.close();
  }
}
