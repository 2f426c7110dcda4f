// Holds an exclusive SQLite lock on the database named by argv[2] until its
// stdin closes, or for argv[3] ms when given: another program (or a person
// with the sqlite3 shell) in the way.
const Database = require('better-sqlite3');
const db = new Database(process.argv[2]);
db.exec('BEGIN EXCLUSIVE');
process.stdout.write('locked\n');
const release = () => {
  db.exec('COMMIT');
  db.close();
  process.exit(0);
};
if (process.argv[3]) setTimeout(release, Number(process.argv[3]));
process.stdin.resume();
process.stdin.on('end', release);
