import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestSwarm } from './helpers/swarm';
import { tmpDir, waitFor } from './helpers/tmp';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { rotate } = require('../scripts/rotate-files.js') as { rotate(file: string, keep: number): void };

// Files that only grow are rotated by size, keeping logs.keep generations:
// a worker's output log by its shim (no line lost), the session heartbeat by
// session-state-manager. And orchestrator-consensus's scores reach query and
// status.

describe('rotate', () => {
  it('moves FILE to FILE.1 and each generation up one, deleting what is past keep', () => {
    const dir = tmpDir('swarm-rotate-');
    const f = path.join(dir, 'log');
    for (let i = 1; i <= 4; i++) {
      fs.writeFileSync(f, `gen ${i}`);
      rotate(f, 2);
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['log.1', 'log.2']);
    expect(fs.readFileSync(`${f}.1`, 'utf8')).toBe('gen 4');
    expect(fs.readFileSync(`${f}.2`, 'utf8')).toBe('gen 3');
  });

  it('moves a link planted at a generation as a name, never writing through it', () => {
    const dir = tmpDir('swarm-rotate-');
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'untouched');
    const f = path.join(dir, 'log');
    fs.symlinkSync(victim, `${f}.1`);
    fs.writeFileSync(f, 'new');
    rotate(f, 2);
    expect(fs.lstatSync(`${f}.2`).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(`${f}.1`, 'utf8')).toBe('new');
    // Past keep, the link itself is deleted; what it pointed at stays.
    fs.writeFileSync(f, 'newer');
    rotate(f, 2);
    expect(fs.existsSync(`${f}.3`)).toBe(false);
    expect(fs.readFileSync(`${f}.2`, 'utf8')).toBe('new');
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
  });
});

const LINES = 1500;
const swarm = new TestSwarm({
  name: 'rotation',
  tick: '200ms',
  logs: { workerOutputMax: '4K', heartbeatMax: '2K', keep: 2 },
  lanes: { cpu: { kind: 'cpu', slots: 1, fill: 'slots' } },
  jobs: {
    // 1500 numbered lines of 11 bytes, 50 to a write, a write every 5 ms: about four rotations at 4K.
    chatty: {
      command: [
        process.execPath,
        '-e',
        `let i = 0; const t = setInterval(() => { let s = ''; for (let k = 0; k < 50 && i < ${LINES}; k++) s += 'line ' + String(++i).padStart(5, '0') + '\\n'; process.stdout.write(s); if (i >= ${LINES}) clearInterval(t); }, 5);`,
      ],
    },
  },
  queue: [{ job: 'chatty', id: 'c1' }],
});

beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

describe('rotation in a running swarm', () => {
  it("a worker's output log: rotated past workerOutputMax by its shim, keep generations, every kept line in order", async () => {
    await swarm.waitEvent('task.completed', 'task:c1');
    const dir = path.join(swarm.stateDir, 'workers', 'chatty-c1');
    const logs = fs
      .readdirSync(dir)
      .filter((f) => f.startsWith('output.log'))
      .sort();
    expect(logs).toEqual(['output.log', 'output.log.1', 'output.log.2']);
    for (const g of ['output.log.1', 'output.log.2']) {
      expect(fs.statSync(path.join(dir, g)).size).toBeGreaterThanOrEqual(4096);
      expect(fs.statSync(path.join(dir, g)).mode & 0o777).toBe(0o600);
    }
    // Oldest first, the kept generations are one unbroken run of lines ending with the last.
    const text = ['output.log.2', 'output.log.1', 'output.log']
      .map((g) => fs.readFileSync(path.join(dir, g), 'utf8'))
      .join('');
    const nums = text
      .trim()
      .split('\n')
      .map((l) => Number(/^line (\d+)$/.exec(l)?.[1]));
    expect(nums.at(-1)).toBe(LINES);
    expect(nums.every((n, i) => i === 0 || n === (nums[i - 1] as number) + 1)).toBe(true);
  });

  it('the session heartbeat: rotated past heartbeatMax, keep generations, each line whole', async () => {
    const runId = String(swarm.query().run?.id);
    const hb = path.join(swarm.stateDir, `session_state_${runId}.jsonl`);
    await waitFor('two heartbeat rotations', () => fs.existsSync(`${hb}.2`), 60_000, 200);
    await waitFor(
      'another rotation past keep',
      () =>
        fs.readFileSync(`${hb}.2`, 'utf8').length > 0 &&
        fs.statSync(`${hb}.2`).mtimeMs < fs.statSync(`${hb}.1`).mtimeMs,
      60_000,
      200,
    );
    expect(fs.existsSync(`${hb}.3`)).toBe(false);
    for (const g of [`${hb}.2`, `${hb}.1`]) {
      expect(fs.statSync(g).size).toBeGreaterThanOrEqual(2048);
      for (const line of fs.readFileSync(g, 'utf8').trim().split('\n'))
        expect((JSON.parse(line) as { runId: string }).runId).toBe(runId);
    }
  });

  it("orchestrator-consensus's scores are in query and status", async () => {
    const q = await waitFor(
      'scores with the completed task counted',
      () => {
        const s = swarm.query();
        return s.scores && s.scores.performance.tasksPerHour >= 1 ? s : null;
      },
      30_000,
      250,
    );
    expect(q.scores).toMatchObject({
      at: expect.any(String),
      deviation: expect.any(Number),
      efficiency: expect.any(Number),
      inputs: { slots: 1 },
    });
    expect(Date.parse(String(q.scores?.at))).toBeGreaterThan(Date.now() - 60_000);
    const status = swarm.ctl('status');
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(
      /^scores: deviation [\d.]+ from target, [1-9]\d* tasks\/h, efficiency [\d.]+ \(\d+s ago\)$/m,
    );
  });
});
