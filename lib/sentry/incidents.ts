import { iso } from '../clock';
import type { Incident } from '../state-files';

// The sentry's incidents: one per detection, its actions, and how it ended.
// Kept bounded; the event log holds the full history.

const MAX_KEPT = 100;

export class IncidentBook {
  private readonly byId = new Map<number, Incident>();

  load(incidents: Incident[]): void {
    for (const i of incidents) this.byId.set(i.id, i);
  }

  open(id: number, cls: string, target: string, now: number): void {
    this.byId.set(id, { id, class: cls, target, status: 'open', openedAt: iso(now), closedAt: null, actions: [] });
    const ids = [...this.byId.keys()].sort((a, b) => a - b);
    for (const old of ids.slice(0, Math.max(0, ids.length - MAX_KEPT))) this.byId.delete(old);
  }

  addAction(id: number | null, actionId: number): void {
    if (id !== null) this.byId.get(id)?.actions.push(actionId);
  }

  setStatus(id: number, status: Incident['status']): void {
    const i = this.byId.get(id);
    if (i) i.status = status;
  }

  close(ids: number[], status: 'resolved' | 'escalated', now: number): void {
    for (const id of ids) {
      const i = this.byId.get(id);
      if (i) Object.assign(i, { status, closedAt: iso(now) });
    }
  }

  list(): Incident[] {
    return [...this.byId.values()];
  }
}
