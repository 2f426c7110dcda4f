import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A TCP port on 127.0.0.1 that nothing listens on now: for a server a test starts, or one that refuses. */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
