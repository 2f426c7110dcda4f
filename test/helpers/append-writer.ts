// A separate process that appends events as fast as it can: the concurrent
// writer test and the bench run several of these against one log.
import path from 'node:path';
import { openDb } from '../../lib/db';
import { SqliteEventLog } from '../../lib/event-log';
import { PROJECTION_FILE } from '../../lib/projection';

const [stateDir, countText, writerName, batchText, projectText] = process.argv.slice(2);
if (!stateDir || !countText || !writerName) throw new Error('usage: append-writer STATE_DIR COUNT NAME [BATCH] [project|noproject]');
const count = Number(countText);
const batch = Number(batchText ?? '1');
const db = openDb(stateDir);
const log = new SqliteEventLog(db, {
  source: 'worker-sentry',
  runId: () => 'r-test',
  projection: projectText === 'noproject' ? null : { file: path.join(stateDir, PROJECTION_FILE) },
});
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
process.stdout.write(`${JSON.stringify({ writer: writerName, count, ms })}\n`);
db.close();
