// The loopback peer of the benchmarks: an OAuth token endpoint and an API, run in its own process
// (so that its work does not share the client's event loop) and driven over HTTP.
//
//   POST /token/<client>   issues a JWT-sized token valid for `lifetime` ms, after `delay` ms
//                          (a 24-character opaque one to clients named short*)
//   GET  /api/<client>/... 200 {"ok":true} with a valid token of that client, else 401
//   GET  /_config?lifetime=&delay=   sets how the next tokens are issued
//   GET  /_stats, /_reset            per-client counts: token calls, API calls, 401s
//
// Started by startServer(), which forks this file and reads the port from its first line.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { jwtLikeToken } from './token.js';

export interface ClientStats {
  tokenCalls: number;
  apiCalls: number;
  rejected: number;
}

function serve(): void {
  let lifetime = 3_600_000;
  let delay = 0;
  let issued = 0;
  const issuedTo = new Map<string, { client: string; expiresAt: number }>();
  const stats = new Map<string, ClientStats>();
  const of = (client: string): ClientStats => {
    let entry = stats.get(client);
    if (!entry) {
      entry = { tokenCalls: 0, apiCalls: 0, rejected: 0 };
      stats.set(client, entry);
    }
    return entry;
  };
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const [, kind, client = ''] = url.pathname.split('/');
    if (kind === 'api') {
      const entry = of(client);
      entry.apiCalls++;
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      const grant = issuedTo.get(token);
      if (grant === undefined || Date.now() >= grant.expiresAt || grant.client !== client) {
        entry.rejected++;
        res.writeHead(401, {
          'www-authenticate': 'Bearer error="invalid_token"',
          'content-length': 0,
        });
        res.end();
        return;
      }
      json(res, 200, { ok: true });
      return;
    }
    if (kind === 'token') {
      req.resume();
      req.on('end', () => {
        of(client).tokenCalls++;
        const n = ++issued;
        const answer = () => {
          const expiresAt = Date.now() + lifetime;
          // Clients named short* get a 24-character opaque token, to show what depends on length.
          const token = client.startsWith('short')
            ? `opaque-${String(n).padStart(17, '0')}`
            : jwtLikeToken(client, n, Math.ceil(expiresAt / 1000));
          issuedTo.set(token, { client, expiresAt });
          json(res, 200, {
            access_token: token,
            token_type: 'Bearer',
            expires_in: lifetime / 1000,
          });
        };
        if (delay > 0) setTimeout(answer, delay);
        else answer();
      });
      return;
    }
    if (kind === '_config') {
      lifetime = Number(url.searchParams.get('lifetime') ?? lifetime);
      delay = Number(url.searchParams.get('delay') ?? delay);
      json(res, 200, { lifetime, delay });
      return;
    }
    if (kind === '_stats') {
      json(res, 200, Object.fromEntries(stats));
      return;
    }
    if (kind === '_reset') {
      stats.clear();
      json(res, 200, {});
      return;
    }
    json(res, 404, {});
  });
  server.keepAliveTimeout = 60_000;
  server.maxConnections = 10_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
  });
  process.on('disconnect', () => process.exit(0));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

export interface BenchServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  configure(options: { lifetime?: number; delay?: number }): Promise<void>;
  stats(): Promise<Record<string, ClientStats>>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Forks the server process and waits for its port. */
export async function startServer(): Promise<BenchServer> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n')[0];
      if (buffered.includes('\n') && line) resolve(Number(line));
    });
  });
  const origin = `http://127.0.0.1:${port}`;
  const get = async (path: string) => {
    const res = await fetch(`${origin}${path}`);
    return res.json() as Promise<unknown>;
  };
  return {
    origin,
    async configure({ lifetime, delay }) {
      const query = new URLSearchParams();
      if (lifetime !== undefined) query.set('lifetime', String(lifetime));
      if (delay !== undefined) query.set('delay', String(delay));
      await get(`/_config?${query}`);
    },
    stats: () => get('/_stats') as Promise<Record<string, ClientStats>>,
    async reset() {
      await get('/_reset');
    },
    close: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.stdin?.end();
        child.kill();
      }),
  };
}

if (process.argv.includes('--serve')) serve();
