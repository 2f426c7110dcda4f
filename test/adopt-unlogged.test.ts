import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../lib/config/config';
import { readEvents } from '../lib/event-log';
import { recordUnloggedLaunch } from '../lib/sentry/adopt';
import { newWorkerRecord } from '../lib/worker/record';
import { daemonContext } from './helpers/daemon-context';

// A sentry killed between starting a worker and recording worker.launched
// (the 2-minute soak found one: a start with no launch in the log). Its
// successor adopts the worker from its folder and records the launch then.

describe('a start the sentry could not record', () => {
  it('is recorded on adoption, once: every start of a worker is a worker.launched', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swarm-unlogged-'));
    const config = compileConfig(
      { name: 'u', stateDir: path.join(dir, 'state'), jobs: { j: { command: ['node'] } } },
      path.join(dir, 'c.json'),
      {},
    );
    fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
    const ctx = daemonContext('worker-sentry', config);
    try {
      ctx.log.append({ kind: 'worker.launched', target: 'worker:j-0', data: { attempt: 1 } });
      const w = newWorkerRecord({ id: 'j-0', job: 'j', taskId: null, slot: 0, lane: 'cpu', attempt: 2 });
      recordUnloggedLaunch(ctx, w);
      recordUnloggedLaunch(ctx, w);
      const launched = readEvents(ctx.db, { kindPrefix: 'worker.launched', target: 'worker:j-0' });
      expect(launched.map((e) => [e.data.attempt, e.data.recordedOnAdoption ?? false])).toEqual([
        [1, false],
        [2, true],
      ]);
    } finally {
      ctx.db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
