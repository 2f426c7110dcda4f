import path from 'node:path';
import { PACKAGE_ROOT } from './config';

// The typed face of scripts/daemon-env.js: plain CommonJS, because
// ecosystem.config.js, which PM2 loads with require(), needs it too. Loaded
// by path at run time, like the ecosystem file, so the compiled daemons and
// the bundled CLI use the checkout's one copy.

interface DaemonEnvModule {
  SECRETS_FILE: string;
  /** The caller's environment split: `env` for PM2 to hold (no secret-named variable), `secrets` for secrets.json. */
  daemonEnv(caller: NodeJS.ProcessEnv, configFile: string): { env: Record<string, string>; secrets: Record<string, string>; stateDir: string };
  /** Adds to the state folder's secrets.json (0600), keeping what an earlier start saved. */
  saveSecrets(stateDir: string, values: Record<string, string>): void;
  loadSecrets(stateDir: string): Record<string, string>;
  removeSecrets(stateDir: string): void;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const mod = require(path.join(PACKAGE_ROOT, 'scripts', 'daemon-env.js')) as DaemonEnvModule;

export const SECRETS_FILE = mod.SECRETS_FILE;
export const daemonEnv = mod.daemonEnv;
export const saveSecrets = mod.saveSecrets;
export const loadSecrets = mod.loadSecrets;
export const removeSecrets = mod.removeSecrets;
