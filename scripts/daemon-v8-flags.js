// The V8 flags every daemon runs with (ecosystem.config.js), kept here so the
// bench's event-log writers run the same way as the daemons whose appends
// they stand for.
//
// Idle RSS per daemon is a target (docs/PERFORMANCE.md). A 1 MiB semi-space
// keeps V8's young generation from growing to tens of MiB in a process that
// allocates little, and scavenges of a small heap are cheap. --no-opt leaves
// out V8's optimizing compiler: the daemons wait on files, SQLite and PM2,
// not on JavaScript, and its code and feedback cost ~5 MiB each; measured,
// idle CPU did not rise with it. --optimize-for-size has V8 favour a small
// heap over speed in what is left: ~1.5 MiB less for the worker-sentry, the
// largest daemon.
const DAEMON_V8_FLAGS = ['--max-semi-space-size=1', '--no-opt', '--optimize-for-size'];

module.exports = { DAEMON_V8_FLAGS };
