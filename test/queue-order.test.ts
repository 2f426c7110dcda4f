import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TestSwarm } from './helpers/swarm';

// Dependencies and priorities against real PM2: on one slot, the order
// tasks start in is the queue's order; a dependent starts only after all it
// waits for completed, and fails (dependency_failed) when one of them fails
// for good, as do its own dependents, so none is left waiting.

const SLEEP = path.join(ROOT, 'test', 'fixtures', 'sleep.js');
const SAY = path.join(ROOT, 'test', 'fixtures', 'say-and-exit.js');

const config = {
  name: 'order',
  tick: '250ms',
  lanes: { cpu: { kind: 'cpu', slots: 1, fill: 'slots' } },
  jobs: {
    nap: { command: ['node', SLEEP, '300'] },
    // Deterministic: quarantined at once, so it fails for good on its first attempt.
    broken: { command: ['node', SAY, 'SyntaxError: Unexpected token'] },
  },
  queue: [
    { job: 'nap', id: 'a' },
    { job: 'nap', id: 'low' },
    { job: 'nap', id: 'high', priority: 5 },
    { job: 'nap', id: 'b', after: ['a', 'high'] },
    { job: 'broken', id: 'x' },
    { job: 'nap', id: 'child', after: ['x'] },
    { job: 'nap', id: 'grandchild', after: ['child', 'a'] },
  ],
};

const swarm = new TestSwarm(config);
beforeAll(() => swarm.up(), 60_000);
afterAll(() => swarm.teardown());

describe('dependencies and priorities', () => {
  it('starts by priority, then in queue order, each dependent after all it waits for', async () => {
    // The quarantined task holds the run open for a person (its escalation): the queue's end is the last failure.
    await swarm.waitEvent('task.failed', 'task:grandchild', () => true, 90_000);
    const started = swarm.events({ kind: 'task.started' }).map((e) => e.target.slice('task:'.length));
    expect(started).toEqual(['high', 'a', 'low', 'b', 'x']);
    const doneAt = (id: string) => swarm.events({ kind: 'task.completed', target: `task:${id}` })[0]?.seq ?? Infinity;
    const startedAt = (id: string) => swarm.events({ kind: 'task.started', target: `task:${id}` })[0]?.seq ?? -1;
    expect(startedAt('b')).toBeGreaterThan(Math.max(doneAt('a'), doneAt('high')));
  }, 120_000);

  it('a dependency that fails for good fails its dependents and theirs with dependency_failed; none is left waiting', () => {
    const child = swarm.events({ kind: 'detect.dependency_failed', target: 'task:child' })[0];
    expect(child?.data).toMatchObject({ class: 'dependency_failed', dependency: 'x', dependencyStatus: 'quarantined' });
    const grandchild = swarm.events({ kind: 'detect.dependency_failed', target: 'task:grandchild' })[0];
    expect(grandchild?.data).toMatchObject({ dependency: 'child', dependencyStatus: 'failed' });
    expect(swarm.events({ kind: 'task.failed', target: 'task:grandchild' })[0]?.data.class).toBe('dependency_failed');
    const q = swarm.query();
    expect(q.tasks).toMatchObject({ queued: 0, running: 0, completed: 4, failed: 2, quarantined: 1 });
  });

  it('swarmctl submit takes --after and --priority, and refuses an unknown id, a cycle or a bad priority with exit 2 naming it', async () => {
    const unknown = swarm.ctl('submit', 'nap', '--id', 'n1', '--after', 'nope');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/--after nope: no such task/);
    const self = swarm.ctl('submit', 'nap', '--id', 'n1', '--after', 'n1');
    expect(self.status).toBe(2);
    expect(self.stderr).toMatch(/cannot wait for itself \(a cycle: n1 → n1\)/);
    const bad = swarm.ctl('submit', 'nap', '--id', 'n1', '--priority', 'high');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--priority "high": expected a whole number/);
    expect(swarm.events({ target: 'task:n1' })).toHaveLength(0);
    const ok = swarm.ctl('submit', 'nap', '--id', 'n1', '--after', 'a', '--after', 'b', '--priority', '9', '--json');
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ id: 'n1', after: ['a', 'b'], priority: 9 });
    await swarm.waitEvent('task.completed', 'task:n1', () => true, 60_000);
    // After a task that failed for good: it fails at once instead of waiting for ever.
    expect(swarm.ctl('submit', 'nap', '--id', 'n2', '--after', 'x').status).toBe(0);
    const failed = await swarm.waitEvent('task.failed', 'task:n2', () => true, 30_000);
    expect(failed.data.class).toBe('dependency_failed');
  }, 90_000);

  it('a config whose queue names an unknown task or makes a cycle is refused with exit 2 naming the field', () => {
    const other = new TestSwarm({
      ...config,
      queue: [
        { job: 'nap', id: 'p', after: ['q'] },
        { job: 'nap', id: 'q', after: ['r'] },
        { job: 'nap', id: 'r', after: ['p'] },
        { job: 'nap', id: 's', after: ['zz'] },
      ],
    });
    const r = other.ctl('query');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/queue\.3\.after: expected task ids of this queue; "zz" is none/);
    expect(r.stderr).toMatch(/queue\.0\.after: expected no cycle; these tasks wait for each other: p → q → r → p/);
  });
});
