import net from 'node:net';
import path from 'node:path';
import { Pm2RpcError } from './errors';
import { pm2Home } from './pm2-home';

// A call to PM2's God daemon over its RPC socket (PM2_HOME/rpc.sock), with
// nothing of PM2's client loaded: the daemons need five calls, and PM2's
// module costs each of them ~8 MiB of memory for its CLI, its bus and its
// agents. The wire is PM2's own (pm2-axon's req/rep over amp framing):
//   frame   = 1 byte (version 1 << 4 | argument count), then per argument a
//             32-bit big-endian length and its bytes;
//   argument = "j:" + JSON, or "s:" + a string;
//   request = [{ type: 'call', method, args }, "s:" + id];
//   reply   = [{ args: [...] } or { error, stack }, "s:" + id].

const VERSION = 1;

export function encodeFrame(args: unknown[]): Buffer {
  const parts = args.map((a) => Buffer.from(typeof a === 'string' ? `s:${a}` : `j:${JSON.stringify(a ?? null)}`));
  const out = Buffer.alloc(1 + parts.reduce((n, p) => n + 4 + p.length, 0));
  out[0] = (VERSION << 4) | parts.length;
  let off = 1;
  for (const p of parts) {
    out.writeUInt32BE(p.length, off);
    p.copy(out, off + 4);
    off += 4 + p.length;
  }
  return out;
}

/** The whole frames at the front of `buf`, decoded, and what is left of it. */
export function decodeFrames(buf: Buffer): { frames: unknown[][]; rest: Buffer } {
  const frames: unknown[][] = [];
  let off = 0;
  for (;;) {
    if (buf.length < off + 1) break;
    const argc = (buf[off] as number) & 0xf;
    const args: unknown[] = [];
    let at = off + 1;
    let whole = true;
    for (let i = 0; i < argc; i++) {
      if (buf.length < at + 4) {
        whole = false;
        break;
      }
      const len = buf.readUInt32BE(at);
      if (buf.length < at + 4 + len) {
        whole = false;
        break;
      }
      const arg = buf.subarray(at + 4, at + 4 + len);
      const tag = arg.subarray(0, 2).toString('latin1');
      args.push(
        tag === 'j:'
          ? JSON.parse(arg.subarray(2).toString('utf8'))
          : tag === 's:'
            ? arg.subarray(2).toString('utf8')
            : arg,
      );
      at += 4 + len;
    }
    if (!whole) break;
    frames.push(args);
    off = at;
  }
  return { frames, rest: buf.subarray(off) };
}

interface Pending {
  method: string;
  resolve: (args: unknown[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Pm2Rpc {
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket> | null = null;
  private buffered: Buffer = Buffer.alloc(0);
  private ids = 0;
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly sockPath = path.join(pm2Home(), 'rpc.sock'),
    private readonly timeoutMs = 30_000,
  ) {}

  /** Calls `method` with `args`; resolves with what PM2 passed its callback after the error. */
  async call(method: string, ...args: unknown[]): Promise<unknown[]> {
    const socket = await this.connect();
    const id = `${process.pid}:${this.ids++}`;
    return new Promise<unknown[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Pm2RpcError(method, `no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      socket.write(encodeFrame([{ type: 'call', method, args }, id]));
    });
  }

  close(): void {
    this.socket?.destroy();
    this.drop(new Error('closed'));
  }

  private connect(): Promise<net.Socket> {
    if (this.socket) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(this.sockPath);
      s.once('connect', () => {
        this.socket = s;
        this.connecting = null;
        resolve(s);
      });
      s.on('data', (chunk: Buffer) => this.onData(chunk));
      s.on('error', (err) => {
        this.connecting = null;
        reject(new Pm2RpcError('connect', `${this.sockPath}: ${err.message}`));
      });
      s.on('close', () => {
        this.socket = null;
        this.buffered = Buffer.alloc(0);
        this.drop(new Error('PM2 closed its RPC socket'));
      });
    });
    return this.connecting;
  }

  private onData(chunk: Buffer): void {
    const { frames, rest } = decodeFrames(this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk);
    this.buffered = Buffer.from(rest);
    for (const [reply, id] of frames) {
      const p = this.pending.get(String(id));
      if (!p) continue; // a reply after its timeout: its caller has its error already
      this.pending.delete(String(id));
      clearTimeout(p.timer);
      const r = reply as { args?: unknown[]; error?: unknown };
      if (r && 'error' in r) p.reject(new Pm2RpcError(p.method, String(r.error)));
      else p.resolve(r?.args ?? []);
    }
  }

  private drop(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Pm2RpcError(p.method, err.message));
      this.pending.delete(id);
    }
  }
}
