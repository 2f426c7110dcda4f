import { BASE_ENV_NAMES, inBaseEnv, isSecretName, PASSTHROUGH_PATTERN, passesThrough } from './daemon-env';

// What a worker's environment is made of, and nothing more: a documented
// base, the job's own `env`, the caller's variables the job names in
// `envPassthrough`, and Swarm's SWARM_* variables. The rest of the caller's
// environment (AWS_SECRET_ACCESS_KEY, PGPASSWORD, a shell's history of
// exports) never reaches a worker, as systemd gives a unit only what it
// names.

export { BASE_ENV_NAMES, PASSTHROUGH_PATTERN };

export function workerEnv(
  caller: NodeJS.ProcessEnv,
  job: { env: Record<string, string>; envPassthrough: readonly string[] },
  vars: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(caller))
    if (v !== undefined && !k.startsWith('SWARM_') && (inBaseEnv(k) || passesThrough(k, job.envPassthrough)))
      env[k] = v;
  return { ...env, ...job.env, ...vars };
}

/**
 * The environment split for storage: `stored` may be written to spec.json
 * (a secret-named variable keeps its name, its value blanked), `secret` holds
 * the values that go to the shim once, in a file it deletes on reading.
 */
export function splitSecrets(env: Record<string, string>): {
  stored: Record<string, string>;
  secret: Record<string, string>;
} {
  const stored: Record<string, string> = {};
  const secret: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (isSecretName(k)) {
      stored[k] = '';
      secret[k] = v;
    } else stored[k] = v;
  }
  return { stored, secret };
}
