// Every Node example in examples/ runs here as a user would run it (`tsx examples/<name>.ts` with
// the environment variables its header documents), against real components on 127.0.0.1: the
// oidc-provider fixture and its resource server, small loopback APIs, a real redis-server and a
// real Secret Service. `tokenwarden` resolves to src/ through test/tsconfig.json's `paths`, so
// the tests need no `npm run build`. Each test checks the exit (or clean shutdown), that the API
// got an authorized request with the credential in the header the example names and never in a
// URL, and that no secret shows up in what the example printed.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as keyring from '@napi-rs/keyring';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { approveDevice } from '../support/device-approval.js';
import { type ExampleRun, runExample } from '../support/example-runner.js';
import { runExclusively } from '../support/exclusive.js';
import { useOidcServer } from '../support/harness.js';
import { type SessionBus, startSecretService } from '../support/keyring.js';
import { bearerOf, type LoopbackApi, startLoopbackApi } from '../support/loopback-api.js';
import { DEVICE_CLIENT_ID } from '../support/oidc-server.js';
import { useRedisServer } from '../support/redis-server.js';
import { findLeaks } from '../support/sentinel.js';

// Up to three example processes at once, some with short-lived tokens: like the other suites of
// child processes, run alone.
runExclusively();

const op = useOidcServer({ devInteractions: true });
const redis = useRedisServer();

// The keychain examples need a real Secret Service, never skipped (as in keychain.test.ts); this
// process reads the keychain too, to search the example's output for the secrets it holds.
let bus: SessionBus;
beforeAll(async () => {
  bus = await startSecretService();
});
afterAll(async () => {
  await bus?.stop();
});

let cwd: string;
const apis: LoopbackApi[] = [];
beforeEach(async () => {
  // A working directory of its own: node-service writes its token file there.
  cwd = await mkdtemp(join(tmpdir(), 'tw-example-'));
  return async () => {
    await Promise.all(apis.splice(0).map((api) => api.close()));
    await rm(cwd, { recursive: true, force: true });
  };
});

async function api(...args: Parameters<typeof startLoopbackApi>): Promise<LoopbackApi> {
  const started = await startLoopbackApi(...args);
  apis.push(started);
  return started;
}

/** Every token the authorization server issued or was sent, so far. */
function tokensSeenByServer(): string[] {
  return op()
    .tokenRequests.flatMap((r) => [r.issuedAccessToken, r.issuedRefreshToken, r.sentRefreshToken])
    .filter((token): token is string => token !== undefined);
}

/** Every secret a keychain service holds (keys and sealed records). */
async function keychainSecrets(service: string): Promise<string[]> {
  return (await keyring.findCredentialsAsync(service)).map((entry) => entry.password);
}

function output(run: ExampleRun): string {
  return `${run.stdout()}\n${run.stderr()}`;
}

async function exitsCleanly(run: ExampleRun): Promise<void> {
  const { code, signal } = await run.closed;
  expect({ code, signal }, output(run)).toEqual({ code: 0, signal: null });
}

describe('examples/api-key.ts', () => {
  it('rotates a rejected key, calls the API with the new key in X-API-Key, and revokes it', async () => {
    const initialKey = `tw-example-key-${randomUUID()}`;
    const rotatedKey = `tw-example-key-${randomUUID()}`;
    let currentKey = initialKey;
    let revokedKey: string | undefined;
    // The configured key was revoked out of band: the API answers 401 and the example rotates.
    const keys = await api((request) => {
      if (request.method === 'POST' && request.url === '/keys') {
        currentKey = rotatedKey;
        return { status: 200, json: { key: rotatedKey, expiresAt: Date.now() + 3_600_000 } };
      }
      if (request.method === 'DELETE' && request.url === '/keys/current') {
        revokedKey = request.headers['x-api-key'] as string;
        return revokedKey === currentKey ? { status: 204 } : { status: 401 };
      }
      return { status: 404 };
    });
    const search = await api((request) => {
      if (request.headers['x-api-key'] !== rotatedKey) return { status: 401 };
      return { status: 200, json: { hits: [{ id: 'doc-1' }], query: JSON.parse(request.body) } };
    });

    const run = runExample('api-key', {
      cwd,
      env: {
        ...process.env,
        SEARCH_API_KEY: initialKey,
        SEARCH_API: search.origin,
        KEY_SERVICE: keys.origin,
      },
    });
    await exitsCleanly(run);

    expect(search.requests.map((r) => [r.method, r.url, r.headers['x-api-key'], r.status])).toEqual(
      [
        ['POST', '/v1/query', initialKey, 401],
        ['POST', '/v1/query', rotatedKey, 200],
      ],
    );
    expect(search.requests[1]?.body).toBe('{"q":"tokens"}');
    expect(search.requests.every((r) => r.headers['authorization'] === undefined)).toBe(true);
    expect(keys.requests.map((r) => [r.method, r.url, r.status])).toEqual([
      ['POST', '/keys', 200],
      ['DELETE', '/keys/current', 204],
    ]);
    expect(revokedKey).toBe(rotatedKey);
    // The key service's POST carries no key: the example authenticates it by network.
    expect(keys.requests[0]?.headers['x-api-key']).toBeUndefined();

    expect(run.stdout()).toMatch(/^search: new key until \d{4}-\d\d-\d\dT/m);
    expect(run.stdout()).toMatch(/^search: 200 /m);
    expect(run.stdout()).toMatch(/^search key: revoked$/m);
    const urls = [...search.requests, ...keys.requests].map((r) => r.url);
    expect(findLeaks(urls, [initialKey, rotatedKey])).toEqual([]);
    expect(findLeaks([output(run)], [initialKey, rotatedKey])).toEqual([]);
  });
});

describe('examples/custom-source.ts', () => {
  it('mints a token at the token service and sends it as a bearer token to the API only', async () => {
    const minted: string[] = [];
    const tokens = await api((request) => {
      if (request.method !== 'POST' || request.url !== '/mint') return { status: 404 };
      const token = `tw-example-minted-${randomUUID()}`;
      minted.push(token);
      return { status: 200, json: { token, ttl: 300 } };
    });
    const inventory = await api((request) =>
      minted.includes(bearerOf(request) ?? '')
        ? { status: 200, json: { items: [{ sku: 'A-1' }] } }
        : { status: 401 },
    );

    const run = runExample('custom-source', {
      cwd,
      env: {
        ...process.env,
        TOKEN_SERVICE: tokens.origin,
        SERVICE_NAME: 'inventory',
        INTERNAL_API: inventory.origin,
      },
    });
    await exitsCleanly(run);

    expect(tokens.requests.map((r) => [r.method, r.url, JSON.parse(r.body), r.status])).toEqual([
      ['POST', '/mint', { service: 'inventory' }, 200],
    ]);
    expect(tokens.requests[0]?.headers['authorization']).toBeUndefined();
    expect(minted).toHaveLength(1);
    expect(inventory.requests.map((r) => [r.method, r.url, bearerOf(r), r.status])).toEqual([
      ['GET', '/v1/items?limit=10', minted[0], 200],
    ]);

    expect(run.stdout()).toMatch(/^inventory: 200$/m);
    expect(run.stdout()).toMatch(/state: 'valid'/);
    const urls = [...tokens.requests, ...inventory.requests].map((r) => r.url);
    expect(findLeaks(urls, minted)).toEqual([]);
    expect(findLeaks([output(run)], minted)).toEqual([]);
  });
});

describe('examples/fetch-client.ts', () => {
  it('gets client-credentials tokens for a fetch-based client and ky, and refuses another origin', async () => {
    const server = op();
    const products = [
      { id: 'p/1', name: 'Widget' },
      { id: 'p-2', name: 'Gadget' },
    ];
    const clientIds: (string | undefined)[] = [];
    const catalog = await api(async (request) => {
      const info = await server.findAccessToken(bearerOf(request) ?? '');
      clientIds.push(info?.clientId);
      if (!info) return { status: 401 };
      if (request.url === '/v1/products') return { status: 200, json: products };
      if (request.url === `/v1/products/${encodeURIComponent('p/1')}`) {
        return { status: 200, json: products[0] };
      }
      return { status: 404 };
    });
    const { clientId, clientSecret } = server.clients.basic;
    const issuedBefore = server.tokenCounts('client_credentials').ok;

    const run = runExample('fetch-client', {
      cwd,
      env: {
        ...process.env,
        ISSUER: server.issuer,
        CLIENT_ID: clientId,
        CLIENT_SECRET: clientSecret,
        CATALOG_API: catalog.origin,
      },
    });
    await exitsCleanly(run);

    expect(catalog.requests.map((r) => [r.method, r.url, r.status])).toEqual([
      ['GET', '/v1/products', 200],
      ['GET', '/v1/products/p%2F1', 200],
    ]);
    expect(clientIds).toEqual([clientId, clientId]);
    // One token for both clients.
    expect(server.tokenCounts('client_credentials').ok - issuedBefore).toBe(1);

    expect(run.stdout()).toMatch(/^2 products$/m);
    expect(run.stdout()).toContain(`200 ${catalog.origin}/v1/products/p%2F1`);
    expect(run.stdout()).toMatch(/name: 'Widget'/);
    expect(run.stdout()).toMatch(/^refused: ERR_ORIGIN_NOT_ALLOWED$/m);
    const secrets = [clientSecret, ...tokensSeenByServer()];
    expect(
      findLeaks(
        catalog.requests.map((r) => r.url),
        secrets,
      ),
    ).toEqual([]);
    expect(findLeaks([output(run)], secrets)).toEqual([]);
  });
});

describe('examples/node-service.ts', () => {
  it('authenticates with private_key_jwt, seals its token file with a keychain key, and shuts down on Ctrl-C', async () => {
    const server = op();
    const { clientId, privateJwk } = server.clients.jwt;
    const resource = server.resource;
    const from = resource.requests.length;
    const tokenFrom = server.requests.length;

    const run = runExample('node-service', {
      cwd,
      env: {
        ...bus.childEnv(),
        ISSUER: server.issuer,
        CLIENT_ID: clientId,
        CLIENT_JWK: JSON.stringify(privateJwk),
        API: `${resource.origin}/v2/daily`,
      },
    });
    await run.waitFor(/^GET \/v2\/daily: 200$/m);
    const signalled = Date.now();
    run.process.kill('SIGINT');
    await exitsCleanly(run);
    expect(Date.now() - signalled).toBeLessThan(5_000);

    // The API got the token as a bearer token of the jwt client, for its own origin only.
    const calls = resource.requests.slice(from);
    expect(calls.map((r) => [r.method, r.url])).toEqual([['GET', '/v2/daily']]);
    expect(resource.statuses.slice(from)).toEqual([200]);
    const token = bearerOf(calls[0] as { headers: Record<string, string | string[] | undefined> });
    const grants = server.tokenRequests.filter((r) => r.issuedAccessToken === token);
    expect(grants.map((r) => [r.grantType, r.clientId])).toEqual([
      ['client_credentials', clientId],
    ]);
    const form = new URLSearchParams(
      server.requests.slice(tokenFrom).find((r) => r.url === '/token')?.body,
    );
    expect(form.get('client_assertion_type')).toBe(
      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    );
    expect(form.get('resource')).toBe(resource.origin);

    // The token file: sealed, owner-only; its key is in the keychain.
    const file = join(cwd, '.reports-tokens.jwe');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const sealed = await readFile(file, 'utf8');
    const keys = await keychainSecrets('reports-service');
    expect(keys.length).toBeGreaterThan(0);

    // On Ctrl-C: the metrics of the credential, then OpenTelemetry's last export.
    expect(run.stdout()).toMatch(/reports: new token \(\w+\) until \d{4}-/);
    expect(run.stdout()).toMatch(/"requests"/);
    expect(run.stdout()).toMatch(/tokenwarden\./);
    const secrets = [...tokensSeenByServer(), privateJwk.d as string, ...keys];
    expect(findLeaks([sealed], tokensSeenByServer())).toEqual([]);
    expect(findLeaks([output(run)], secrets)).toEqual([]);
  });
});

describe('examples/redis-fleet.ts', () => {
  it('runs two instances that share one rotating refresh token, redeemed once per rotation', async () => {
    const server = op();
    const { clientId, clientSecret } = server.clients.refresh;
    // Short-lived access tokens: every call of the example (every 5 s) needs a new one.
    server.setTtl({ accessToken: 3 });
    try {
      const minted = await server.mintRefreshToken({ client: 'refresh' });
      const from = server.tokenRequests.length;
      const resourceFrom = server.resource.requests.length;
      const key = randomBytes(32).toString('base64url');
      const env = {
        ...process.env,
        REDIS_URL: redis().url,
        TOKENWARDEN_KEY: key,
        ISSUER: server.issuer,
        CLIENT_ID: clientId,
        CLIENT_SECRET: clientSecret,
        REFRESH_TOKEN: minted.refreshToken,
        LEDGER_API: server.resource.origin,
      };
      const fleet = [
        runExample('redis-fleet', { cwd, env, budgetMs: 40_000 }),
        runExample('redis-fleet', { cwd, env, budgetMs: 40_000 }),
      ];
      const refreshes = () =>
        server.tokenRequests.slice(from).filter((r) => r.grantType === 'refresh_token');
      // Three rotations: the first start-up, then two expiries.
      const deadline = Date.now() + 30_000;
      while (refreshes().filter((r) => r.status === 200).length < 3) {
        if (Date.now() > deadline) throw new Error(`too few rotations:\n${fleet.map(output)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      for (const run of fleet) await run.waitFor(/: 200\n[\s\S]*: 200\n/);
      for (const run of fleet) run.process.kill('SIGTERM');
      for (const run of fleet) await exitsCleanly(run);

      // One redemption per rotation: each refresh token sent once, the first the minted one,
      // every later one the one issued by the rotation before it; none refused.
      const redeemed = refreshes();
      expect(redeemed.map((r) => r.status)).toEqual(redeemed.map(() => 200));
      expect(redeemed.map((r) => r.sentRefreshToken)).toEqual([
        minted.refreshToken,
        ...redeemed.slice(0, -1).map((r) => r.issuedRefreshToken),
      ]);
      expect(new Set(redeemed.map((r) => r.sentRefreshToken)).size).toBe(redeemed.length);

      // Both instances called the API with valid tokens only.
      const calls = server.resource.requests.slice(resourceFrom);
      expect(calls.length).toBeGreaterThanOrEqual(4);
      expect(calls.every((r) => r.url === '/v1/balance')).toBe(true);
      expect(server.resource.statuses.slice(resourceFrom)).toEqual(calls.map(() => 200));
      for (const run of fleet) {
        expect(run.stdout()).toMatch(/^pid \d+: 200$/m);
        expect(run.stdout()).toMatch(/^pid \d+: refreshes /m);
        expect(run.stderr(), output(run)).not.toMatch(/ERR_|reuse|anomal/i);
      }
      // At least one instance took a set over from the other instead of refreshing itself.
      expect(fleet.map((run) => run.stdout()).join('')).toMatch(/refresh \(shared/);

      const secrets = [clientSecret, key, ...tokensSeenByServer()];
      expect(
        findLeaks(
          calls.map((r) => r.url),
          secrets,
        ),
      ).toEqual([]);
      expect(findLeaks(fleet.map(output), secrets)).toEqual([]);
    } finally {
      server.setTtl({ accessToken: 300 });
    }
  }, 45_000);
});

describe('examples/device-flow-cli.ts', () => {
  it('signs in with a device code, reuses the keychain on the next run, and logs out', async () => {
    const server = op();
    const resource = server.resource;
    const from = resource.requests.length;
    const requestsFrom = server.requests.length;
    const tokenFrom = server.tokenRequests.length;
    const env = {
      ...bus.childEnv(),
      ISSUER: server.issuer,
      CLIENT_ID: DEVICE_CLIENT_ID,
      API: `${resource.origin}/v1/me`,
    };
    const deviceRequests = () =>
      server.requests.slice(requestsFrom).filter((r) => r.url === '/device/auth');

    // First run: the example prints where to sign in; the user does, on "another device".
    const first = runExample('device-flow-cli', { cwd, env });
    const [, uri, userCode] = await first.waitFor(
      /To sign in, open (\S+) and enter (\S+) \(before /,
    );
    await approveDevice(
      {
        verificationUri: new URL('/device', server.issuer).href,
        verificationUriComplete: uri as string,
        userCode: userCode as string,
        expiresAt: Date.now() + 600_000,
        interval: 5,
      },
      { via: 'complete-uri', login: 'example-user' },
    );
    await exitsCleanly(first);
    expect(deviceRequests()).toHaveLength(1);
    expect(JSON.parse(first.stdout())).toMatchObject({
      ok: true,
      path: '/v1/me',
      clientId: DEVICE_CLIENT_ID,
      sub: 'example-user',
    });

    // Second run: the tokens come from the keychain; no new sign-in.
    const second = runExample('device-flow-cli', { cwd, env });
    await exitsCleanly(second);
    expect(second.stderr()).not.toMatch(/To sign in/);
    expect(deviceRequests()).toHaveLength(1);
    expect(JSON.parse(second.stdout())).toMatchObject({ ok: true, sub: 'example-user' });

    const calls = resource.requests.slice(from);
    expect(calls.map((r) => [r.method, r.url])).toEqual([
      ['GET', '/v1/me'],
      ['GET', '/v1/me'],
    ]);
    expect(resource.statuses.slice(from)).toEqual([200, 200]);
    const held = await keychainSecrets('my-cli');
    expect(held.length).toBeGreaterThan(0);

    // --logout: revoked at the server (RFC 7009) and gone from the keychain.
    const third = runExample('device-flow-cli', { cwd, env, args: ['--logout'] });
    await exitsCleanly(third);
    expect(third.stderr()).toMatch(/^Signed out \(revoked\)\.$/m);
    expect(
      server.requests.slice(requestsFrom).filter((r) => r.url === '/token/revocation').length,
    ).toBeGreaterThan(0);
    expect(
      (await keyring.findCredentialsAsync('my-cli')).filter((e) => e.account.startsWith('record/')),
    ).toEqual([]);
    const issued = server.tokenRequests
      .slice(tokenFrom)
      .map((r) => r.issuedAccessToken)
      .filter((token): token is string => token !== undefined);
    expect(issued.length).toBeGreaterThan(0);
    for (const token of issued) expect(await server.findAccessToken(token)).toBeUndefined();

    const deviceCodes = server.requests
      .slice(requestsFrom)
      .map((r) => new URLSearchParams(r.body).get('device_code'))
      .filter((code): code is string => code !== null);
    expect(deviceCodes.length).toBeGreaterThan(0);
    const secrets = [...tokensSeenByServer(), ...deviceCodes, ...held];
    expect(
      findLeaks(
        calls.map((r) => r.url),
        secrets,
      ),
    ).toEqual([]);
    expect(findLeaks([first, second, third].map(output), secrets)).toEqual([]);
  }, 40_000);
});
