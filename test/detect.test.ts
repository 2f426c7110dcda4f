import { describe, expect, it } from 'vitest';
import { compileConfig } from '../lib/config/config';
import { detectLive } from '../lib/sentry/detect';
import { newWorkerRecord, type WorkerRecord } from '../lib/worker/record';

// detect.ts is pure: a worker record, its job and the time in, detections out.

const jobOf = (extra: Record<string, unknown>) => {
  const job = compileConfig(
    { name: 'x', jobs: { j: { command: ['x'], progress: { staleAfter: '4s' }, ...extra } } },
    'c.json',
    {},
  ).jobs.j;
  if (!job) throw new Error('job j missing');
  return job;
};

const launchedAt = 1_000_000;
const worker = (over: Partial<WorkerRecord>): WorkerRecord => ({
  ...newWorkerRecord({ id: 'j-1', job: 'j', taskId: '1', slot: 0, lane: 'cpu' }),
  status: 'running',
  attempt: 2,
  launchedAt,
  ...over,
});
const classes = (w: WorkerRecord, job: ReturnType<typeof jobOf>, now: number) =>
  detectLive(w, job, now, []).map((d) => d.class);

describe('progress_stale', () => {
  it('without a startup gate, counts from launch until the first progress, then from the last progress', () => {
    const job = jobOf({});
    expect(classes(worker({}), job, launchedAt + 3_900)).toEqual([]);
    expect(classes(worker({}), job, launchedAt + 4_100)).toEqual(['progress_stale']);
    expect(classes(worker({ lastProgressAt: launchedAt + 3_000 }), job, launchedAt + 6_900)).toEqual([]);
    expect(classes(worker({ lastProgressAt: launchedAt + 3_000 }), job, launchedAt + 7_100)).toEqual([
      'progress_stale',
    ]);
  });

  it('with a startup gate, nothing is stale inside the gate, and the progress clock starts when the marker appears', () => {
    const job = jobOf({ startup: { marker: 'ready', within: '60s' } });
    // A slow start (10 s to the marker) is the gate's business, not a progress failure.
    expect(classes(worker({ startupSeen: false }), job, launchedAt + 10_000)).toEqual([]);
    const ready = worker({ startupSeen: true, startupSeenAt: launchedAt + 10_000 });
    expect(classes(ready, job, launchedAt + 13_900)).toEqual([]);
    expect(classes(ready, job, launchedAt + 14_100)).toEqual(['progress_stale']);
    // A record saved before startupSeenAt existed still counts from launch.
    expect(classes(worker({ startupSeen: true, startupSeenAt: null }), job, launchedAt + 4_100)).toEqual([
      'progress_stale',
    ]);
  });

  it('a gate missed is startup_gate_missed, and each class is reported once an attempt', () => {
    const job = jobOf({ startup: { marker: 'ready', within: '5s' } });
    expect(classes(worker({ startupSeen: false }), job, launchedAt + 5_100)).toEqual(['startup_gate_missed']);
    expect(
      classes(worker({ startupSeen: false, detectedThisAttempt: ['startup_gate_missed'] }), job, launchedAt + 9_000),
    ).toEqual([]);
  });
});
