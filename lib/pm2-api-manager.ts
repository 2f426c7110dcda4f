// First, so PM2_HOME is made 0700 before pm2's own module makes it 0755.
import './pm2-home';
import pm2 from 'pm2';
import type { Logger } from './logger';
import { appInfoOf, type AppInfo, type AppSpec, type ProcessManager } from './process-manager';

// PM2's own programmatic API against the PM2_HOME this process was started
// with: swarmctl's client, and the daemons' for an ecosystem start.

function promisify<T>(fn: (cb: (err: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

export class Pm2ProcessManager implements ProcessManager {
  private connected: Promise<void> | null = null;

  constructor(private readonly logger: Logger) {}

  private connect(): Promise<void> {
    this.connected ??= promisify<void>((cb) => pm2.connect((err) => cb(err ?? null, undefined))).catch(
      (err: unknown) => {
        this.connected = null;
        throw err;
      },
    );
    return this.connected;
  }

  async start(app: AppSpec): Promise<void> {
    await this.connect();
    await promisify<unknown>((cb) =>
      pm2.start(
        {
          name: app.name,
          script: app.script,
          args: app.args,
          cwd: app.cwd,
          interpreter: app.interpreter,
          interpreter_args: app.interpreterArgs ?? [],
          env: app.env,
          // Only app.env: PM2 would otherwise copy this process's whole environment into the app's, where
          // `pm2 env`, `pm2 jlist` and dump.pm2 show it. PM2 7 ignores `filter_env: true` (it tests .length);
          // a list of prefixes drops every variable that contains one, and every name contains ''.
          filter_env: [''],
          autorestart: app.autorestart,
          kill_timeout: app.killTimeoutMs,
          exec_mode: 'fork',
          merge_logs: true,
          ...(app.namespace ? { namespace: app.namespace } : {}),
          ...(app.outFile ? { output: app.outFile } : {}),
          ...(app.errorFile ? { error: app.errorFile } : {}),
        } as pm2.StartOptions,
        (err, proc) => cb(err ?? null, proc),
      ),
    );
  }

  async startEcosystem(file: string, only?: string): Promise<void> {
    await this.connect();
    await promisify<unknown>((cb) =>
      // pm2's typings omit the options argument that its API takes for ecosystem files.
      (pm2.start as unknown as (f: string, o: object, cb: (err: Error | null, p: unknown) => void) => void)(
        file,
        only ? { only } : {},
        (err, p) => cb(err ?? null, p),
      ),
    );
  }

  /**
   * `pm2 save`: PM2's process list to its dump file, which `pm2 resurrect`
   * (and the boot script `pm2 startup` installs) starts again. Only swarmctl
   * calls it; the daemons never need to.
   */
  async save(): Promise<void> {
    await this.connect();
    await promisify<unknown>((cb) => pm2.dump((err, r) => cb(err ?? null, r)));
  }

  async restart(name: string): Promise<void> {
    await this.connect();
    await promisify<unknown>((cb) => pm2.restart(name, (err, proc) => cb(err ?? null, proc)));
  }

  async stop(name: string): Promise<void> {
    await this.connect();
    await promisify<unknown>((cb) => pm2.stop(name, (err, proc) => cb(err ?? null, proc)));
  }

  async delete(name: string): Promise<void> {
    await this.connect();
    try {
      await promisify<unknown>((cb) => pm2.delete(name, (err, proc) => cb(err ?? null, proc)));
    } catch (err) {
      // Deleting an app that is already gone is the outcome we wanted.
      if (!/not found|id unknown/i.test(String((err as Error).message ?? err))) throw err;
      this.logger.debug({ name }, 'pm2 app already deleted');
    }
  }

  async list(): Promise<AppInfo[]> {
    await this.connect();
    const procs = await promisify<pm2.ProcessDescription[]>((cb) => pm2.list((err, list) => cb(err ?? null, list)));
    return procs.map(appInfoOf);
  }

  close(): void {
    if (this.connected) pm2.disconnect();
    this.connected = null;
  }
}
