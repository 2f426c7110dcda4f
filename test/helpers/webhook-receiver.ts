import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

// A real HTTP receiver for webhook tests. Its answer to each request comes
// from a script: 'fail' (500), 'hang' (no answer, ever) or 'accept' (200),
// by the request's number; past the script's end it accepts. It checks each
// body's signature when given the secret and keeps what it accepted.

export type Answer = 'fail' | 'hang' | 'accept';

export interface Received {
  seq: number;
  kind: string;
  body: Record<string, unknown>;
  signatureOk: boolean | null;
  answer: Answer;
}

export class WebhookReceiver {
  readonly requests: Received[] = [];
  private readonly server: http.Server;
  private readonly hung: http.ServerResponse[] = [];

  constructor(
    private readonly script: Answer[] = [],
    private readonly secret: string | null = null,
  ) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const answer = this.script[this.requests.length] ?? 'accept';
        const sig = req.headers['x-swarm-signature'];
        const expected = this.secret
          ? `sha256=${crypto.createHmac('sha256', this.secret).update(raw).digest('hex')}`
          : null;
        this.requests.push({
          seq: Number(req.headers['x-swarm-event-seq']),
          kind: String(req.headers['x-swarm-event-kind'] ?? ''),
          body: JSON.parse(raw) as Record<string, unknown>,
          signatureOk: expected === null ? null : sig === expected,
          answer,
        });
        if (answer === 'hang') return void this.hung.push(res);
        res.writeHead(answer === 'accept' ? 200 : 500, { 'content-type': 'text/plain' });
        res.end(answer === 'accept' ? 'ok' : 'try again');
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** The events it answered 200 to, in the order they came. */
  accepted(): Received[] {
    return this.requests.filter((r) => r.answer === 'accept');
  }

  async close(): Promise<void> {
    for (const r of this.hung) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
