import { loadSecrets } from '../daemon-env';
import type { CompiledNotify } from '../config/gateway-schema';
import { UsageError } from '../errors';
import type { StoredEvent } from '../event-kinds';
import { delivery } from '../notify/message';
import { post, type PostResult } from '../notify/post';
import { cliConfig, hasState, printJson, type GlobalOptions } from './cli-context';
import { EXIT } from './exit-codes';

// swarmctl notify test [NAME]: one test message to each endpoint (or NAME),
// sent from here, not through the daemon, and what came back. The message is
// a `notify.test` event with seq 0 in the endpoint's own format, signed as a
// real one would be, so a receiver's signature check is tested too.

export interface NotifyTestResult extends PostResult {
  endpoint: string;
  signed: boolean;
}

export async function notifyCommand(what: string, name: string | undefined, opts: GlobalOptions): Promise<number> {
  if (what !== 'test') throw new UsageError(`notify ${what}: expected \`swarmctl notify test [NAME]\``);
  const config = cliConfig(opts);
  const endpoints = name === undefined ? config.notify : config.notify.filter((e) => e.name === name);
  if (config.notify.length === 0) throw new UsageError(`the config ${config.file} has no notify endpoints`);
  if (endpoints.length === 0)
    throw new UsageError(
      `notify test ${name}: the config ${config.file} has no such endpoint; it has ${config.notify.map((e) => e.name).join(', ')}`,
    );
  // The shell may not hold the secret; the swarm's secrets.json does once `up` has run.
  const saved = hasState(config) ? loadSecrets(config.stateDir) : {};
  const results: NotifyTestResult[] = [];
  for (const ep of endpoints) results.push(await testOne(config.name, ep, (k) => process.env[k] ?? saved[k]));
  if (opts.json) printJson(results);
  else
    for (const r of results)
      process.stdout.write(
        r.ok
          ? `${r.endpoint}: delivered, HTTP ${r.status}${r.signed ? ', signed' : ''}${r.body ? `: ${r.body.trim().slice(0, 200)}` : ''}\n`
          : `${r.endpoint}: NOT delivered: ${r.error}${r.body ? `: ${r.body.trim().slice(0, 200)}` : ''}\n`,
      );
  return results.every((r) => r.ok) ? EXIT.done : EXIT.bad;
}

async function testOne(
  swarm: string,
  ep: CompiledNotify,
  secretOf: (name: string) => string | undefined,
): Promise<NotifyTestResult> {
  const secret = ep.secretEnv === null ? null : (secretOf(ep.secretEnv) ?? null);
  if (ep.secretEnv !== null && secret === null)
    return {
      endpoint: ep.name,
      signed: false,
      ok: false,
      status: null,
      error: `the secret ${ep.secretEnv} is not set here or in the state folder; nothing was sent`,
      body: '',
    };
  const event: StoredEvent = {
    seq: 0,
    ts: new Date().toISOString(),
    runId: '-',
    source: 'swarmctl',
    kind: 'notify.test',
    target: `notify:${ep.name}`,
    severity: 'info',
    actionId: null,
    hash: '',
    data: { message: `a test message from swarmctl to ${ep.name}; nothing is wrong` },
  };
  const res = await post(ep.url, delivery(ep, event, swarm, secret), ep.timeoutMs);
  return { endpoint: ep.name, signed: secret !== null, ...res };
}
