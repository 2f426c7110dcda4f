import type { StoredEvent } from '../lib/event-kinds';
import { SUPERVISOR_FAULTS } from './supervisor-faults';

// What the swarm did to healthy parts of itself: a detection no injected
// fault accounts for. A worker's is judged by its pid (a fault names the
// pid it struck); a daemon's by time, since a daemon's repair follows the
// fault on it within seconds and one after PM2's death or a reboot within
// two minutes.

interface InjectedFault {
  class: string;
  target: string;
  at: number;
  pid?: number;
}

const DAEMON_FAULT_WINDOW_MS = 20_000;
const SUPERVISOR_FAULT_WINDOW_MS = 120_000;

/** Detections on steady workers whose pid was never faulted. */
export function falseWorkerActions(ev: StoredEvent[], faults: InjectedFault[]): StoredEvent[] {
  const faultedPids = new Set(faults.map((f) => f.pid).filter(Boolean));
  return ev.filter(
    (e) =>
      e.kind.startsWith('detect.') && e.target.startsWith('worker:steady-') && !faultedPids.has(e.data.pid as number),
  );
}

/** A daemon found missing or stale with no fault on it just before, and no supervisor fault in the last two minutes. */
export function falseDaemonActions(ev: StoredEvent[], faults: InjectedFault[]): StoredEvent[] {
  const supervisor: readonly string[] = SUPERVISOR_FAULTS;
  return ev.filter((e) => {
    if (!e.kind.startsWith('detect.daemon_')) return false;
    const at = Date.parse(e.ts);
    return !faults.some(
      (f) =>
        f.at <= at &&
        ((f.target === e.target && at - f.at <= DAEMON_FAULT_WINDOW_MS) ||
          (supervisor.includes(f.class) && at - f.at <= SUPERVISOR_FAULT_WINDOW_MS)),
    );
  });
}
