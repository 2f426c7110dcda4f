// The narrow view of PM2 the daemons and swarmctl use. Two implementations:
// lib/pm2-api-manager.ts (PM2's own client: swarmctl, and the rare ecosystem
// start) and lib/pm2-rpc-manager.ts (the daemons: a few calls on PM2's socket).

export interface AppSpec {
  name: string;
  script: string;
  args: string[];
  cwd: string;
  interpreter: string;
  interpreterArgs?: string[];
  env: Record<string, string>;
  autorestart: boolean;
  killTimeoutMs: number;
  namespace?: string;
  outFile?: string;
  errorFile?: string;
}

export type AppStatus = 'online' | 'stopping' | 'stopped' | 'launching' | 'errored' | 'one-launch-status' | 'unknown';

export interface AppInfo {
  name: string;
  pid: number | null;
  status: AppStatus;
  restarts: number;
  /** PM2's namespace: Swarm puts its apps in one named for the swarm. */
  namespace: string;
  /** The SWARM_CONFIG the app was started with, for a daemon of a swarm. */
  configFile: string | null;
  /** The exit code of its last exit, as PM2 recorded it; null when PM2 has none. */
  exitCode: number | null;
}

export interface ProcessManager {
  start(app: AppSpec): Promise<void>;
  restart(name: string): Promise<void>;
  /** Starts apps from an ecosystem file, only the one named if given. */
  startEcosystem(file: string, only?: string): Promise<void>;
  stop(name: string): Promise<void>;
  delete(name: string): Promise<void>;
  list(): Promise<AppInfo[]>;
  close(): void;
}

/** PM2 keeps an app's last exit code in its env; its types leave it out. */
export function exitCodeOf(env: unknown): number | null {
  const code = (env as { exit_code?: unknown } | undefined)?.exit_code;
  return typeof code === 'number' ? code : null;
}

export function configOf(env: unknown): string | null {
  const e = env as { SWARM_CONFIG?: unknown; env?: { SWARM_CONFIG?: unknown } } | undefined;
  const v = e?.env?.SWARM_CONFIG ?? e?.SWARM_CONFIG;
  return typeof v === 'string' ? v : null;
}

/** An app as PM2's process list describes it (getMonitorData, pm2.list), in Swarm's terms. */
export function appInfoOf(p: { name?: string; pid?: number; pm2_env?: unknown }): AppInfo {
  const env = p.pm2_env as { status?: string; restart_time?: number; namespace?: unknown } | undefined;
  return {
    name: p.name ?? '',
    pid: p.pid && p.pid > 0 ? p.pid : null,
    status: (env?.status ?? 'unknown') as AppStatus,
    restarts: env?.restart_time ?? 0,
    exitCode: exitCodeOf(p.pm2_env),
    namespace: String(env?.namespace ?? 'default'),
    configFile: configOf(p.pm2_env),
  };
}
