// @ts-check
'use strict';
// The environment rules, in one place: which names are secrets, the base a
// daemon and a worker get from the caller, and what PM2 holds for the
// daemons: a clean environment with no secret-named variable in it, because
// PM2 shows an app's environment to anyone who runs `pm2 env`, `pm2 jlist`
// or reads dump.pm2. The secrets the swarm needs (the PostgreSQL password,
// secret-named variables a job passes through) go to the state folder's
// secrets.json, 0600, and each daemon reads them back at start
// (lib/daemon-main.ts). Plain CommonJS, like entry.js: ecosystem.config.js,
// which PM2 loads with require(), and the worker shim use it too; the
// TypeScript side reaches it through lib/daemon-env.ts.
const fs = require('node:fs');
const path = require('node:path');

const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD/i;
const SECRETS_FILE = 'secrets.json';
const SECRETS_READ_LIMIT = 1024 * 1024;
/** The base every daemon and every worker (lib/worker-env.ts) gets from the caller, with LC_*. */
const BASE_ENV_NAMES = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TERM'];
/** An envPassthrough entry: a variable's name, or a prefix ending in `*` (`AWS_*`). */
const PASSTHROUGH_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*\\*?$';
/** Connection settings hang-guard's pg driver reads as libpq does; PGPASSWORD is a secret and goes the other way. */
const PG = ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGPASSFILE', 'PGSSLMODE', 'PGCONNECT_TIMEOUT'];
/** Which SLURM cluster worker-sentry submits to, for slurm lanes (docs/slurm.md). */
const SLURM = ['SLURM_CONF'];

/** Named like a credential: KEY, TOKEN, SECRET or PASSWORD (PGPASSWORD too). @param {string} name */
function isSecretName(name) {
  return SECRET_NAME.test(name);
}

/** In the base: one of BASE_ENV_NAMES, or a locale category. @param {string} name */
function inBaseEnv(name) {
  return BASE_ENV_NAMES.includes(name) || name.startsWith('LC_');
}

/** Named by an envPassthrough list, exactly or by prefix. @param {string} name @param {readonly string[]} passthrough */
function passesThrough(name, passthrough) {
  return passthrough.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/**
 * What a config's daemons need of the caller's environment, read from the raw
 * JSON (ecosystem.config.js cannot compile the config): each job's
 * envPassthrough, postgres.passwordEnv, notify[].secretEnv and the state folder.
 * @param {string} configFile @param {NodeJS.ProcessEnv} env
 * @returns {{ passthrough: string[], passwordEnv: string | null, notifySecrets: string[], stateDir: string }}
 */
function configNeeds(configFile, env) {
  /** @type {any} */
  let raw = {};
  try {
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch {
    // A config that cannot be read is the daemons' to report, with the reason, when they load it.
  }
  const jobs = raw && typeof raw.jobs === 'object' && raw.jobs ? Object.values(raw.jobs) : [];
  const passthrough = jobs.flatMap((j) =>
    j && Array.isArray(j.envPassthrough)
      ? j.envPassthrough.filter((/** @type {unknown} */ x) => typeof x === 'string')
      : [],
  );
  const passwordEnv =
    raw && raw.postgres && typeof raw.postgres.passwordEnv === 'string' ? raw.postgres.passwordEnv : null;
  // The variables that sign webhook bodies (notify[].secretEnv): operator-gateway reads them from secrets.json.
  const notifySecrets = Array.isArray(raw?.notify)
    ? raw.notify.flatMap((/** @type {any} */ n) => (n && typeof n.secretEnv === 'string' ? [n.secretEnv] : []))
    : [];
  const stateDir = env.SWARM_STATE_DIR
    ? path.resolve(env.SWARM_STATE_DIR)
    : path.resolve(path.dirname(configFile), typeof raw.stateDir === 'string' ? raw.stateDir : 'state');
  return { passthrough, passwordEnv, notifySecrets, stateDir };
}

/**
 * Splits the caller's environment: `env` for PM2 to hold (base, PG settings,
 * SWARM_*, what jobs pass through, none secret-named), `secrets` for
 * secrets.json (secret-named variables the config asks for).
 * @param {NodeJS.ProcessEnv} caller @param {string} configFile
 */
function daemonEnv(caller, configFile) {
  const needs = configNeeds(configFile, caller);
  /** @type {Record<string, string>} */
  const env = {};
  /** @type {Record<string, string>} */
  const secrets = {};
  for (const [k, v] of Object.entries(caller)) {
    if (v === undefined) continue;
    const wanted =
      inBaseEnv(k) ||
      PG.includes(k) ||
      SLURM.includes(k) ||
      k.startsWith('SWARM_') ||
      passesThrough(k, needs.passthrough);
    const secretWanted =
      k === 'PGPASSWORD' ||
      k === needs.passwordEnv ||
      needs.notifySecrets.includes(k) ||
      passesThrough(k, needs.passthrough);
    if (isSecretName(k)) {
      if (secretWanted) secrets[k] = v;
    } else if (wanted) env[k] = v;
  }
  return { env, secrets, stateDir: needs.stateDir };
}

/**
 * Adds these values to secrets.json (0600), keeping what an earlier start
 * saved and this caller does not have: a later `up` from a shell without
 * PGPASSWORD must not take the password away from hang-guard.
 * @param {string} stateDir @param {Record<string, string>} values
 */
function saveSecrets(stateDir, values) {
  if (Object.keys(values).length === 0) return;
  const file = path.join(stateDir, SECRETS_FILE);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const merged = { ...loadSecrets(stateDir), ...values };
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(
    tmp,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
    0o600,
  );
  try {
    fs.writeSync(fd, JSON.stringify(merged));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/**
 * secrets.json as saved, or {} when there is none. A file that is not a
 * regular file, too big or not an object of strings is ignored: it holds no
 * secret Swarm wrote.
 * @param {string} stateDir @returns {Record<string, string>}
 */
function loadSecrets(stateDir) {
  const file = path.join(stateDir, SECRETS_FILE);
  let fd;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return {};
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > SECRETS_READ_LIMIT) return {};
    const parsed = JSON.parse(fs.readFileSync(fd, 'utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    /** @type {Record<string, string>} */
    const out = {};
    for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v;
    return out;
  } catch {
    return {};
  } finally {
    fs.closeSync(fd);
  }
}

function removeSecrets(/** @type {string} */ stateDir) {
  fs.rmSync(path.join(stateDir, SECRETS_FILE), { force: true });
}

module.exports = {
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
};
