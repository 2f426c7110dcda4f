import path from 'node:path';
import { PACKAGE_ROOT } from './package-root';

// The typed face of scripts/daemon-env.js, the environment rules: plain
// CommonJS, because ecosystem.config.js (which PM2 loads with require()) and
// the worker shim need them too. Loaded by path at run time, like the
// ecosystem file, so the compiled daemons and the bundled CLI use the
// checkout's one copy.

interface DaemonEnvModule {
  SECRETS_FILE: string;
  /** Passed to every daemon and worker from the caller's environment, with LC_*. */
  BASE_ENV_NAMES: readonly string[];
  /** An envPassthrough entry: a variable's name, or a prefix ending in `*`. */
  PASSTHROUGH_PATTERN: string;
  /** Named like a credential: KEY, TOKEN, SECRET or PASSWORD. */
  isSecretName(name: string): boolean;
  inBaseEnv(name: string): boolean;
  passesThrough(name: string, passthrough: readonly string[]): boolean;
  /** The caller's environment split: `env` for PM2 to hold (no secret-named variable), `secrets` for secrets.json. */
  daemonEnv(
    caller: NodeJS.ProcessEnv,
    configFile: string,
  ): { env: Record<string, string>; secrets: Record<string, string>; stateDir: string };
  /** Adds to the state folder's secrets.json (0600), keeping what an earlier start saved. */
  saveSecrets(stateDir: string, values: Record<string, string>): void;
  loadSecrets(stateDir: string): Record<string, string>;
  removeSecrets(stateDir: string): void;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const mod = require(path.join(PACKAGE_ROOT, 'scripts', 'daemon-env.js')) as DaemonEnvModule;

export const {
  SECRETS_FILE,
  BASE_ENV_NAMES,
  PASSTHROUGH_PATTERN,
  isSecretName,
  inBaseEnv,
  passesThrough,
  daemonEnv,
  saveSecrets,
  loadSecrets,
  removeSecrets,
} = mod;
