// authorizationCode(): the browser sign-in (authorization code + PKCE S256) against msw, with a
// fake sessionStorage and a navigate() that records where the browser would go. The ID token is
// signed here with jose and checked against a JWKS msw serves. Every error, event, log line,
// storage snapshot and URL is kept and searched for the secrets at the end of each test.
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  type JWK,
  SignJWT,
} from 'jose';
import { HttpResponse, http } from 'msw';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuthorizationCodeOptions,
  AuthorizationError,
  type AuthorizationStorage,
  authorizationCode,
  type Credential,
  createWarden,
  isTokenWardenError,
  type LogRecord,
  memoryStore,
  type TokenStore,
  type Warden,
} from '../../../src/index.js';
import { codeChallenge, randomValue } from '../../../src/sources/pkce.js';
import { findLeaks, SENTINEL } from '../../support/sentinel.js';
import { ISSUER, rejection, useMsw } from './support.js';

const server = useMsw();

const CLIENT_ID = 'spa';
const APP = 'https://app.example.com';
const REDIRECT_URI = `${APP}/callback`;
const API = 'https://api.example.com';
const AUTHORIZE = `${ISSUER}/authorize`;
const TOKEN = `${ISSUER}/token`;
const REVOKE = `${ISSUER}/token/revocation`;
const JWKS = `${ISSUER}/jwks`;
const END_SESSION = `${ISSUER}/session/end`;
const CODE = 'tw-sentinel-code-Pq7xM2nB9v';
const ID_TOKEN_MARK = 'tw-sentinel-idtoken-Rr4Tq1';

let keys: { privateKey: CryptoKey; jwk: JWK };
let otherKey: CryptoKey;
let rsaKey: CryptoKey;
beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  keys = {
    privateKey: pair.privateKey,
    jwk: { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' },
  };
  otherKey = (await generateKeyPair('ES256')).privateKey;
  rsaKey = (await generateKeyPair('RS256')).privateKey;
});

/** Everything the test observed (errors, events, logs, results), for the leak scan. */
const observed: unknown[] = [];
/** Every URL the browser was sent to. */
const urls: string[] = [];
/** Secrets of the current test: sentinels plus each verifier and ID token issued. */
const secrets = new Set<string>();
/** The PKCE verifiers: in this tab's storage during a round trip, and nowhere else. */
const verifiers = new Set<string>();
/** The state and nonce of each sign-in: in the authorization URL, but nowhere else. */
const requestValues = new Set<string>();
/** The session storages of the test, scanned once it is over. */
const storages: ReturnType<typeof fakeStorage>[] = [];
const wardens: Warden[] = [];
afterEach(async () => {
  await Promise.all(wardens.splice(0).map((w) => w.close()));
  expect(findLeaks(observed, [...secrets, ...verifiers, ...requestValues])).toEqual([]);
  expect(findLeaks(urls, [...secrets, ...verifiers])).toEqual([]);
  const stored = storages.splice(0).flatMap((storage) => [...storage.map.entries()]);
  expect(findLeaks(stored, [...secrets])).toEqual([]);
  observed.length = 0;
  urls.length = 0;
  requestValues.clear();
  verifiers.clear();
  secrets.clear();
  for (const s of BASE_SECRETS) secrets.add(s);
});
const BASE_SECRETS = [SENTINEL.accessToken, SENTINEL.refreshToken, CODE];
for (const s of BASE_SECRETS) secrets.add(s);

/** A Map-backed Web Storage, as sessionStorage is. */
function fakeStorage(): AuthorizationStorage & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return {
    map,
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => void map.set(key, value),
    removeItem: (key) => void map.delete(key),
  };
}

interface ServerOptions {
  metadata?: Record<string, unknown>;
  /** Claims to change in (or, when undefined, remove from) the ID token. */
  claims?: Record<string, unknown>;
  /** Sign with this key and alg instead. */
  sign?: { key: CryptoKey; alg: string };
  /** Leave the ID token out of the token response. */
  noIdToken?: boolean;
  /** The token_type of the code exchange's answer. */
  tokenType?: string;
}

/** The authorization server: discovery, JWKS, token and revocation endpoints. */
function authorizationServer(options: ServerOptions = {}) {
  const tokenForms: URLSearchParams[] = [];
  const tokenHeaders: Headers[] = [];
  const revoked: URLSearchParams[] = [];
  const issued: string[] = [];
  let nonce: string | undefined;
  let refreshes = 0;
  server.use(
    http.get(`${ISSUER}/.well-known/oauth-authorization-server`, () =>
      HttpResponse.json({
        issuer: ISSUER,
        authorization_endpoint: AUTHORIZE,
        token_endpoint: TOKEN,
        revocation_endpoint: REVOKE,
        jwks_uri: JWKS,
        end_session_endpoint: END_SESSION,
        code_challenge_methods_supported: ['S256'],
        authorization_response_iss_parameter_supported: true,
        ...options.metadata,
      }),
    ),
    http.get(JWKS, () => HttpResponse.json({ keys: [keys.jwk] })),
    http.post(TOKEN, async ({ request }) => {
      const form = new URLSearchParams(await request.text());
      tokenForms.push(form);
      tokenHeaders.push(request.headers);
      if (form.get('grant_type') === 'refresh_token') {
        refreshes++;
        return HttpResponse.json({
          access_token: `${SENTINEL.accessToken}-r${refreshes}`,
          refresh_token: `${SENTINEL.refreshToken}-r${refreshes}`,
          token_type: 'Bearer',
          expires_in: 300,
          id_token: 'unverified.refresh.idtoken',
        });
      }
      const body: Record<string, unknown> = {
        access_token: SENTINEL.accessToken,
        refresh_token: SENTINEL.refreshToken,
        token_type: options.tokenType ?? 'Bearer',
        expires_in: 300,
        scope: 'openid offline_access',
      };
      if (!options.noIdToken) {
        const idToken = await signIdToken(nonce, options);
        issued.push(idToken);
        secrets.add(idToken);
        body['id_token'] = idToken;
      }
      return HttpResponse.json(body);
    }),
    http.post(REVOKE, async ({ request }) => {
      revoked.push(new URLSearchParams(await request.text()));
      return new HttpResponse(null, { status: 200 });
    }),
  );
  return {
    tokenForms,
    tokenHeaders,
    revoked,
    issued,
    /** The authorization request's nonce (the server echoes it into the ID token). */
    setNonce(value: string | undefined) {
      nonce = value;
    },
  };
}

async function signIdToken(nonce: string | undefined, options: ServerOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: ISSUER,
    sub: 'user-42',
    aud: CLIENT_ID,
    iat: now,
    exp: now + 600,
    nonce,
    mark: ID_TOKEN_MARK,
    ...options.claims,
  };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  const sign = options.sign ?? { key: keys.privateKey, alg: 'ES256' };
  return new SignJWT(claims).setProtectedHeader({ alg: sign.alg, kid: 'k1' }).sign(sign.key);
}

interface Setup {
  warden: Warden;
  credential: Credential;
  source: ReturnType<typeof authorizationCode>;
  storage: ReturnType<typeof fakeStorage>;
  navigations: URL[];
  events: { event: string; payload: unknown }[];
  logs: LogRecord[];
  store: TokenStore;
}

function setup(
  overrides: Partial<AuthorizationCodeOptions> = {},
  store = memoryStore(),
  dpop = false,
): Setup {
  const storage = fakeStorage();
  storages.push(storage);
  const navigations: URL[] = [];
  const events: { event: string; payload: unknown }[] = [];
  const logs: LogRecord[] = [];
  const source = authorizationCode({
    issuer: ISSUER,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    scope: 'openid offline_access',
    postLogoutRedirectUri: `${APP}/`,
    storage,
    navigate: (url) => {
      navigations.push(url);
      urls.push(url.href);
    },
    ...overrides,
  });
  const warden = createWarden({ store, logger: (line) => logs.push(line) });
  wardens.push(warden);
  for (const event of [
    'refresh',
    'refresh-error',
    'reauth-required',
    'revoke',
    'tamper',
    'anomaly',
  ] as const) {
    warden.on(event, (payload: unknown) => {
      events.push({ event, payload });
      observed.push(payload);
    });
  }
  observed.push(logs);
  const credential = warden.register('me', { source, origins: [API], dpop });
  return { warden, credential, source, storage, navigations, events, logs, store };
}

/** Runs login() and returns the authorization request's parameters, kept for the leak scan. */
async function login(s: Setup, op?: ReturnType<typeof authorizationServer>, options = {}) {
  await s.source.login(options);
  const url = s.navigations.at(-1) as URL;
  const params = url.searchParams;
  for (const name of ['state', 'nonce']) {
    const value = params.get(name);
    if (value) requestValues.add(value);
  }
  // Whatever sessionStorage holds during the round trip holds the verifier: a secret.
  for (const value of s.storage.map.values()) {
    const parsed = JSON.parse(value) as Record<string, { v: string }>;
    for (const t of Object.values(parsed)) verifiers.add(t.v);
  }
  op?.setNonce(params.get('nonce') ?? undefined);
  return { url, params, state: params.get('state') as string };
}

function callback(params: Record<string, string>): string {
  return `${REDIRECT_URI}?${new URLSearchParams(params)}`;
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; error: unknown }> {
  const error = await rejection(promise);
  observed.push(error);
  if (!isTokenWardenError(error)) throw error;
  return { code: error.code, error };
}

describe('PKCE', () => {
  it('computes the S256 challenge of RFC 7636 appendix B', async () => {
    expect(await codeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
  });

  it('draws 256-bit verifiers in the unreserved alphabet, never twice the same', () => {
    const values = Array.from({ length: 200 }, () => randomValue());
    for (const value of values) expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(new Set(values).size).toBe(values.length);
  });
});

describe('authorizationCode sign-in', () => {
  it('round trip: PKCE S256, state and nonce, code exchange, claims, stored through the credential', async () => {
    const op = authorizationServer();
    const s = setup();
    expect(s.source.kind).toBe('authorization_code');
    expect(s.source.interactive).toBe(true);
    await expect(s.credential.getToken()).rejects.toMatchObject({ code: 'ERR_REAUTH_REQUIRED' });

    const { url, params, state } = await login(s, op, { appState: { returnTo: '/invoices' } });
    expect(url.origin + url.pathname).toBe(AUTHORIZE);
    expect(Object.fromEntries(params)).toEqual({
      response_type: 'code',
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      scope: 'openid offline_access',
      state,
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      code_challenge_method: 'S256',
      nonce: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    expect(state).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Kept in session storage for the round trip only.
    expect(s.storage.map.size).toBe(1);

    const redirect = callback({ code: CODE, state, iss: ISSUER });
    expect(s.source.isRedirect(redirect)).toBe(true);
    const result = await s.source.handleRedirect(redirect);
    expect(result.appState).toEqual({ returnTo: '/invoices' });
    expect(result.claims).toMatchObject({ iss: ISSUER, sub: 'user-42', aud: CLIENT_ID });
    expect(result.claims?.nonce).toBe(params.get('nonce'));
    expect(s.storage.map.size).toBe(0);

    // The token request: the verifier whose S256 hash was the challenge, no client secret.
    expect(op.tokenForms).toHaveLength(1);
    const form = op.tokenForms[0] as URLSearchParams;
    expect(form.get('grant_type')).toBe('authorization_code');
    expect(form.get('code')).toBe(CODE);
    expect(form.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(form.get('client_id')).toBe(CLIENT_ID);
    const verifier = form.get('code_verifier') as string;
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await codeChallenge(verifier)).toBe(params.get('code_challenge'));
    expect(url.href).not.toContain(verifier);
    expect(op.tokenHeaders[0]?.get('authorization')).toBeNull();

    // Installed: stored, valid, refresh event 'initial', and API calls carry the access token only.
    expect(s.credential.status().state).toBe('valid');
    const stored = await s.store.get('me');
    expect(stored?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    expect(stored?.tokens.revealIdToken()).toBe(op.issued[0]);
    expect(s.events.map((e) => e.event)).toEqual(['refresh-error', 'reauth-required', 'refresh']);
    expect(s.events[2]?.payload).toMatchObject({ id: 'me', reason: 'initial' });
    let authorization: string | null = null;
    server.use(
      http.get(`${API}/me`, ({ request }) => {
        authorization = request.headers.get('authorization');
        return HttpResponse.json({ ok: true });
      }),
    );
    expect((await s.credential.fetch(`${API}/me`)).status).toBe(200);
    expect(authorization).toBe(`Bearer ${SENTINEL.accessToken}`);
    observed.push(s.source, s.credential, JSON.stringify(s.source), String(s.source));
  });

  it('refreshes with rotation after sign-in, keeping the verified ID token', async () => {
    const op = authorizationServer();
    const s = setup();
    const { state } = await login(s, op);
    await s.source.handleRedirect(callback({ code: CODE, state, iss: ISSUER }));
    for (let i = 1; i <= 2; i++) {
      const token = await s.credential.getToken({ forceRefresh: true });
      expect(token.reveal()).toBe(`${SENTINEL.accessToken}-r${i}`);
    }
    const refreshes = op.tokenForms.filter((f) => f.get('grant_type') === 'refresh_token');
    expect(refreshes.map((f) => f.get('refresh_token'))).toEqual([
      SENTINEL.refreshToken,
      `${SENTINEL.refreshToken}-r1`,
    ]);
    const stored = await s.store.get('me');
    expect(stored?.tokens.revealRefreshToken()).toBe(`${SENTINEL.refreshToken}-r2`);
    // The refresh response's ID token is not verified, so it is not kept.
    expect(stored?.tokens.revealIdToken()).toBe(op.issued[0]);
  });

  it('without a refresh token, asks for the user (reauth-required), with no token request', async () => {
    const op = authorizationServer();
    const s = setup();
    const error = await failure(s.credential.getToken());
    expect(error.code).toBe('ERR_REAUTH_REQUIRED');
    expect(s.credential.status().state).toBe('reauth-required');
    expect(op.tokenForms).toEqual([]);
  });

  it('rejects a forged state without a token request, and still completes the real one', async () => {
    const op = authorizationServer();
    const s = setup();
    const { state } = await login(s, op);
    const forged = randomValue();
    expect(
      (await failure(s.source.handleRedirect(callback({ code: CODE, state: forged, iss: ISSUER }))))
        .code,
    ).toBe('ERR_STATE_MISMATCH');
    expect(
      (await failure(s.source.handleRedirect(callback({ code: CODE, iss: ISSUER })))).code,
    ).toBe('ERR_STATE_MISMATCH');
    expect(op.tokenForms).toEqual([]);
    expect(s.credential.status().state).not.toBe('valid');
    await s.source.handleRedirect(callback({ code: CODE, state, iss: ISSUER }));
    expect(s.credential.status().state).toBe('valid');
  });

  it('rejects a replayed callback: a state serves one handleRedirect only', async () => {
    const op = authorizationServer();
    const s = setup();
    const { state } = await login(s, op);
    const redirect = callback({ code: CODE, state, iss: ISSUER });
    await s.source.handleRedirect(redirect);
    const replay = await failure(s.source.handleRedirect(redirect));
    expect(replay.code).toBe('ERR_STATE_MISMATCH');
    expect(op.tokenForms).toHaveLength(1);
  });

  it('rejects a mismatched iss (RFC 9207), and a missing one when the server promises it', async () => {
    const op = authorizationServer();
    const s = setup();
    const first = await login(s, op);
    const wrong = await failure(
      s.source.handleRedirect(
        callback({ code: CODE, state: first.state, iss: 'https://evil.example.net' }),
      ),
    );
    expect(wrong.code).toBe('ERR_ISSUER_MISMATCH');
    const second = await login(s, op);
    const missing = await failure(
      s.source.handleRedirect(callback({ code: CODE, state: second.state })),
    );
    expect(missing.code).toBe('ERR_ISSUER_MISMATCH');
    // The states were used up: the same callbacks cannot be replayed with a fixed iss.
    const retry = await failure(
      s.source.handleRedirect(callback({ code: CODE, state: first.state, iss: ISSUER })),
    );
    expect(retry.code).toBe('ERR_STATE_MISMATCH');
    expect(op.tokenForms).toEqual([]);
    expect(s.storage.map.size).toBe(0);
  });

  it('accepts a response without iss from a server that does not send it', async () => {
    const op = authorizationServer({
      metadata: { authorization_response_iss_parameter_supported: undefined },
    });
    const s = setup();
    const { state } = await login(s, op);
    await s.source.handleRedirect(callback({ code: CODE, state }));
    expect(s.credential.status().state).toBe('valid');
  });

  it('turns error and error_description on the redirect into an AuthorizationError', async () => {
    const op = authorizationServer();
    const s = setup();
    const { state } = await login(s, op);
    const redirect = callback({
      error: 'access_denied',
      error_description: 'The user\u202e declined\r\nX-Forged: 1',
      state,
      iss: ISSUER,
    });
    expect(s.source.isRedirect(redirect)).toBe(true);
    const { code, error } = await failure(s.source.handleRedirect(redirect));
    expect(code).toBe('ERR_ACCESS_DENIED');
    expect(error).toBeInstanceOf(AuthorizationError);
    expect(error).toMatchObject({
      error: 'access_denied',
      errorDescription: 'The user declinedX-Forged: 1',
    });
    expect(s.storage.map.size).toBe(0);
    expect(op.tokenForms).toEqual([]);
  });

  it('gives other redirect errors ERR_AUTHORIZATION_FAILED, with the error kept', async () => {
    const op = authorizationServer();
    const s = setup();
    const { state } = await login(s, op, { prompt: 'none' });
    const { code, error } = await failure(
      s.source.handleRedirect(callback({ error: 'login_required', state, iss: ISSUER })),
    );
    expect(code).toBe('ERR_AUTHORIZATION_FAILED');
    expect(error).toBeInstanceOf(AuthorizationError);
    expect(error).toMatchObject({ error: 'login_required' });
    expect((error as AuthorizationError).errorDescription).toBeUndefined();
    expect(op.tokenForms).toEqual([]);
  });

  it('refuses to sign in when the server does not offer S256', async () => {
    authorizationServer({ metadata: { code_challenge_methods_supported: ['plain'] } });
    const s = setup();
    expect((await failure(s.source.login())).code).toBe('ERR_UNSUPPORTED');
    expect(s.navigations).toEqual([]);
    expect(s.storage.map.size).toBe(0);
  });

  it('proves the DPoP key of a DPoP-bound credential on the code exchange', async () => {
    const op = authorizationServer({ tokenType: 'DPoP' });
    const s = setup({}, memoryStore(), true);
    const { params, state } = await login(s, op);
    // No dpop_jkt: the key is made on the callback page, which a real sign-in reaches by a
    // navigation that a key made before it would not survive.
    expect(params.has('dpop_jkt')).toBe(false);
    await s.source.handleRedirect(callback({ code: CODE, state, iss: ISSUER }));
    const proof = op.tokenHeaders[0]?.get('dpop');
    expect(proof).toBeTruthy();
    const header = decodeProtectedHeader(proof as string);
    expect(header.typ).toBe('dpop+jwt');
    expect(await calculateJwkThumbprint(header.jwk as JWK)).toBe(
      s.credential.status().dpop?.thumbprint,
    );
    expect(s.credential.status().state).toBe('valid');
    expect((await s.credential.getToken()).type).toBe('DPoP');
  });

  it('passes prompt, login_hint and extra parameters, and refuses to override its own', async () => {
    authorizationServer();
    const s = setup();
    const { params } = await login(s, undefined, {
      prompt: 'consent',
      loginHint: 'ada@example.com',
      extraParams: { ui_locales: 'fr' },
    });
    expect(params.get('prompt')).toBe('consent');
    expect(params.get('login_hint')).toBe('ada@example.com');
    expect(params.get('ui_locales')).toBe('fr');
    for (const name of ['state', 'code_challenge_method', 'redirect_uri', 'nonce']) {
      const { code } = await failure(s.source.login({ extraParams: { [name]: 'x' } }));
      expect(code).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});

describe('the ID token', () => {
  async function signInWith(
    options: ServerOptions,
    sourceOptions: Partial<AuthorizationCodeOptions> = {},
  ) {
    const op = authorizationServer(options);
    const s = setup(sourceOptions);
    const { state } = await login(s, op);
    const result = await failure(
      s.source.handleRedirect(callback({ code: CODE, state, iss: ISSUER })),
    );
    // Nothing was installed: no token set stored, the credential still needs its user.
    expect(await s.store.get('me')).toBeUndefined();
    expect(s.credential.status().state).not.toBe('valid');
    expect(s.storage.map.size).toBe(0);
    expect(op.tokenForms).toHaveLength(1);
    return result;
  }

  it('rejects a bad nonce', async () => {
    const { code, error } = await signInWith({ claims: { nonce: randomValue() } });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
    expect(String((error as Error).message)).toContain('nonce');
  });

  it('rejects a missing nonce', async () => {
    const { code } = await signInWith({ claims: { nonce: undefined } });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
  });

  it('rejects a wrong aud', async () => {
    const { code, error } = await signInWith({ claims: { aud: 'another-client' } });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
    expect((error as Error).message).toContain('aud');
  });

  it('rejects several audiences without an azp naming this client', async () => {
    const { code } = await signInWith({ claims: { aud: [CLIENT_ID, 'another-client'] } });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
  });

  it('rejects a wrong iss', async () => {
    const { code } = await signInWith({ claims: { iss: 'https://evil.example.net' } });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
  });

  it('rejects an expired ID token, beyond the clock tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    const { code, error } = await signInWith({ claims: { iat: now - 300, exp: now - 120 } });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
    expect((error as Error).message).toContain('expired');
  });

  it('rejects an ID token issued long ago, or in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await signInWith({ claims: { iat: now - 3_600 } })).code).toBe('ERR_ID_TOKEN_INVALID');
    expect((await signInWith({ claims: { iat: now + 600 } })).code).toBe('ERR_ID_TOKEN_INVALID');
  });

  it('rejects an algorithm that is not allowed', async () => {
    const { code, error } = await signInWith(
      { sign: { key: rsaKey, alg: 'RS256' } },
      { idToken: { algorithms: ['ES256'] } },
    );
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
    expect((error as Error).message).toContain('algorithm');
  });

  it('rejects an unsigned (alg none) ID token', async () => {
    const op = authorizationServer();
    const s = setup();
    const { state, params } = await login(s, op);
    const now = Math.floor(Date.now() / 1000);
    const encode = (json: unknown) => Buffer.from(JSON.stringify(json)).toString('base64url');
    const unsigned = `${encode({ alg: 'none' })}.${encode({ iss: ISSUER, sub: 'x', aud: CLIENT_ID, iat: now, exp: now + 600, nonce: params.get('nonce') })}.`;
    server.use(
      http.post(TOKEN, () =>
        HttpResponse.json({
          access_token: SENTINEL.accessToken,
          token_type: 'Bearer',
          expires_in: 300,
          id_token: unsigned,
        }),
      ),
    );
    const { code } = await failure(
      s.source.handleRedirect(callback({ code: CODE, state, iss: ISSUER })),
    );
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
    expect(await s.store.get('me')).toBeUndefined();
  });

  it('rejects HS256 even when signed with the public key (algorithm confusion)', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(keys.jwk));
    const hmac = await crypto.subtle.importKey(
      'raw',
      secret,
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    const { code } = await signInWith({ sign: { key: hmac, alg: 'HS256' } });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
  });

  it('rejects a signature by another key', async () => {
    const { code, error } = await signInWith({ sign: { key: otherKey, alg: 'ES256' } });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
    expect((error as Error).message).toContain('signature');
  });

  it('requires one when openid was asked for', async () => {
    const { code } = await signInWith({ noIdToken: true });
    expect(code).toBe('ERR_ID_TOKEN_INVALID');
  });

  it('is dropped, never stored, when verification is off', async () => {
    const op = authorizationServer({ claims: { aud: 'whatever' } });
    const s = setup({ idToken: false });
    const { params, state } = await login(s, op);
    expect(params.has('nonce')).toBe(false);
    const result = await s.source.handleRedirect(callback({ code: CODE, state, iss: ISSUER }));
    expect(result.claims).toBeUndefined();
    expect((await s.store.get('me'))?.tokens.hasIdToken).toBe(false);
  });
});

describe('logout', () => {
  it('revokes at the server, wipes the store, and sends the browser to end the session', async () => {
    const op = authorizationServer();
    const store = memoryStore();
    const s = setup({}, store);
    const { state } = await login(s, op);
    await s.source.handleRedirect(callback({ code: CODE, state, iss: ISSUER }));
    // A pending sign-in of another login() is forgotten too.
    await login(s, op);
    expect(s.storage.map.size).toBe(1);

    const result = await s.source.logout(s.credential, { endSession: true });
    observed.push(result);
    expect(result).toMatchObject({
      outcome: 'revoked',
      revokedAtServer: true,
      endSession: 'redirected',
    });
    expect(op.revoked.map((f) => [f.get('token_type_hint'), f.get('token')])).toEqual([
      ['refresh_token', SENTINEL.refreshToken],
      ['access_token', SENTINEL.accessToken],
    ]);
    expect(await store.get('me')).toBeUndefined();
    expect(s.storage.map.size).toBe(0);
    expect(s.credential.status().state).toBe('reauth-required');
    const end = s.navigations.at(-1) as URL;
    expect(end.origin + end.pathname).toBe(END_SESSION);
    expect(Object.fromEntries(end.searchParams)).toEqual({
      client_id: CLIENT_ID,
      post_logout_redirect_uri: `${APP}/`,
    });
  });

  it('without endSession, stays on the page', async () => {
    const op = authorizationServer();
    const s = setup();
    const { state } = await login(s, op);
    await s.source.handleRedirect(callback({ code: CODE, state, iss: ISSUER }));
    const navigations = s.navigations.length;
    const result = await s.source.logout(s.credential);
    expect(result.endSession).toBe('not-requested');
    expect(s.navigations).toHaveLength(navigations);
  });

  it("refuses another credential than the source's", async () => {
    authorizationServer();
    const s = setup();
    const other = s.warden.register('other', {
      source: authorizationCode({ issuer: ISSUER, clientId: CLIENT_ID, redirectUri: REDIRECT_URI }),
      origins: [API],
    });
    expect((await failure(s.source.logout(other))).code).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('options', () => {
  const base = { issuer: ISSUER, clientId: CLIENT_ID, redirectUri: REDIRECT_URI };
  const invalid = (options: Record<string, unknown>) => {
    try {
      authorizationCode({ ...base, ...options } as AuthorizationCodeOptions);
    } catch (error) {
      return isTokenWardenError(error) ? error.code : String(error);
    }
    return 'accepted';
  };

  it('refuses bad redirect URIs, algorithms and missing issuers with ERR_INVALID_ARGUMENT', () => {
    expect(invalid({ redirectUri: 'http://app.example.com/callback' })).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(invalid({ redirectUri: 'not a url' })).toBe('ERR_INVALID_ARGUMENT');
    expect(invalid({ redirectUri: 'http://127.0.0.1:5173/callback' })).toBe('accepted');
    expect(invalid({ issuer: undefined })).toBe('ERR_INVALID_ARGUMENT');
    expect(invalid({ idToken: { algorithms: ['HS256'] } })).toBe('ERR_INVALID_ARGUMENT');
    expect(invalid({ idToken: { algorithms: ['none'] } })).toBe('ERR_INVALID_ARGUMENT');
    expect(invalid({ idToken: { algorithms: [] } })).toBe('ERR_INVALID_ARGUMENT');
    expect(invalid({ scope: 'bad"scope' })).toBe('ERR_INVALID_ARGUMENT');
    expect(invalid({ storage: {} })).toBe('ERR_INVALID_ARGUMENT');
  });

  it('needs a credential before login() and handleRedirect(), and serves one credential only', async () => {
    const source = authorizationCode({ ...base, storage: fakeStorage(), navigate: () => {} });
    expect((await failure(source.login())).code).toBe('ERR_INVALID_ARGUMENT');
    expect((await failure(source.handleRedirect(REDIRECT_URI))).code).toBe('ERR_INVALID_ARGUMENT');
    const warden = createWarden();
    wardens.push(warden);
    warden.register('a', { source, origins: [API] });
    expect(() => warden.register('b', { source, origins: [API] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });

  it('tells a callback URL from other pages', () => {
    const source = authorizationCode(base);
    expect(source.isRedirect(`${REDIRECT_URI}?code=x&state=y`)).toBe(true);
    expect(source.isRedirect(`${REDIRECT_URI}?code=x`)).toBe(false);
    expect(source.isRedirect(`${APP}/other?code=x&state=y`)).toBe(false);
    expect(source.isRedirect('https://evil.example.net/callback?code=x&state=y')).toBe(false);
  });
});
