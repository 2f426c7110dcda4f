// A separate process that appends events as fast as it can: the concurrent
// writer test and the bench run several of these against one log. The log is
// made as a daemon makes it (lib/daemon-runtime.ts): projection, head anchor,
// and a redactor with a secret to look for, so the bench times what the
// swarm does.
import fs from 'node:fs';
import path from 'node:path';
import { ChainAnchor } from '../../lib/chain-anchor';
import { openDb } from '../../lib/db';
import { SqliteEventLog } from '../../lib/event-log';
import { PROJECTION_FILE } from '../../lib/projection';
import { Redactor } from '../../lib/redact';

const [stateDir, countText, writerName, batchText, projectText] = process.argv.slice(2);
if (!stateDir || !countText || !writerName)
  throw new Error('usage: append-writer STATE_DIR COUNT NAME [BATCH] [project|noproject]');
const count = Number(countText);
const batch = Number(batchText ?? '1');
const db = openDb(stateDir);
const log = new SqliteEventLog(db, {
  source: 'worker-sentry',
  runId: () => 'r-test',
  projection: projectText === 'noproject' ? null : { file: path.join(stateDir, PROJECTION_FILE) },
  anchor: ChainAnchor.in(stateDir),
  redactor: Redactor.fromEnvs({ BENCH_API_KEY: 'not-a-real-secret-but-long-enough' }),
});
// The bench starts every writer first and then creates the go file, so the
// rate it reports is appends, not Node's start-up.
const goFile = process.env.SWARM_BENCH_GO;
if (goFile) {
  if (process.env.SWARM_BENCH_READY) fs.writeFileSync(process.env.SWARM_BENCH_READY, '');
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (!fs.existsSync(goFile)) Atomics.wait(nap, 0, 0, 1);
}
const startedAt = performance.timeOrigin + performance.now();
const started = process.hrtime.bigint();
for (let i = 0; i < count; i += batch) {
  const n = Math.min(batch, count - i);
  log.appendMany(
    Array.from({ length: n }, (_, k) => ({
      kind: 'worker.launched' as const,
      target: `worker:${writerName}` as const,
      data: { writer: writerName, n: i + k },
    })),
  );
}
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(`${JSON.stringify({ writer: writerName, count, ms, startedAt, endedAt: startedAt + ms })}\n`);
log.close();
db.close();
