// @ts-check
'use strict';
// SQLite's quick_check of swarm.db, in a process of its own, so a big
// database (minutes of checking) never holds up the watchdog's tick, and
// hang-guard never sees the watchdog stall. Table by table: one line of
// JSON per table as it goes, then the verdict. Read-only. SQLite calling the
// file corrupt or not a database is a verdict too; any other failure (a
// lock held too long, a missing file) is not, and exits 1.
const Database = require('better-sqlite3');

const CORRUPT = ['SQLITE_CORRUPT', 'SQLITE_NOTADB'];
const file = process.argv[2];
if (!file) {
  process.stderr.write('quick-check: expected the database file as argument\n');
  process.exit(2);
}

/** @param {unknown} err */
const isCorrupt = (err) =>
  CORRUPT.some((c) => String(/** @type {{ code?: unknown }} */ (err).code ?? '').startsWith(c));

/** @type {string[]} */
const problems = [];
try {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 10_000 });
  const tables = /** @type {{ name: string }[]} */ (
    db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all()
  );
  for (const { name } of tables) {
    let ok = false;
    try {
      const raw = /** @type {Record<string, unknown>[]} */ (
        db.pragma(`quick_check("${name.replace(/"/g, '""')}")`, { simple: false })
      );
      const rows = raw.map((r) => String(Object.values(r)[0]));
      ok = rows.length === 1 && rows[0] === 'ok';
      if (!ok) problems.push(...rows.map((r) => `${name}: ${r}`));
    } catch (err) {
      if (!isCorrupt(err)) throw err;
      problems.push(`${name}: ${/** @type {Error} */ (err).message}`);
    }
    process.stdout.write(`${JSON.stringify({ table: name, ok })}\n`);
  }
  db.close();
} catch (err) {
  if (!isCorrupt(err)) {
    process.stderr.write(`quick-check: ${/** @type {Error} */ (err).message}\n`);
    process.exit(1);
  }
  problems.push(/** @type {Error} */ (err).message);
}
process.stdout.write(
  `${JSON.stringify({ result: problems.length === 0 ? 'ok' : problems.slice(0, 20).join('; ') })}\n`,
);
