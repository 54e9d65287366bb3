// Serves the browser app of examples/browser-app on 127.0.0.1, with everything it talks to:
//
//   npx tsx examples/browser-app/serve.ts [--token-lifetime <seconds>] [--port <port>]
//
// then open the printed URL (127.0.0.1 is a secure context, so WebCrypto, IndexedDB and Web Locks
// behave as on HTTPS). Nothing else to install or configure; no environment variables. It starts:
//
// - the page: index.html at `/` and `/callback` (the redirect URI), app.ts bundled by esbuild
//   from the library's source at `/app.js`, and `/config.json`;
// - an OAuth authorization server (oidc-provider, the fixture of the test suite) with
//   development sign-in pages (any user name and password are accepted) and the app registered
//   as a public client, with short-lived access tokens (default 10 s) so refreshes show;
// - an API at `/api/me` that accepts DPoP-bound tokens only (RFC 9449): it checks the proof's
//   signature, `typ`, `htm`, `htu`, `iat`, `jti` and `ath`, and asks the authorization server
//   (RFC 7662 introspection) whether the token is active and bound to the proof's key.
//
// Ctrl-C stops everything.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { type OidcServer, startOidcServer } from '../../test/support/oidc-server.js';
import type { AppConfig } from './app.js';

/** The app's client id at the authorization server. */
export const CLIENT_ID = 'browser-app';

/** Options of {@link startBrowserApp}. */
export interface BrowserAppOptions {
  /** Access-token lifetime, whole seconds. @default 10 */
  readonly tokenLifetime?: number;
  /** The page's port. @default 0 (any free port) */
  readonly port?: number;
}

/** The running app and its servers. */
export interface BrowserApp {
  /** The page's URL, `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** The authorization server (for tests: its records, its requests). */
  readonly op: OidcServer;
  /** Every answer of the API, oldest first. */
  readonly apiCalls: readonly { readonly status: number; readonly reason: string }[];
  close(): Promise<void>;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** Bundles app.ts; `tokenwarden` and its subpaths resolve to the library's source. */
async function bundle(): Promise<string> {
  const entries: Record<string, string> = {
    tokenwarden: '../../src/index.ts',
    'tokenwarden/browser': '../../src/browser/index.ts',
  };
  const result = await build({
    entryPoints: [here('./app.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    sourcemap: 'inline',
    logLevel: 'silent',
    plugins: [
      {
        name: 'tokenwarden-source',
        setup(builder) {
          builder.onResolve({ filter: /^tokenwarden(\/.*)?$/ }, ({ path }) => {
            const file = entries[path];
            return file ? { path: here(file) } : { errors: [{ text: `no entry ${path}` }] };
          });
        },
      },
    ],
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error('esbuild produced no output');
  return output.text;
}

function listen(server: Server, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const sha256 = (text: string) => createHash('sha256').update(text, 'ascii').digest('base64url');

/**
 * The API's check of a DPoP-bound request (RFC 9449 §7.1): `null` when it may pass, else why not.
 */
async function checkDpop(
  req: IncomingMessage,
  origin: string,
  seenJti: Set<string>,
  op: OidcServer,
): Promise<string | null> {
  const match = /^DPoP ([\w.~+/-]+=*)$/.exec(req.headers.authorization ?? '');
  if (!match) return 'not-dpop';
  const token = match[1] as string;
  const proof = req.headers.dpop;
  if (typeof proof !== 'string') return 'no-proof';
  let verified: Awaited<ReturnType<typeof jwtVerify>>;
  try {
    verified = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: ['ES256', 'EdDSA'],
      maxTokenAge: '60s',
      clockTolerance: 5,
    });
  } catch {
    return 'bad-proof';
  }
  const { payload, protectedHeader } = verified;
  const path = new URL(req.url ?? '/', origin).pathname;
  if (payload['htm'] !== req.method) return 'htm-mismatch';
  if (payload['htu'] !== `${origin}${path}`) return 'htu-mismatch';
  if (payload['ath'] !== sha256(token)) return 'ath-mismatch';
  if (typeof payload.jti !== 'string' || seenJti.has(payload.jti)) return 'jti-replay';
  seenJti.add(payload.jti);
  const introspection = await op.introspect(token);
  if (introspection['active'] !== true) return 'inactive-token';
  const cnf = introspection['cnf'] as { jkt?: unknown } | undefined;
  if (!protectedHeader.jwk || cnf?.jkt !== (await calculateJwkThumbprint(protectedHeader.jwk))) {
    return 'not-bound';
  }
  return null;
}

/** Starts the page, the authorization server and the API on 127.0.0.1. */
export async function startBrowserApp(options: BrowserAppOptions = {}): Promise<BrowserApp> {
  const [script, html] = await Promise.all([
    bundle(),
    import('node:fs/promises').then(({ readFile }) => readFile(here('./index.html'), 'utf8')),
  ]);
  let config: AppConfig | undefined;
  const page = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const send = (type: string, body: string) => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path === '/' || path === '/callback') send('text/html; charset=utf-8', html);
    else if (path === '/app.js') send('text/javascript; charset=utf-8', script);
    else if (path === '/config.json') send('application/json', JSON.stringify(config));
    else {
      res.writeHead(404);
      res.end();
    }
  });
  const pageOrigin = await listen(page, options.port ?? 0);

  const op = await startOidcServer({
    browserClients: [{ clientId: CLIENT_ID, origin: pageOrigin }],
    devInteractions: true,
    ttl: { accessToken: options.tokenLifetime ?? 10 },
  });

  const apiCalls: { status: number; reason: string }[] = [];
  const seenJti = new Set<string>();
  const api = createServer((req, res) => {
    void (async () => {
      const cors = {
        'access-control-allow-origin': pageOrigin,
        // The page must read a 401's reason and a DPoP nonce, as any API for SPAs must allow.
        'access-control-expose-headers': 'www-authenticate, dpop-nonce',
        vary: 'origin',
      };
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          ...cors,
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': 'authorization, dpop, content-type',
          'access-control-max-age': '600',
        });
        res.end();
        return;
      }
      const reply = (status: number, reason: string, body: unknown, headers = {}) => {
        apiCalls.push({ status, reason });
        res.writeHead(status, { ...cors, 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (new URL(req.url ?? '/', apiOrigin).pathname !== '/api/me') {
        reply(404, 'not-found', { error: 'not_found' });
        return;
      }
      const reason = await checkDpop(req, apiOrigin, seenJti, op).catch(() => 'check-failed');
      if (reason !== null) {
        reply(
          401,
          reason,
          { error: 'invalid_token' },
          { 'www-authenticate': 'DPoP algs="ES256 EdDSA", error="invalid_token"' },
        );
        return;
      }
      reply(200, 'ok', { ok: true, at: new Date().toISOString(), boundTo: 'your DPoP key' });
    })();
  });
  const apiOrigin = await listen(api, 0);
  config = { issuer: op.issuer, clientId: CLIENT_ID, api: apiOrigin };

  return {
    url: `${pageOrigin}/`,
    op,
    apiCalls,
    async close() {
      await Promise.all([close(page), close(api), op.close()]);
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: { 'token-lifetime': { type: 'string' }, port: { type: 'string' } },
  });
  const app = await startBrowserApp({
    tokenLifetime: Number(values['token-lifetime'] ?? 10),
    port: Number(values.port ?? 0),
  });
  console.log(
    `The browser app is at ${app.url} (sign in with any name and password). Ctrl-C stops it.`,
  );
  process.once('SIGINT', () => void app.close().then(() => process.exit(0)));
}
