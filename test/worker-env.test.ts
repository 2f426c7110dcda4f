import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitSecrets, workerEnv } from '../lib/worker-env';
import { spawnSync } from 'node:child_process';
import { PM2, ROOT, TestSwarm } from './helpers/swarm';
import { waitFor } from './helpers/tmp';

// A worker's environment is the documented base, its job's env and what
// envPassthrough names, nothing else of the caller's; secret values sit
// neither in spec.json nor in PM2's copy of any app: the daemons read the
// ones they need from the state folder's secrets.json.

const SECRETS = { aws: 'aws-secret-9f8e7d6c', job: 'hf-job-token-123456', passed: 'myapp-key-55555a' };
const DUMP =
  "require('fs').writeFileSync(process.env.SWARM_CHECKPOINT_DIR + '/env.json', JSON.stringify(process.env)); setInterval(() => {}, 1000)";

const swarm = new TestSwarm(
  {
    name: 'envtest',
    tick: '250ms',
    lanes: { cpu: { kind: 'cpu', slots: 1, fill: 'slots' } },
    jobs: {
      dump: {
        command: ['node', '-e', DUMP],
        replicas: 1,
        env: { JOB_VAR: 'j', HF_TOKEN: SECRETS.job },
        envPassthrough: ['PASS_ME', 'MYAPP_*'],
      },
    },
  },
  {
    AWS_SECRET_ACCESS_KEY: SECRETS.aws,
    UNRELATED_VAR: 'nope',
    PASS_ME: 'yes',
    MYAPP_API_KEY: SECRETS.passed,
    MYAPP_MODE: 'fast',
    LC_TIME: 'C',
  },
);
const workerDir = path.join(swarm.stateDir, 'workers', 'dump-0');
const envFile = path.join(swarm.stateDir, 'checkpoints', 'dump-0', 'env.json');

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

describe('worker environment', () => {
  it('is built from the base, envPassthrough (names and prefixes), the job env and SWARM_* alone', () => {
    const env = workerEnv(
      {
        PATH: '/bin',
        HOME: '/root',
        LC_ALL: 'C',
        SECRET_X: 'abcdefgh',
        PASS_ME: '1',
        AWS_A: 'a',
        AWSX: 'no',
        SWARM_CONFIG: '/c',
        pm_id: '3',
      },
      { env: { J: 'j' }, envPassthrough: ['PASS_ME', 'AWS_*'] },
      { SWARM_WORKER_ID: 'w' },
    );
    expect(env).toEqual({
      PATH: '/bin',
      HOME: '/root',
      LC_ALL: 'C',
      PASS_ME: '1',
      AWS_A: 'a',
      J: 'j',
      SWARM_WORKER_ID: 'w',
    });
    expect(splitSecrets({ A: '1', API_KEY: 'k-123456', TOKENIZERS_PARALLELISM: 'false' })).toEqual({
      stored: { A: '1', API_KEY: '', TOKENIZERS_PARALLELISM: '' },
      secret: { API_KEY: 'k-123456', TOKENIZERS_PARALLELISM: 'false' },
    });
  });

  it('a real worker gets exactly that, with its secrets, and nothing else of the caller', async () => {
    const env = await waitFor(
      'the worker env dump',
      () => (fs.existsSync(envFile) ? (JSON.parse(fs.readFileSync(envFile, 'utf8')) as Record<string, string>) : null),
      45_000,
    );
    expect(env).toMatchObject({
      PASS_ME: 'yes',
      MYAPP_API_KEY: SECRETS.passed,
      MYAPP_MODE: 'fast',
      JOB_VAR: 'j',
      HF_TOKEN: SECRETS.job,
      LC_TIME: 'C',
      SWARM_WORKER_ID: 'dump-0',
    });
    expect(env.PATH).toBeTruthy();
    expect(env).not.toHaveProperty('AWS_SECRET_ACCESS_KEY');
    expect(env).not.toHaveProperty('UNRELATED_VAR');
    expect(Object.keys(env).filter((k) => /^(pm_|PM2_|axm_)/.test(k) || k === 'SWARM_CONFIG')).toEqual([]);
  });

  it('spec.json names the secret variables without their values, and the one-shot secret file is gone', () => {
    const spec = fs.readFileSync(path.join(workerDir, 'spec.json'), 'utf8');
    expect(JSON.parse(spec).env).toMatchObject({ HF_TOKEN: '', MYAPP_API_KEY: '', MYAPP_MODE: 'fast' });
    for (const s of Object.values(SECRETS)) expect(spec).not.toContain(s);
    expect(fs.existsSync(path.join(workerDir, 'secret-env.json'))).toBe(false);
  });

  it("PM2's copy of every app, daemons and worker, holds no secret and none of the caller's other variables; PM2_HOME is 0700; no event holds a secret", () => {
    const apps = JSON.parse(swarm.pm2('jlist').replace(/^[^[]*/, '')) as {
      name: string;
      pm2_env: Record<string, unknown>;
    }[];
    expect(apps.map((a) => a.name)).toEqual(
      expect.arrayContaining(['worker-sentry', 'hang-guard', 'swarm-worker-dump-0']),
    );
    for (const app of apps) {
      const held = JSON.stringify(app);
      for (const s of Object.values(SECRETS)) expect(held, app.name).not.toContain(s);
      expect(held, app.name).not.toContain('UNRELATED_VAR');
    }
    // The daemons' secret comes from the state folder instead, its file 0600.
    const secrets = path.join(swarm.stateDir, 'secrets.json');
    expect(JSON.parse(fs.readFileSync(secrets, 'utf8'))).toEqual({ MYAPP_API_KEY: SECRETS.passed });
    expect(fs.statSync(secrets).mode & 0o777).toBe(0o600);
    // The shim keeps the worker's output (output.log, rotated): PM2 keeps no copy of its own.
    expect(fs.readdirSync(path.join(swarm.pm2Home, 'logs')).filter((f) => f.startsWith('swarm-worker-'))).toEqual([]);
    // umask 022 would have made it 0755: swarmctl up made it, so it is 0700.
    expect(fs.statSync(swarm.pm2Home).mode & 0o777).toBe(0o700);
    const events = JSON.stringify(swarm.events());
    for (const s of Object.values(SECRETS)) expect(events).not.toContain(s);
  });

  it('`pm2 start ecosystem.config.js` again, from a shell full of secrets, while the swarm runs: PM2 still holds none', () => {
    const shellSecret = 'shell-token-31415926';
    const r = spawnSync(PM2, ['start', path.join(ROOT, 'ecosystem.config.js')], {
      env: { ...swarm.env, SHELL_TOKEN: shellSecret, AWS_SECRET_ACCESS_KEY: SECRETS.aws },
      cwd: swarm.dir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(0);
    const held = swarm.pm2('jlist');
    expect(held).toContain('worker-sentry');
    expect(held).not.toContain(shellSecret);
    expect(held).not.toContain(SECRETS.aws);
  });
});
