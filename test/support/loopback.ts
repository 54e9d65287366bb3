// Starts a test's HTTP server on 127.0.0.1 (a secure context for browsers, reachable only from
// this machine) at a free port, and stops it without waiting for idle keep-alive sockets.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A server listening on loopback. */
export interface LoopbackServer {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly port: number;
  /** Stops listening and drops open connections (keep-alive sockets would hold the process). */
  close(): Promise<void>;
}

/** Makes `server` listen on 127.0.0.1 at a free port; rejects if it cannot. */
export async function listenOnLoopback(server: Server): Promise<LoopbackServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
