// credential.revoke() and warden.revokeAll() (RFC 7009) and introspect() (RFC 7662), against msw.
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  apiKey,
  clientCredentials,
  createWarden,
  customSource,
  introspect,
  type LogRecord,
  memoryStore,
  OAuthError,
  refreshToken,
  type TokenStore,
  type Warden,
  type WardenEvents,
} from '../../src/index.js';
import { clearDiscoveryCache } from '../../src/sources/discovery.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const ISSUER = 'https://auth.example.com';
const TOKEN = `${ISSUER}/oauth/token`;
const REVOKE = `${ISSUER}/oauth/revoke`;
const INTROSPECT = `${ISSUER}/oauth/introspect`;
const API = 'https://api.example.com';
const CLIENT_SECRET = SENTINEL.clientSecret;
const SECRETS = Object.values(SENTINEL);

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  server.resetHandlers();
  clearDiscoveryCache();
});
afterAll(() => server.close());

let warden: Warden | undefined;
afterEach(async () => {
  await warden?.close();
  warden = undefined;
});

/** A warden whose events, logs and results are kept for the leak scan. */
function newWarden(store: TokenStore = memoryStore()) {
  const seen: unknown[] = [];
  const logs: LogRecord[] = [];
  const revokes: WardenEvents['revoke'][0][] = [];
  warden = createWarden({ store, logger: (line) => logs.push(line) });
  warden.on('revoke', (event) => revokes.push(event));
  for (const name of ['refresh-error', 'reauth-required', 'revoke'] as const) {
    warden.on(name, (event) => seen.push(event));
  }
  return { warden, seen, logs, revokes, store };
}

/** A token endpoint answering with the sentinel tokens (numbered after the first). */
function tokenEndpoint(withRefresh: boolean) {
  let issued = 0;
  server.use(
    http.post(TOKEN, () => {
      issued++;
      const suffix = issued === 1 ? '' : `-${issued}`;
      return HttpResponse.json({
        access_token: `${SENTINEL.accessToken}${suffix}`,
        token_type: 'Bearer',
        expires_in: 300,
        ...(withRefresh ? { refresh_token: `${SENTINEL.refreshToken}${suffix}` } : {}),
      });
    }),
  );
  return () => issued;
}

/** A revocation endpoint that answers with `respond` and records every form it receives. */
function revocationEndpoint(respond: (form: URLSearchParams, n: number) => Response) {
  const forms: URLSearchParams[] = [];
  server.use(
    http.post(REVOKE, async ({ request }) => {
      const form = new URLSearchParams(await request.text());
      forms.push(form);
      return respond(form, forms.length);
    }),
  );
  return forms;
}

const server200 = () => new HttpResponse(null, { status: 200 });

function oauthOptions() {
  return {
    tokenEndpoint: TOKEN,
    revocationEndpoint: REVOKE,
    clientId: 'app',
    clientSecret: CLIENT_SECRET,
  };
}

function refreshCredential(w: Warden, id = 'rt') {
  return w.register(id, {
    source: refreshToken({ ...oauthOptions(), refreshToken: 'configured-refresh-token' }),
    origins: [API],
  });
}

function ccCredential(w: Warden, id = 'cc') {
  return w.register(id, { source: clientCredentials(oauthOptions()), origins: [API] });
}

const hints = (forms: URLSearchParams[]) =>
  forms.map((f) => [f.get('token_type_hint'), f.get('token')]);

describe('credential.revoke() with RFC 7009', () => {
  it('revokes the refresh token first, then the access token, each with its hint', async () => {
    tokenEndpoint(true);
    const forms = revocationEndpoint(server200);
    const { warden: w, revokes, seen, logs, store } = newWarden();
    const cred = refreshCredential(w);
    await cred.getToken();
    expect(await store.get('rt')).toBeDefined();

    const result = await cred.revoke();

    expect(hints(forms)).toEqual([
      ['refresh_token', SENTINEL.refreshToken],
      ['access_token', SENTINEL.accessToken],
    ]);
    expect(result).toEqual({
      id: 'rt',
      outcome: 'revoked',
      revokedAtServer: true,
      tokens: ['refresh_token', 'access_token'],
      failures: [],
      superseded: { revoked: 0, failed: 0 },
      wipedLocally: true,
    });
    expect(revokes).toEqual([
      {
        id: 'rt',
        outcome: 'revoked',
        revokedAtServer: true,
        tokens: ['refresh_token', 'access_token'],
        failed: [],
      },
    ]);
    expect(await store.get('rt')).toBeUndefined();
    expect(cred.status().state).toBe('reauth-required');
    await expect(cred.getToken()).rejects.toMatchObject({ code: 'ERR_REAUTH_REQUIRED' });
    expect(findLeaks([result, ...seen, ...logs], SECRETS)).toEqual([]);
  });

  it('also revokes the access tokens it replaced that have not expired, oldest first', async () => {
    tokenEndpoint(false);
    const forms = revocationEndpoint(server200);
    const { warden: w, seen, logs } = newWarden();
    const cred = ccCredential(w);
    await cred.getToken();
    await cred.getToken({ forceRefresh: true });
    await cred.getToken({ forceRefresh: true });

    const result = await cred.revoke();

    // The current token first, then the two it replaced: each stays valid at the server until
    // it expires, so each is revoked too.
    expect(hints(forms)).toEqual([
      ['access_token', `${SENTINEL.accessToken}-3`],
      ['access_token', SENTINEL.accessToken],
      ['access_token', `${SENTINEL.accessToken}-2`],
    ]);
    expect(result).toMatchObject({
      outcome: 'revoked',
      tokens: ['access_token'],
      superseded: { revoked: 2, failed: 0 },
    });
    expect(findLeaks([result, ...seen, ...logs], SECRETS)).toEqual([]);
  });

  it('counts a replaced token the server did not revoke apart, without changing the outcome', async () => {
    tokenEndpoint(false);
    const forms = revocationEndpoint((form) =>
      form.get('token') === SENTINEL.accessToken
        ? HttpResponse.json({ error: 'invalid_request' }, { status: 400 })
        : server200(),
    );
    const { warden: w } = newWarden();
    const cred = ccCredential(w);
    await cred.getToken();
    await cred.getToken({ forceRefresh: true });
    const result = await cred.revoke();
    expect(forms).toHaveLength(2);
    expect(result).toMatchObject({
      outcome: 'revoked',
      revokedAtServer: true,
      failures: [],
      superseded: { revoked: 0, failed: 1 },
    });
  });

  it('does not revoke replaced tokens that have expired, nor any after forget()', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      tokenEndpoint(false);
      const forms = revocationEndpoint(server200);
      const { warden: w } = newWarden();
      const cred = ccCredential(w);
      await cred.getToken();
      await cred.getToken({ forceRefresh: true });
      // The first token (300 s) has expired; the second was issued at the same time.
      vi.setSystemTime(Date.now() + 301_000);
      await cred.getToken();
      const result = await cred.revoke();
      expect(hints(forms)).toEqual([['access_token', `${SENTINEL.accessToken}-3`]]);
      expect(result.superseded).toEqual({ revoked: 0, failed: 0 });

      await cred.getToken();
      await cred.getToken({ forceRefresh: true });
      await cred.forget();
      await cred.getToken();
      forms.length = 0;
      await cred.revoke();
      expect(hints(forms)).toEqual([['access_token', `${SENTINEL.accessToken}-6`]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('takes a 200 with any body as success', async () => {
    tokenEndpoint(true);
    const forms = revocationEndpoint(
      () =>
        new HttpResponse('<html>not json{', {
          status: 200,
          headers: { 'content-type': 'text/html' },
        }),
    );
    const { warden: w } = newWarden();
    const cred = refreshCredential(w);
    await cred.getToken();
    const result = await cred.revoke();
    expect(forms).toHaveLength(2);
    expect(result.outcome).toBe('revoked');
  });

  it('retries a 503 after its Retry-After, then succeeds', async () => {
    tokenEndpoint(true);
    const forms = revocationEndpoint((_form, n) =>
      n === 1
        ? new HttpResponse(null, { status: 503, headers: { 'retry-after': '1' } })
        : server200(),
    );
    const { warden: w } = newWarden();
    const cred = refreshCredential(w);
    await cred.getToken();
    const started = Date.now();
    const result = await cred.revoke();
    const elapsed = Date.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(hints(forms).map(([hint]) => hint)).toEqual([
      'refresh_token',
      'refresh_token',
      'access_token',
    ]);
    expect(result.outcome).toBe('revoked');
  });

  it('gives up after maxAttempts 503s, caps the wait, and still wipes', async () => {
    tokenEndpoint(false);
    const forms = revocationEndpoint(
      () => new HttpResponse(null, { status: 503, headers: { 'retry-after': '3600' } }),
    );
    const { warden: w, store } = newWarden();
    const cred = ccCredential(w);
    await cred.getToken();
    const started = Date.now();
    const result = await cred.revoke({ maxAttempts: 2, maxRetryWait: '50ms' });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(forms).toHaveLength(2);
    expect(result.outcome).toBe('failed');
    expect(result.revokedAtServer).toBe(false);
    expect(result.failures.map((f) => [f.token, f.code, f.status])).toEqual([
      ['access_token', 'ERR_HTTP_STATUS', 503],
    ]);
    expect(await store.get('cc')).toBeUndefined();
  });

  it('stops waiting for a Retry-After when the signal aborts', async () => {
    tokenEndpoint(false);
    revocationEndpoint(
      () => new HttpResponse(null, { status: 503, headers: { 'retry-after': '30' } }),
    );
    const { warden: w } = newWarden();
    const cred = ccCredential(w);
    await cred.getToken();
    const started = Date.now();
    const result = await cred.revoke({ signal: AbortSignal.timeout(100) });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(result.failures.map((f) => f.code)).toEqual(['ERR_ABORTED']);
    expect(result.wipedLocally).toBe(true);
  });

  it.each([
    ['a network error', () => HttpResponse.error(), 'ERR_NETWORK'],
    [
      'a 400 invalid_client',
      () => HttpResponse.json({ error: 'invalid_client' }, { status: 400 }),
      'ERR_OAUTH',
    ],
  ])('wipes every local copy when the server fails with %s', async (_name, respond, code) => {
    const issued = tokenEndpoint(false);
    revocationEndpoint(respond);
    const { warden: w, store, seen, logs, revokes } = newWarden();
    const cred = ccCredential(w);
    await cred.getToken();
    expect(issued()).toBe(1);

    const result = await cred.revoke();
    expect(result.outcome).toBe('failed');
    expect(result.failures).toHaveLength(1);
    const [failure] = result.failures;
    if (code === 'ERR_OAUTH') expect(failure?.error).toBeInstanceOf(OAuthError);
    else expect(failure?.code).toBe(code);
    expect(revokes).toEqual([
      expect.objectContaining({ revokedAtServer: false, failed: ['access_token'] }),
    ]);
    expect(await store.get('cc')).toBeUndefined();
    expect(cred.status().state).toBe('empty');

    // Client credentials: the next request fetches a new token.
    const next = await cred.getToken();
    expect(issued()).toBe(2);
    expect(next.reveal()).toBe(`${SENTINEL.accessToken}-2`);
    expect(findLeaks([result, ...seen, ...logs], SECRETS)).toEqual([]);
  });

  it('wipes and says "unsupported" when the server has no revocation endpoint', async () => {
    tokenEndpoint(false);
    const { warden: w, store } = newWarden();
    const cred = w.register('plain', {
      source: clientCredentials({
        tokenEndpoint: TOKEN,
        clientId: 'app',
        clientSecret: CLIENT_SECRET,
      }),
      origins: [API],
    });
    await cred.getToken();
    const result = await cred.revoke();
    expect(result).toMatchObject({ outcome: 'unsupported', revokedAtServer: false, tokens: [] });
    expect(await store.get('plain')).toBeUndefined();
    expect(cred.status().state).toBe('empty');
  });

  it('says "nothing-held" when there is no token', async () => {
    const forms = revocationEndpoint(server200);
    const { warden: w } = newWarden();
    const result = await ccCredential(w).revoke();
    expect(result.outcome).toBe('nothing-held');
    expect(forms).toHaveLength(0);
  });

  it('revokes the set another instance stored, even before this one loaded it', async () => {
    tokenEndpoint(true);
    const forms = revocationEndpoint(server200);
    const store = memoryStore();
    const first = createWarden({ store });
    try {
      await refreshCredential(first).getToken();
      const { warden: w } = newWarden(store);
      const result = await refreshCredential(w).revoke();
      expect(result.tokens).toEqual(['refresh_token', 'access_token']);
      expect(forms[0]?.get('token')).toBe(SENTINEL.refreshToken);
      expect(await store.get('rt')).toBeUndefined();
    } finally {
      await first.close();
    }
  });
});

describe('sources without RFC 7009', () => {
  it('apiKey calls its revoke callback with a context that prints no key', async () => {
    const revoke = vi.fn();
    const { warden: w, revokes, seen, logs } = newWarden();
    const cred = w.register('maps', {
      source: apiKey({ key: SENTINEL.apiKey, header: 'X-API-Key', revoke }),
      origins: [API],
    });
    await cred.getToken();
    const result = await cred.revoke();
    expect(revoke).toHaveBeenCalledTimes(1);
    const context = revoke.mock.calls[0]?.[0];
    expect(context.credentialId).toBe('maps');
    expect(context.signal).toBeInstanceOf(AbortSignal);
    expect(context.revealKey()).toBe(SENTINEL.apiKey);
    expect(findLeaks([{ ...context, revealKey: undefined }], SECRETS)).toEqual([]);
    expect(result).toMatchObject({ outcome: 'revoked', tokens: ['api_key'] });
    expect(revokes).toEqual([expect.objectContaining({ tokens: ['api_key'] })]);
    expect(findLeaks([result, ...seen, ...logs], SECRETS)).toEqual([]);
  });

  it('apiKey reports a throwing revoke callback, without the key, and still wipes', async () => {
    const { warden: w, store, seen, logs } = newWarden();
    const cred = w.register('maps', {
      source: apiKey({
        key: SENTINEL.apiKey,
        revoke: () => {
          throw new Error('provider down');
        },
      }),
      origins: [API],
    });
    await cred.getToken();
    const result = await cred.revoke();
    expect(result.outcome).toBe('failed');
    expect(result.failures.map((f) => [f.token, f.code])).toEqual([
      ['api_key', 'ERR_SOURCE_FAILED'],
    ]);
    expect(await store.get('maps')).toBeUndefined();
    expect(findLeaks([result, ...seen, ...logs], SECRETS)).toEqual([]);
  });

  it('rejects a revoke option that is not a function', () => {
    expect(() => apiKey({ key: 'k', revoke: 'yes' as never })).toThrow(/revoke must be a function/);
  });

  it('customSource calls its revoke callback with both tokens behind reveal functions', async () => {
    const revoke = vi.fn();
    const { warden: w, revokes, store, seen, logs } = newWarden();
    const mint = async () => ({
      accessToken: SENTINEL.accessToken,
      refreshToken: SENTINEL.refreshToken,
      expiresIn: 300,
    });
    const cred = w.register('internal', {
      source: customSource(mint, { revoke }),
      origins: [API],
    });
    await cred.getToken();
    const result = await cred.revoke();
    expect(revoke).toHaveBeenCalledTimes(1);
    const context = revoke.mock.calls[0]?.[0];
    expect(context.credentialId).toBe('internal');
    expect(context.signal).toBeInstanceOf(AbortSignal);
    expect(context.current).toMatchObject({ hasRefreshToken: true });
    expect(context.revealAccessToken()).toBe(SENTINEL.accessToken);
    expect(context.revealRefreshToken()).toBe(SENTINEL.refreshToken);
    const printable = { ...context, revealAccessToken: undefined, revealRefreshToken: undefined };
    expect(findLeaks([printable], SECRETS)).toEqual([]);
    expect(result).toMatchObject({ outcome: 'revoked', tokens: ['refresh_token', 'access_token'] });
    expect(revokes).toEqual([expect.objectContaining({ outcome: 'revoked' })]);
    expect(await store.get('internal')).toBeUndefined();
    expect(findLeaks([result, ...seen, ...logs], SECRETS)).toEqual([]);
  });

  it('customSource reports a throwing or hanging revoke callback, without a token, and still wipes', async () => {
    const cases: [() => unknown, string][] = [
      [
        () => {
          throw new Error(`provider down for ${SENTINEL.accessToken.length} chars`);
        },
        'ERR_SOURCE_FAILED',
      ],
      [() => new Promise<void>(() => {}), 'ERR_TIMEOUT'],
    ];
    for (const [revoke, code] of cases) {
      const { warden: w, store, seen, logs } = newWarden();
      const cred = w.register('internal', {
        source: customSource(async () => ({ accessToken: SENTINEL.accessToken, expiresIn: 300 }), {
          revoke: revoke as () => Promise<void>,
        }),
        origins: [API],
        timeout: '200ms',
      });
      await cred.getToken();
      const result = await cred.revoke();
      expect(result.outcome).toBe('failed');
      expect(result.failures.map((f) => [f.token, f.code])).toEqual([['access_token', code]]);
      expect(await store.get('internal')).toBeUndefined();
      expect(findLeaks([result, ...seen, ...logs], SECRETS)).toEqual([]);
    }
  });

  it('rejects a customSource revoke option that is not a function', () => {
    expect(() =>
      customSource(async () => ({ accessToken: 'a' }), { revoke: 'yes' as never }),
    ).toThrow(/revoke must be a function/);
  });

  it.each([
    ['an apiKey without callback', () => apiKey({ key: SENTINEL.apiKey })],
    [
      'a customSource without callback',
      () => customSource(async () => ({ accessToken: SENTINEL.accessToken, expiresIn: 300 })),
    ],
  ])('%s is wiped locally and reported as unsupported', async (_name, make) => {
    const { warden: w, store } = newWarden();
    const cred = w.register('local', { source: make(), origins: [API] });
    await cred.getToken();
    const result = await cred.revoke();
    expect(result).toMatchObject({ outcome: 'unsupported', wipedLocally: true });
    expect(await store.get('local')).toBeUndefined();
  });
});

describe('warden.revokeAll()', () => {
  it('revokes every credential in parallel and reports each, never rejecting half-way', async () => {
    tokenEndpoint(true);
    const forms = revocationEndpoint((form) =>
      form.get('token_type_hint') === 'access_token' && form.get('token')?.endsWith('-2')
        ? HttpResponse.error()
        : server200(),
    );
    const { warden: w, store, revokes } = newWarden();
    const rt = refreshCredential(w, 'rt');
    const cc = ccCredential(w, 'cc');
    const key = w.register('key', { source: apiKey({ key: SENTINEL.apiKey }), origins: [API] });
    await rt.getToken();
    await cc.getToken();
    await key.getToken();
    const closed = refreshCredential(w, 'gone');
    await closed.close();

    const results = await w.revokeAll();
    expect(results.map((r) => [r.id, r.outcome])).toEqual([
      ['rt', 'revoked'],
      // Its refresh token was revoked, its access token could not be.
      ['cc', 'partial'],
      ['key', 'unsupported'],
    ]);
    expect(results[1]?.failures.map((f) => [f.token, f.code])).toEqual([
      ['access_token', 'ERR_NETWORK'],
    ]);
    expect(forms).toHaveLength(4);
    expect(revokes.map((e) => e.id).sort()).toEqual(['cc', 'key', 'rt']);
    expect(await store.list?.()).toEqual([]);
  });
});

describe('introspect()', () => {
  function introspectionEndpoint(body: unknown, status = 200) {
    const seen: { form: URLSearchParams; authorization: string | null }[] = [];
    server.use(
      http.post(INTROSPECT, async ({ request }) => {
        seen.push({
          form: new URLSearchParams(await request.text()),
          authorization: request.headers.get('authorization'),
        });
        return HttpResponse.json(body as Record<string, unknown>, { status });
      }),
    );
    return seen;
  }

  const source = () => clientCredentials({ ...oauthOptions(), introspectionEndpoint: INTROSPECT });

  it.each([
    [{ active: true }, true],
    [{ active: 'true' }, false],
    [{ active: 1 }, false],
    [{ active: 'yes' }, false],
    [{ active: false }, false],
    [{ active: null }, false],
    [{}, false],
    [{ active: [true] }, false],
  ])('%j is active: %s', async (body, active) => {
    introspectionEndpoint(body);
    expect((await introspect(source(), 'some-token')).active).toBe(active);
  });

  it('posts the token with client authentication and returns the typed claims only', async () => {
    const seen = introspectionEndpoint({
      active: true,
      scope: 'a b',
      client_id: 'svc',
      exp: 1_900_000_000,
      sub: 42,
      aud: ['x', 'y'],
      refresh_token: 'never-copied',
    });
    const result = await introspect(source(), SENTINEL.accessToken, { hint: 'access_token' });
    expect(result).toEqual({
      active: true,
      scope: ['a', 'b'],
      clientId: 'svc',
      exp: 1_900_000_000,
      aud: ['x', 'y'],
    });
    expect(seen[0]?.form.get('token')).toBe(SENTINEL.accessToken);
    expect(seen[0]?.form.get('token_type_hint')).toBe('access_token');
    expect(seen[0]?.authorization).toMatch(/^Basic /);
  });

  it('finds the endpoint by discovery', async () => {
    server.use(
      http.get(`${ISSUER}/.well-known/oauth-authorization-server`, () =>
        HttpResponse.json({
          issuer: ISSUER,
          token_endpoint: TOKEN,
          introspection_endpoint: INTROSPECT,
        }),
      ),
    );
    introspectionEndpoint({ active: true });
    const discovered = clientCredentials({
      issuer: ISSUER,
      clientId: 'app',
      clientSecret: CLIENT_SECRET,
    });
    expect((await introspect(discovered, 't')).active).toBe(true);
  });

  it('fails with ERR_UNSUPPORTED without an endpoint, and with the status on errors', async () => {
    await expect(
      introspect(clientCredentials(oauthOptions()), SENTINEL.accessToken),
    ).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    introspectionEndpoint({ error: 'invalid_client' }, 401);
    const error = await introspect(source(), SENTINEL.accessToken).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OAuthError);
    expect(findLeaks([error], SECRETS)).toEqual([]);
  });
});
