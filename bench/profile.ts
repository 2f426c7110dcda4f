// A look inside the control plane at N idle workers: every daemon runs with
// --cpu-prof, and the profiles land in bench/out/prof when the swarm stops.
// npx tsx bench/profile.ts [N] [sampleMs]; read a profile with Chrome DevTools (Performance, Load profile).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { TestSwarm, PM2 } from '../test/helpers/swarm';
import { waitFor } from '../test/helpers/tmp';
import { DAEMON_NAMES } from '../lib/event-kinds';

async function main(): Promise<void> {
  const workers = Number(process.argv[2] ?? '200');
  const sampleMs = Number(process.argv[3] ?? '30000');
  const out = path.join(__dirname, 'out', 'prof');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const swarm = new TestSwarm(
    {
      name: 'prof',
      tick: '1s',
      lanes: { cpu: { kind: 'cpu', slots: workers, fill: 'slots' } },
      jobs: { sleeper: { command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'] } },
      queue: Array.from({ length: workers }, (_, i) => ({ job: 'sleeper', id: `s${i}` })),
    },
    { SWARM_DAEMON_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${out}` },
  );
  try {
    swarm.up();
    await waitFor(
      'workers up',
      () => swarm.query().workers.filter((w) => w.status === 'running').length >= workers,
      workers * 6000,
      2000,
    );
    // Only the idle part matters: restart the daemons so their profiles start now.
    spawnSync(PM2, ['restart', ...DAEMON_NAMES], { env: swarm.env });
    await new Promise((r) => setTimeout(r, sampleMs));
    spawnSync(PM2, ['stop', 'all'], { env: swarm.env, timeout: 60_000 });
  } finally {
    swarm.teardown();
  }
  process.stdout.write(`${fs.readdirSync(out).join('\n')}\n`);
}
void main();
