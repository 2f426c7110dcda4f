import type http from 'node:http';
import type { TimerHandle } from '../clock';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { readEvents } from '../event-log';
import { tail, type DashboardDeps } from './dashboard-api';

// The dashboard's live feed: Server-Sent Events fed by the event log. One
// poll of swarm.db every POLL_MS serves every open page, and runs only while
// one is open; a new incident reaches a page within a second, no reload.

const POLL_MS = 250;
const FIRST_EVENTS = 100;

export class EventFeed {
  private readonly clients = new Set<http.ServerResponse>();
  private timer: TimerHandle | null = null;
  private lastSeq = 0;

  constructor(private readonly deps: DashboardDeps & { logger: Logger }) {}

  add(req: http.IncomingMessage, res: http.ServerResponse, sinceSeq: number): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
    });
    const first = tail(this.deps, sinceSeq, FIRST_EVENTS);
    for (const e of first) res.write(`id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
    if (this.clients.size === 0) this.lastSeq = first[first.length - 1]?.seq ?? Math.max(sinceSeq, this.maxSeq());
    this.clients.add(res);
    req.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stop();
    });
    this.schedule();
  }

  closeAll(): void {
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.stop();
  }

  private maxSeq(): number {
    return this.deps.db.prepare<[], { m: number | null }>('SELECT max(seq) AS m FROM events').get()?.m ?? 0;
  }

  private schedule(): void {
    if (this.timer || this.clients.size === 0) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = null;
      this.poll();
      this.schedule();
    }, POLL_MS);
  }

  private stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  private poll(): void {
    try {
      // Strictly after the last sent: tail() with 0 would mean "the latest", and skip the start of a new log.
      const events = readEvents(this.deps.db, { sinceSeq: this.lastSeq, limit: 500 });
      for (const e of events) {
        const frame = `id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`;
        for (const c of this.clients) c.write(frame);
        this.lastSeq = e.seq;
      }
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err) }, 'event feed poll failed');
    }
  }
}
