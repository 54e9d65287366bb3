// "Another origin": a loopback server that stands for any host the token must never reach (an
// attacker's collector, a CDN, a partner API). It records only whether a request carried
// credentials, never their value, so the demo can prove what arrived without holding secrets.
import { createServer } from 'node:http';
import { listenOnLoopback } from '../test/support/loopback.js';

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
  const { origin, close } = await listenOnLoopback(server);
  return { origin, requests, close };
}
