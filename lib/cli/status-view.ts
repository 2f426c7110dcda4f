import { formatAge } from '../duration';
import { textTable } from '../text-table';
import { formatEta } from '../worker/progress-fields';
import type { Snapshot } from '../snapshot';
import type { WorkerView } from '../state-files';

// `swarmctl status` for a person: problems first, then tables with ages in words.

const table = (headers: string[], rows: string[][]): string => textTable(headers, rows, { rule: true });

const ageSince = (isoTs: string | null, now: number): string =>
  isoTs ? `${formatAge(now - Date.parse(isoTs))} ago` : '-';
const mib = (b: number | null): string => (b === null ? '-' : `${Math.round(b / 1048576)}M`);

/** What the worker says of its work: "21/50 best=0.031 (in_progress), eta 4m". */
const work = (p: WorkerView['progress']): string => {
  if (!p) return '-';
  const text = [p.summary, p.etaMs === null ? '' : formatEta(p.etaMs)].filter(Boolean).join(', ');
  return text || '-';
};

/** orchestrator-consensus's three numbers, in words, with their age. */
function scoresLine(sc: Snapshot['scores'], now: number): string {
  if (!sc) return 'scores: none yet (orchestrator-consensus writes them)';
  const adv = sc.performance.advancingPct === null ? '' : `, ${sc.performance.advancingPct}% of live workers advancing`;
  return `scores: deviation ${sc.deviation} from target, ${sc.performance.tasksPerHour} tasks/h${adv}, efficiency ${sc.efficiency} (${ageSince(sc.at, now)})`;
}

export function renderStatus(s: Snapshot): string {
  const now = Date.parse(s.generatedAt);
  const out: string[] = [];
  const flags = [s.run?.degraded ? 'DEGRADED' : '', s.run?.paused ? 'PAUSED' : ''].filter(Boolean).join(', ');
  const run = s.run
    ? `${s.run.id} ${s.run.status}${flags ? ` (${flags})` : ''}, started ${ageSince(s.run.startedAt, now)}`
    : 'no run yet';
  out.push(`swarm ${s.swarm}: ${run}`);
  out.push('');
  if (s.problems.length) {
    out.push('PROBLEMS');
    for (const p of s.problems) out.push(`  ! ${p}`);
  } else {
    out.push('No problems.');
  }
  out.push('');
  out.push('NEXT STEPS');
  for (const n of s.nextSteps) out.push(`  - ${n}`);
  out.push('');
  out.push(
    table(
      ['DAEMON', 'STATUS', 'PID', 'RESTARTS', 'LAST TICK'],
      s.daemons.map((d) => [
        d.name,
        d.status,
        String(d.pid ?? '-'),
        String(d.restarts),
        d.tickAgeMs === null ? '-' : `${formatAge(d.tickAgeMs)} ago`,
      ]),
    ),
  );
  out.push('');
  const order = ['quarantined', 'stale', 'backoff', 'starting', 'running', 'stopped', 'failed', 'completed'];
  const workers = [...s.workers].sort((a, b) => order.indexOf(a.status) - order.indexOf(b.status));
  out.push(
    workers.length
      ? table(
          ['WORKER', 'STATUS', 'PID', 'ATTEMPT', 'RESTARTS', 'PROGRESS', 'WORK', 'CPU', 'MEM', 'UP'],
          workers.map((w) => [
            w.id,
            w.status,
            String(w.pid ?? '-'),
            String(w.attempt),
            String(w.restarts),
            w.progressAgeMs === null ? '-' : `${formatAge(w.progressAgeMs)} ago`,
            work(w.progress),
            w.cpuPct === null ? '-' : `${w.cpuPct}%`,
            mib(w.memBytes),
            w.startedAt ? formatAge(now - Date.parse(w.startedAt)) : '-',
          ]),
        )
      : 'No workers.',
  );
  out.push('');
  const t = s.tasks;
  out.push(
    `tasks: ${t.queued} queued, ${t.running} running, ${t.completed} completed, ${t.failed} failed, ${t.quarantined} quarantined`,
  );
  out.push(`lanes: ${s.lanes.map((l) => `${l.name} ${l.busy}/${l.slots}`).join(', ')}`);
  out.push(scoresLine(s.scores, now));
  const recent = s.incidents.slice(-8).reverse();
  if (recent.length) {
    out.push('');
    out.push(
      table(
        ['INCIDENT', 'CLASS', 'TARGET', 'STATUS', 'OPENED'],
        recent.map((i) => [String(i.id), i.class, i.target, i.status, ageSince(i.openedAt, now)]),
      ),
    );
  }
  out.push('');
  out.push(`events: last seq ${s.events.lastSeq}`);
  return `${out.join('\n')}\n`;
}
