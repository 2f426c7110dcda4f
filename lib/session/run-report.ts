import path from 'node:path';
import { ensureDir, writeFileAtomic } from '../atomic-file';
import type { Db } from '../db';
import { formatAge } from '../duration';
import type { RunRecord } from '../run-registry';
import { resultRows, RESULT_COLUMNS, cellText, type ResultRow } from '../task-results';
import { allTasks } from '../task-queue';
import { taskWorkerId } from '../worker-ids';

// The dated handoff the backtest swarm wrote when a run ended: what ran,
// what failed and why, what a person was asked and how that ended, the
// results, and what is left. session-state-manager writes it at
// run.completed (state/reports/RUN_ID.md and .json); `swarmctl report`
// prints it, or builds it live for a run still going.

export const REPORTS_DIR = 'reports';
export const REPORT_SCHEMA_VERSION = 1;

export interface IncidentSummary {
  class: string;
  detected: number;
  /** Detections with at least one verified action. */
  remediated: number;
  failedActions: number;
  escalated: number;
}

export interface EscalationSummary {
  id: number;
  target: string;
  reason: string;
  raisedAt: string;
  status: 'open' | 'resolved';
  resolvedAt: string | null;
  by: string | null;
}

export interface RunReport {
  schemaVersion: number;
  runId: string;
  swarm: string;
  status: RunRecord['status'];
  startedAt: string;
  completedAt: string | null;
  durationMs: number | null;
  tasks: Record<string, number>;
  results: ResultRow[];
  incidents: IncidentSummary[];
  escalations: EscalationSummary[];
  /** Every task that did not complete, with the last thing detected on it. */
  remains: { task: string; job: string; status: string; last: string | null }[];
}

type Row = { seq: number; ts: string; kind: string; target: string; action_id: number | null; data: string };

export function buildRunReport(db: Db, run: RunRecord): RunReport {
  const events = db
    .prepare<[string], Row>(
      "SELECT seq, ts, kind, target, action_id, data FROM events WHERE run_id = ? AND (kind LIKE 'detect.%' OR kind LIKE 'action.%' OR kind LIKE 'escalation.%') ORDER BY seq",
    )
    .all(run.id);
  const data = (r: Row) => JSON.parse(r.data) as Record<string, unknown>;
  const incidentClass = new Map<number, string>();
  const actionIncident = new Map<number, number>();
  const byClass = new Map<string, IncidentSummary>();
  const lastDetect = new Map<string, string>();
  const verified = new Set<number>();
  const escalations: EscalationSummary[] = [];
  const summary = (cls: string): IncidentSummary => {
    const s = byClass.get(cls) ?? { class: cls, detected: 0, remediated: 0, failedActions: 0, escalated: 0 };
    byClass.set(cls, s);
    return s;
  };
  for (const r of events) {
    const d = data(r);
    if (r.kind.startsWith('detect.')) {
      const cls = String(d.class ?? r.kind.slice('detect.'.length));
      incidentClass.set(r.seq, cls);
      summary(cls).detected += 1;
      lastDetect.set(r.target, `${cls}: ${String(d.message ?? '')}`);
    } else if (r.kind === 'action.proposed' && typeof d.incidentId === 'number') {
      actionIncident.set(r.seq, d.incidentId);
    } else if ((r.kind === 'action.verified' || r.kind === 'action.failed') && r.action_id !== null) {
      const inc = actionIncident.get(r.action_id);
      const cls = inc === undefined ? undefined : incidentClass.get(inc);
      if (cls === undefined || inc === undefined) continue;
      if (r.kind === 'action.failed') summary(cls).failedActions += 1;
      else if (!verified.has(inc)) {
        verified.add(inc);
        summary(cls).remediated += 1;
      }
    } else if (r.kind === 'escalation.raised') {
      const cls = typeof d.incidentId === 'number' ? incidentClass.get(d.incidentId) : undefined;
      if (cls) summary(cls).escalated += 1;
      escalations.push({
        id: r.seq,
        target: r.target,
        reason: String(d.reason ?? ''),
        raisedAt: r.ts,
        status: 'open',
        resolvedAt: null,
        by: null,
      });
    } else if (r.kind === 'escalation.resolved') {
      const e = escalations.find((x) => x.id === d.escalationId);
      if (e) Object.assign(e, { status: 'resolved', resolvedAt: r.ts, by: String(d.by ?? '') });
    }
  }
  const tasks = allTasks(db, run.id);
  const counts: Record<string, number> = { queued: 0, running: 0, completed: 0, failed: 0, quarantined: 0 };
  for (const t of tasks) counts[t.status] = (counts[t.status] ?? 0) + 1;
  const ended = run.completedAt ? Date.parse(run.completedAt) : null;
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    runId: run.id,
    swarm: run.name,
    status: run.status,
    startedAt: run.startedAt,
    completedAt: run.completedAt,
    durationMs: ended === null ? null : ended - Date.parse(run.startedAt),
    tasks: counts,
    results: resultRows(db, run.id),
    incidents: [...byClass.values()].sort((a, b) => b.detected - a.detected || a.class.localeCompare(b.class)),
    escalations,
    remains: tasks
      .filter((t) => t.status !== 'completed')
      .map((t) => ({
        task: t.id,
        job: t.job,
        status: t.status,
        last: lastDetect.get(`worker:${taskWorkerId(t.job, t.id)}`) ?? lastDetect.get(`task:${t.id}`) ?? null,
      })),
  };
}

const mdCell = (v: unknown): string => cellText(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const mdTable = (head: string[], rows: unknown[][]): string[] => [
  `| ${head.join(' | ')} |`,
  `| ${head.map(() => '---').join(' | ')} |`,
  ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
];

export function renderRunReport(r: RunReport): string {
  const t = r.tasks;
  const out = [
    `# Run ${r.runId} (swarm ${r.swarm})`,
    '',
    r.completedAt
      ? `Completed ${r.completedAt}, started ${r.startedAt}${r.durationMs === null ? '' : `, took ${formatAge(r.durationMs)}`}.`
      : `Still running, started ${r.startedAt}: this report is as of now.`,
    '',
    '## Tasks',
    '',
    `${t.completed ?? 0} completed, ${t.failed ?? 0} failed, ${t.quarantined ?? 0} quarantined, ${t.running ?? 0} running, ${t.queued ?? 0} queued.`,
    '',
    '## Results',
    '',
    ...(r.results.length
      ? mdTable(
          [...RESULT_COLUMNS],
          r.results.map((x) => RESULT_COLUMNS.map((c) => x[c])),
        )
      : ['No tasks.']),
    '',
    '## Incidents by class',
    '',
    ...(r.incidents.length
      ? mdTable(
          ['class', 'detected', 'remediated', 'actions failed', 'escalated'],
          r.incidents.map((i) => [i.class, i.detected, i.remediated, i.failedActions, i.escalated]),
        )
      : ['None.']),
    '',
    '## Escalations',
    '',
    ...(r.escalations.length
      ? r.escalations.map(
          (e) =>
            `- #${e.id} ${e.target}, raised ${e.raisedAt}: ${e.reason}. ${e.status === 'resolved' ? `Resolved ${e.resolvedAt} by ${e.by}.` : `Still open: \`swarmctl ack ${e.id}\` once handled.`}`,
        )
      : ['None.']),
    '',
    '## What remains',
    '',
    ...(r.remains.length
      ? r.remains.map((x) => `- ${x.task} (job ${x.job}): ${x.status}${x.last ? `; last detected ${x.last}` : ''}`)
      : ['Nothing: every task completed.']),
  ];
  const open = r.escalations.filter((e) => e.status === 'open').length;
  if (open) out.push(`- ${open} escalation(s) still open.`);
  return `${out.join('\n')}\n`;
}

/** Writes RUN_ID.md and RUN_ID.json under the state folder's reports/; returns the .md path. */
export function writeRunReport(stateDir: string, report: RunReport): string {
  const dir = path.join(stateDir, REPORTS_DIR);
  ensureDir(dir);
  const base = path.join(dir, report.runId);
  writeFileAtomic(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomic(`${base}.md`, renderRunReport(report));
  return `${base}.md`;
}
