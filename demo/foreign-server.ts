// "Another origin": a loopback server that stands for any host the token must never reach (an
// attacker's collector, a CDN, a partner API). It records only whether a request carried
// credentials, never their value, so the demo can prove what arrived without holding secrets.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ForeignRequest {
  readonly method: string;
  /** The path, without query. */
  readonly path: string;
  readonly hadAuthorization: boolean;
  readonly hadCookie: boolean;
}

export interface ForeignServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly requests: readonly ForeignRequest[];
  close(): Promise<void>;
}

export async function startForeignServer(): Promise<ForeignServer> {
  const requests: ForeignRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0] ?? '/',
      hadAuthorization: req.headers.authorization !== undefined,
      hadCookie: req.headers.cookie !== undefined,
    });
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ collected: req.headers.authorization !== undefined }));
  });
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
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets of the client would otherwise hold the process open.
        server.closeAllConnections();
      }),
  };
}
