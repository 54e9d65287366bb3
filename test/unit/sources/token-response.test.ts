import { once } from 'node:events';
import { createServer } from 'node:net';
import { base64url } from 'jose';
import { delay, HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { isTokenWardenError, OAuthError, type TokenWardenError } from '../../../src/errors.js';
import { clientCredentials } from '../../../src/sources/client-credentials.js';
import { parseTokenResponse } from '../../../src/sources/token-response.js';
import { makeContext, rejection, TOKEN_ENDPOINT, thrown, useMsw } from './support.js';

// Captured before msw patches the global, so the unreachable-endpoint test uses the real network.
const realFetch = globalThis.fetch;

const SENTINEL = 'SENTINEL-access-7f3a9c';
const REFRESH = 'SENTINEL-refresh-51bd02';
const RECEIVED_AT = 1_700_000_000_000;
const OPTIONS = { receivedAt: RECEIVED_AT, defaultLifetimeMs: 3_600_000 };

const server = useMsw();

function source() {
  return clientCredentials({
    tokenEndpoint: TOKEN_ENDPOINT,
    clientId: 'client',
    clientSecret: 'secret',
    scope: ['read'],
  });
}

function answer(body: BodyInit | null, status = 200, headers: Record<string, string> = {}) {
  server.use(http.post(TOKEN_ENDPOINT, () => new HttpResponse(body, { status, headers })));
}

function json(value: unknown, status = 200) {
  answer(JSON.stringify(value), status, { 'content-type': 'application/json' });
}

const valid = { access_token: SENTINEL, token_type: 'Bearer', expires_in: 3600 };

function jwt(payload: Record<string, unknown>, alg = 'RS256'): string {
  const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${encode({ alg, typ: 'JWT' })}.${encode(payload)}.c2lnbmF0dXJl`;
}

/** No token value in any field a caller can see. */
function expectNoSecret(error: unknown) {
  const seen = [
    String(error),
    (error as Error).message,
    (error as Error).stack ?? '',
    JSON.stringify(error),
    String((error as Error).cause ?? ''),
  ].join('\n');
  expect(seen).not.toContain(SENTINEL);
  expect(seen).not.toContain(REFRESH);
}

async function failure(): Promise<TokenWardenError> {
  const error = await rejection(source().obtain(makeContext()));
  expect(isTokenWardenError(error)).toBe(true);
  expectNoSecret(error);
  return error as TokenWardenError;
}

describe('parseTokenResponse: valid responses', () => {
  it('measures expires_in from the receipt time', () => {
    const set = parseTokenResponse(200, JSON.stringify(valid), OPTIONS);
    expect(set.revealAccessToken()).toBe(SENTINEL);
    expect(set.expiresAt).toBe(RECEIVED_AT + 3_600_000);
    expect(set.issuedAt).toBe(RECEIVED_AT);
    expect(set.expirySource).toBe('expires_in');
  });

  it('accepts expires_in as a string of digits', () => {
    const set = parseTokenResponse(200, JSON.stringify({ ...valid, expires_in: '600' }), OPTIONS);
    expect(set.expiresAt).toBe(RECEIVED_AT + 600_000);
  });

  it('accepts token_type bearer in any case and keeps it as sent', () => {
    for (const type of ['bearer', 'BEARER', 'BeArEr']) {
      const set = parseTokenResponse(200, JSON.stringify({ ...valid, token_type: type }), OPTIONS);
      expect(set.tokenType).toBe(type);
    }
  });

  it('takes another expected token type as a parameter (for DPoP)', () => {
    const dpop = JSON.stringify({ ...valid, token_type: 'DPoP' });
    expect(parseTokenResponse(200, dpop, { ...OPTIONS, expectedTokenType: 'DPoP' }).tokenType).toBe(
      'DPoP',
    );
    expect(parseTokenResponse(200, dpop, { ...OPTIONS, expectedTokenType: null }).tokenType).toBe(
      'DPoP',
    );
    const error = thrown(() =>
      parseTokenResponse(200, JSON.stringify(valid), { ...OPTIONS, expectedTokenType: 'DPoP' }),
    );
    expect(error).toMatchObject({ code: 'ERR_INVALID_RESPONSE' });
  });

  it('falls back to a JWT exp, corrected by the clock skew, when expires_in is absent', () => {
    const exp = RECEIVED_AT / 1000 + 900;
    const body = JSON.stringify({ access_token: jwt({ exp }), token_type: 'Bearer' });
    const set = parseTokenResponse(200, body, { ...OPTIONS, skewMs: 5_000 });
    expect(set.expirySource).toBe('jwt');
    expect(set.expiresAt).toBe(exp * 1000 - 5_000);
  });

  it('ignores a JWT exp that is already past, absurd, or from an unsigned token', () => {
    for (const token of [
      jwt({ exp: RECEIVED_AT / 1000 - 10 }),
      jwt({ exp: RECEIVED_AT / 1000 + 20 * 365 * 86_400 }),
      jwt({ exp: 'soon' }),
      jwt({ exp: RECEIVED_AT / 1000 + 900 }, 'none'),
      'not.a.jwt',
    ]) {
      const body = JSON.stringify({ access_token: token, token_type: 'Bearer' });
      const set = parseTokenResponse(200, body, OPTIONS);
      expect(set.expirySource).toBe('default');
      expect(set.expiresAt).toBe(RECEIVED_AT + 3_600_000);
    }
  });

  it('uses the default lifetime for an opaque token without expires_in', () => {
    const body = JSON.stringify({ access_token: SENTINEL, token_type: 'Bearer', expires_in: null });
    const set = parseTokenResponse(200, body, { ...OPTIONS, defaultLifetimeMs: 120_000 });
    expect(set.expirySource).toBe('default');
    expect(set.expiresAt).toBe(RECEIVED_AT + 120_000);
  });

  it('splits a scope string and otherwise records the requested scope', () => {
    const granted = parseTokenResponse(200, JSON.stringify({ ...valid, scope: 'a  b c' }), {
      ...OPTIONS,
      requestedScope: ['x'],
    });
    expect(granted.scope).toEqual(['a', 'b', 'c']);
    const requested = parseTokenResponse(200, JSON.stringify(valid), {
      ...OPTIONS,
      requestedScope: ['x'],
    });
    expect(requested.scope).toEqual(['x']);
  });

  it('keeps a refresh token', () => {
    const set = parseTokenResponse(
      200,
      JSON.stringify({ ...valid, refresh_token: REFRESH }),
      OPTIONS,
    );
    expect(set.revealRefreshToken()).toBe(REFRESH);
    expect(set.hasRefreshToken).toBe(true);
  });
});

describe('bad token responses: a coded error each, no token in it', () => {
  it.each([
    ['null', 'null'],
    ['an array', '[]'],
    ['a string', '"access_token"'],
    ['a number', '42'],
    ['truncated JSON', `{"access_token":"${SENTINEL}","token_type":"Bea`],
    ['HTML', '<!doctype html><html><body>Sign in</body></html>'],
    ['an empty body', ''],
  ])('200 with %s → ERR_INVALID_RESPONSE', async (_, body) => {
    answer(body);
    const error = await failure();
    expect(error.code).toBe('ERR_INVALID_RESPONSE');
    expect(error.status).toBe(200);
  });

  it.each([
    ['missing', { token_type: 'Bearer', expires_in: 60 }],
    ['empty', { ...valid, access_token: '' }],
    ['a number', { ...valid, access_token: 12345 }],
    ['an object', { ...valid, access_token: { value: SENTINEL } }],
    ['containing CR LF', { ...valid, access_token: `${SENTINEL}\r\nX-Injected: 1` }],
    ['containing LF', { ...valid, access_token: `${SENTINEL}\n` }],
    ['containing a space', { ...valid, access_token: `${SENTINEL} x` }],
    ['containing a NUL', { ...valid, access_token: `${SENTINEL}\u0000` }],
    ['non-ASCII', { ...valid, access_token: `${SENTINEL}é` }],
  ])('access_token %s → ERR_INVALID_RESPONSE', async (_, body) => {
    json(body);
    const error = await failure();
    expect(error.code).toBe('ERR_INVALID_RESPONSE');
    expect(error.message).toContain('access_token');
  });

  it.each([
    ['mac', 'mac'],
    ['DPoP', 'DPoP'],
    ['missing', undefined],
    ['a number', 1],
    ['bearer with a trailing space', 'Bearer '],
  ])('token_type %s when Bearer is expected → ERR_INVALID_RESPONSE', async (_, type) => {
    json({ ...valid, token_type: type });
    const error = await failure();
    expect(error.code).toBe('ERR_INVALID_RESPONSE');
    expect(error.message).toContain('token_type');
  });

  it.each([
    ['negative', -1],
    ['zero', 0],
    ['zero as a string', '0'],
    ['a non-numeric string', 'soon'],
    ['"3600s"', '3600s'],
    ['fractional', 3600.5],
    ['a fractional string', '3600.5'],
    ['absurdly large', 1e12],
    ['absurdly large as a string', '99999999999'],
    ['more than ten years', 11 * 365 * 86_400],
    ['NaN-like', 'NaN'],
    ['a boolean', true],
    ['an array', [3600]],
  ])('expires_in %s → ERR_INVALID_RESPONSE', async (_, expiresIn) => {
    json({ ...valid, expires_in: expiresIn });
    const error = await failure();
    expect(error.code).toBe('ERR_INVALID_RESPONSE');
    expect(error.message).toContain('expires_in');
  });

  it.each([
    ['empty', ''],
    ['a number', 42],
    ['containing LF', `${REFRESH}\n`],
  ])('refresh_token %s → ERR_INVALID_RESPONSE', async (_, refresh) => {
    json({ ...valid, refresh_token: refresh });
    expect((await failure()).code).toBe('ERR_INVALID_RESPONSE');
  });

  it('a scope that is not a string → ERR_INVALID_RESPONSE', async () => {
    json({ ...valid, scope: ['read'] });
    expect((await failure()).code).toBe('ERR_INVALID_RESPONSE');
  });

  it('an RFC 6749 §5.2 error body → OAuthError with error, capped description and status', async () => {
    json(
      {
        error: 'invalid_grant',
        error_description: `Refresh \r\ntoken \u202eexpired ${'x'.repeat(1000)}`,
        error_uri: 'https://auth.example.com/help',
      },
      400,
    );
    const error = await failure();
    expect(error).toBeInstanceOf(OAuthError);
    expect(error.code).toBe('ERR_OAUTH_ERROR');
    expect(error.status).toBe(400);
    const oauth = error as OAuthError;
    expect(oauth.error).toBe('invalid_grant');
    expect(oauth.errorDescription).toHaveLength(256);
    expect(oauth.errorDescription).toMatch(/^Refresh token expired x+$/);
    expect(error.response?.status).toBe(400);
  });

  it('a §5.2 error on 401 and on 500 is an OAuthError too', async () => {
    json({ error: 'invalid_client' }, 401);
    expect(await failure()).toMatchObject({
      code: 'ERR_OAUTH_ERROR',
      error: 'invalid_client',
      status: 401,
    });
    json({ error: 'server_error' }, 503);
    expect(await failure()).toMatchObject({
      code: 'ERR_OAUTH_ERROR',
      error: 'server_error',
      status: 503,
    });
  });

  it('a 200 with an error body is not a token → ERR_INVALID_RESPONSE', async () => {
    json({ error: 'invalid_grant' }, 200);
    expect((await failure()).code).toBe('ERR_INVALID_RESPONSE');
  });

  it.each([
    [500, '<html><body>Internal Server Error</body></html>'],
    [502, ''],
    [503, 'Service Unavailable'],
    [404, 'Not Found'],
    [400, '[{"error":"invalid_request"}]'],
    [400, '{"error":42}'],
    [429, '{"message":"slow down"}'],
  ])('HTTP %i with a non-OAuth body → ERR_HTTP_STATUS', async (status, body) => {
    answer(body, status, { 'retry-after': '7' });
    const error = await failure();
    expect(error.code).toBe('ERR_HTTP_STATUS');
    expect(error.status).toBe(status);
    expect(error.response?.headers.get('retry-after')).toBe('7');
    expect(Object.keys(error)).not.toContain('response');
  });

  it('an answer over the byte cap is aborted while streaming', async () => {
    let pulled = 0;
    server.use(
      http.post(TOKEN_ENDPOINT, () => {
        const chunk = new Uint8Array(64 * 1024).fill(0x20);
        // Lazily produces up to 100 MB: only what is read is ever made.
        const stream = new ReadableStream<Uint8Array>(
          {
            pull(controller) {
              pulled += 1;
              if (pulled > 1600) controller.close();
              else controller.enqueue(chunk);
            },
          },
          { highWaterMark: 0 },
        );
        return new HttpResponse(stream, { status: 200 });
      }),
    );
    const error = await failure();
    expect(error.code).toBe('ERR_RESPONSE_TOO_LARGE');
    expect(pulled).toBeLessThan(10);
  });

  it('__proto__ and constructor members pollute nothing', async () => {
    answer(
      `{"access_token":"${SENTINEL}","token_type":"Bearer","expires_in":60,` +
        `"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},` +
        `"scope":"read"}`,
    );
    const set = await source().obtain(makeContext());
    expect(set.scope).toEqual(['read']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');

    answer('{"error":"invalid_grant","__proto__":{"polluted":"yes"}}', 400);
    expect((await failure()).code).toBe('ERR_OAUTH_ERROR');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('an unreachable token endpoint → ERR_NETWORK', async () => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));

    const closed = clientCredentials({
      tokenEndpoint: `http://127.0.0.1:${port}/token`,
      clientId: 'client',
      clientSecret: SENTINEL,
    });
    const error = (await rejection(
      closed.obtain(makeContext({ fetch: realFetch })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_NETWORK');
    expect(String(error.cause)).toMatch(/ECONNREFUSED/);
    expectNoSecret(error);
  });

  it('a fetch that throws → ERR_NETWORK with a sanitised cause', async () => {
    const fetch = async () => {
      throw new TypeError(`fetch failed for ${SENTINEL}`, { cause: { code: 'ENOTFOUND' } });
    };
    const error = (await rejection(source().obtain(makeContext({ fetch })))) as TokenWardenError;
    expect(error.code).toBe('ERR_NETWORK');
    expect(String(error.cause)).toBe('Error: TypeError: ENOTFOUND');
    expectNoSecret(error);
  });

  it('a token endpoint that never answers → ERR_TIMEOUT', async () => {
    server.use(
      http.post(TOKEN_ENDPOINT, async () => {
        await delay('infinite');
        return HttpResponse.json(valid);
      }),
    );
    const started = Date.now();
    const error = (await rejection(
      source().obtain(makeContext({ timeoutMs: 100 })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('a fetch that ignores its signal still times out', async () => {
    const fetch = () => new Promise<Response>(() => {});
    const error = (await rejection(
      source().obtain(makeContext({ fetch, timeoutMs: 50 })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_TIMEOUT');
  });
});
