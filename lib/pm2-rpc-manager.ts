import os from 'node:os';
import path from 'node:path';
import { Pm2RpcError } from './errors';
import type { Logger } from './logger';
import { pm2Home } from './pm2-home';
import { appInfoOf, type AppInfo, type AppSpec, type ProcessManager } from './process-manager';
import { Pm2Rpc } from './pm2-rpc';

// The daemons' ProcessManager: the calls PM2's client would make, sent
// straight to the God daemon (lib/pm2-rpc.ts), so that no daemon carries
// PM2's client. Only an ecosystem start (the watchdog putting back a daemon
// deleted from PM2, rare) loads PM2's client, for its config file handling.

interface Described {
  name?: string;
  pm_id?: number;
  pid?: number;
  pm2_env?: unknown;
}

/** PM2's file-name form of an app name, as its client makes its log and pid paths. */
const fileNameOf = (name: string): string => name.replace(/[^a-zA-Z0-9.-]/g, '-');

/**
 * The app as PM2's client sends it to the God daemon's `prepare` for
 * pm2.start(spec) with Swarm's options (fork mode, one instance, only
 * spec.env in the app's environment). test/pm2-rpc.test.ts starts the same
 * spec both ways and compares what PM2 holds.
 */
export function prepareConf(app: AppSpec, home: string): Record<string, unknown> {
  const file = fileNameOf(app.name);
  const cwd = path.resolve(app.cwd);
  return {
    name: app.name,
    filter_env: [''],
    namespace: app.namespace ?? 'default',
    cwd: app.cwd,
    args: app.args,
    exec_interpreter: app.interpreter,
    node_args: app.interpreterArgs ?? [],
    env: { ...app.env, PM2_HOME: home, [app.name]: '{}' },
    kill_timeout: app.killTimeoutMs,
    merge_logs: true,
    vizion: true,
    autostart: true,
    autorestart: app.autorestart,
    exec_mode: 'fork_mode',
    instance_var: 'NODE_APP_INSTANCE',
    pmx: true,
    automation: true,
    treekill: true,
    username: os.userInfo().username,
    windowsHide: true,
    kill_retry_time: 100,
    pm_exec_path: path.resolve(cwd, app.script),
    pm_cwd: cwd,
    instances: 1,
    pm_out_log_path: app.outFile ? path.resolve(cwd, app.outFile) : path.join(home, 'logs', `${file}-out.log`),
    pm_err_log_path: app.errorFile ? path.resolve(cwd, app.errorFile) : path.join(home, 'logs', `${file}-error.log`),
    pm_pid_path: path.join(home, 'pids', `${file}.pid`),
    km_link: false,
  };
}

export class Pm2RpcProcessManager implements ProcessManager {
  private readonly rpc: Pm2Rpc;

  constructor(
    private readonly logger: Logger,
    private readonly home = pm2Home(),
  ) {
    this.rpc = new Pm2Rpc(path.join(home, 'rpc.sock'));
  }

  private async described(): Promise<Described[]> {
    const [list] = await this.rpc.call('getMonitorData', {});
    return Array.isArray(list) ? (list as Described[]) : [];
  }

  private async idsOf(name: string): Promise<number[]> {
    return (await this.described()).flatMap((p) => (p.name === name && typeof p.pm_id === 'number' ? [p.pm_id] : []));
  }

  /** Runs `method` on every app called `name`, and tells PM2's bus, as PM2's client does. */
  private async each(name: string, method: string, event: string, arg: (id: number) => unknown): Promise<number> {
    const ids = await this.idsOf(name);
    for (const id of ids) {
      await this.rpc.call(method, arg(id));
      // Only a note on PM2's bus (what `pm2 logs` shows); after a delete there is no app left to
      // note it on, and PM2's client ignores that answer too.
      await this.rpc
        .call('notifyByProcessId', { id, action_name: event, manually: true })
        .catch((err: unknown) => this.logger.debug({ name, id, event, err: String(err) }, 'pm2 bus note not taken'));
    }
    return ids.length;
  }

  async start(app: AppSpec): Promise<void> {
    // PM2's client restarts an app of the same name rather than start a second one.
    if ((await this.restartAll(app.name)) > 0) return;
    await this.rpc.call('prepare', prepareConf(app, this.home));
  }

  async startEcosystem(file: string, only?: string): Promise<void> {
    // Loaded here, not at the top: PM2's client is what this module exists to leave out.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on use, as said above
    const { Pm2ProcessManager } = require('./pm2-api-manager') as typeof import('./pm2-api-manager');
    const pm = new Pm2ProcessManager(this.logger);
    try {
      await pm.startEcosystem(file, only);
    } finally {
      pm.close();
    }
  }

  private restartAll(name: string): Promise<number> {
    return this.each(name, 'restartProcessId', 'restart', (id) => ({
      id,
      env: { current_conf: { km_link: false }, [name]: {} },
    }));
  }

  async restart(name: string): Promise<void> {
    if ((await this.restartAll(name)) === 0) throw new Pm2RpcError('restart', `process ${name} not found`);
  }

  async stop(name: string): Promise<void> {
    if ((await this.each(name, 'stopProcessId', 'stop', (id) => id)) === 0)
      throw new Pm2RpcError('stop', `process ${name} not found`);
  }

  async delete(name: string): Promise<void> {
    // Deleting an app that is already gone is the outcome we wanted.
    if ((await this.each(name, 'deleteProcessId', 'delete', (id) => id)) === 0)
      this.logger.debug({ name }, 'pm2 app already deleted');
  }

  async list(): Promise<AppInfo[]> {
    return (await this.described()).map(appInfoOf);
  }

  close(): void {
    this.rpc.close();
  }
}
