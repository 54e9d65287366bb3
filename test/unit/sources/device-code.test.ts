import { inspect } from 'node:util';
import { HttpResponse, http } from 'msw';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OAuthError, type TokenWardenError } from '../../../src/errors.js';
import {
  createWarden,
  type DeviceCodeOptions,
  type DeviceCodePrompt,
  deviceCode,
  type LogRecord,
  memoryStore,
  type Warden,
} from '../../../src/index.js';
import { TokenSet } from '../../../src/token.js';
import { findLeaks, SENTINEL } from '../../support/sentinel.js';
import { ISSUER, makeContext, rejection, TOKEN_ENDPOINT, thrown, useMsw } from './support.js';

const server = useMsw();

const DEVICE_ENDPOINT = 'https://auth.example.com/oauth/device';
const DEVICE_CODE = 'tw-sentinel-device-Gx4pR9wQ2v';
const GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const SECRETS = [DEVICE_CODE, SENTINEL.accessToken, SENTINEL.refreshToken, SENTINEL.clientSecret];

/** One token-endpoint request: when it arrived (fake clock, ms after the start) and its form. */
interface Poll {
  readonly at: number;
  readonly form: URLSearchParams;
}

type Answer = 'pending' | 'slow_down' | 'access_denied' | 'expired_token' | 'network' | 'ok';

let start = 0;

/**
 * The device authorization endpoint (answering `authorization`) and a token endpoint that answers
 * device-code polls with `answers` in turn (the last one repeats) and refreshes with rotation.
 */
function deviceServer(
  answers: Answer[],
  authorization: Record<string, unknown> = {},
): { polls: Poll[]; refreshes: URLSearchParams[]; authorizations: Request[] } {
  const polls: Poll[] = [];
  const refreshes: URLSearchParams[] = [];
  const authorizations: Request[] = [];
  server.use(
    http.post(DEVICE_ENDPOINT, ({ request }) => {
      authorizations.push(request.clone());
      return HttpResponse.json({
        device_code: DEVICE_CODE,
        user_code: 'WDJB-MJHT',
        verification_uri: 'https://auth.example.com/device',
        verification_uri_complete: 'https://auth.example.com/device?user_code=WDJB-MJHT',
        expires_in: 600,
        interval: 5,
        ...authorization,
      });
    }),
    http.post(TOKEN_ENDPOINT, async ({ request }) => {
      const form = new URLSearchParams(await request.text());
      if (form.get('grant_type') === 'refresh_token') {
        refreshes.push(form);
        if (form.get('refresh_token') === 'rejected') {
          return HttpResponse.json({ error: 'invalid_grant' }, { status: 400 });
        }
        return HttpResponse.json({
          access_token: `${SENTINEL.accessToken}-r${refreshes.length}`,
          token_type: 'Bearer',
          expires_in: 300,
          refresh_token: `${SENTINEL.refreshToken}-r${refreshes.length}`,
        });
      }
      polls.push({ at: Date.now() - start, form });
      const answer = answers[Math.min(polls.length - 1, answers.length - 1)] as Answer;
      switch (answer) {
        case 'ok':
          return HttpResponse.json({
            access_token: `${SENTINEL.accessToken}-0`,
            token_type: 'Bearer',
            expires_in: 300,
            refresh_token: `${SENTINEL.refreshToken}-0`,
            scope: 'openid offline_access',
          });
        case 'network':
          return HttpResponse.error();
        case 'pending':
          return HttpResponse.json({ error: 'authorization_pending' }, { status: 400 });
        default:
          return HttpResponse.json(
            { error: answer, error_description: `answered ${answer}` },
            { status: 400 },
          );
      }
    }),
  );
  return { polls, refreshes, authorizations };
}

function source(extra: Partial<DeviceCodeOptions> = {}, prompts: DeviceCodePrompt[] = []) {
  return deviceCode({
    tokenEndpoint: TOKEN_ENDPOINT,
    deviceAuthorizationEndpoint: DEVICE_ENDPOINT,
    clientId: 'cli',
    scope: ['openid', 'offline_access'],
    onPrompt: (prompt) => {
      prompts.push(prompt);
    },
    ...extra,
  });
}

/** Lets fake time run, in small steps with real I/O in between, until `promise` settles. */
async function drive<T>(promise: Promise<T>, stepMs = 100, maxMs = 3_600_000): Promise<T> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let elapsed = 0; !settled && elapsed < maxMs; elapsed += stepMs) {
    await new Promise((resolve) => setImmediate(resolve));
    await vi.advanceTimersByTimeAsync(stepMs);
  }
  return promise;
}

/** Poll times relative to the previous poll (the first relative to the start). */
function gaps(polls: Poll[]): number[] {
  return polls.map((poll, index) => poll.at - (index === 0 ? 0 : (polls[index - 1] as Poll).at));
}

/** A gap of `seconds`, within one step of the fake clock. */
function about(seconds: number) {
  return expect.toSatisfy((gap: number) => gap >= seconds * 1000 && gap < seconds * 1000 + 250);
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  start = Date.now();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('deviceCode: the device flow', () => {
  it('prompts with the user code and URIs, never the device code, then polls for the tokens', async () => {
    const { polls, authorizations } = deviceServer(['ok']);
    const prompts: DeviceCodePrompt[] = [];
    const dc = source({}, prompts);
    expect(dc.kind).toBe('device_code');
    expect(dc.info()).toMatchObject({ kind: 'device_code', clientId: 'cli' });

    const set = await drive(dc.obtain(makeContext()));

    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toEqual({
      userCode: 'WDJB-MJHT',
      verificationUri: 'https://auth.example.com/device',
      verificationUriComplete: 'https://auth.example.com/device?user_code=WDJB-MJHT',
      expiresAt: start + 600_000,
      interval: 5,
    });
    expect(Object.isFrozen(prompts[0])).toBe(true);
    expect(findLeaks(prompts, [DEVICE_CODE])).toEqual([]);

    const form = new URLSearchParams(await (authorizations[0] as Request).text());
    expect(Object.fromEntries(form)).toEqual({ client_id: 'cli', scope: 'openid offline_access' });
    expect(polls).toHaveLength(1);
    expect(Object.fromEntries((polls[0] as Poll).form)).toEqual({
      grant_type: GRANT,
      device_code: DEVICE_CODE,
      client_id: 'cli',
    });
    expect(set.revealAccessToken()).toBe(`${SENTINEL.accessToken}-0`);
    expect(set.revealRefreshToken()).toBe(`${SENTINEL.refreshToken}-0`);
    expect(set.scope).toEqual(['openid', 'offline_access']);
    expect(findLeaks([dc, inspect(dc), JSON.stringify(dc)], SECRETS)).toEqual([]);
  });

  it('waits the interval before each poll while authorization is pending', async () => {
    const { polls } = deviceServer(['pending', 'pending', 'pending', 'ok'], { interval: 3 });
    await drive(source().obtain(makeContext()));
    expect(polls).toHaveLength(4);
    expect(gaps(polls)).toEqual([about(3), about(3), about(3), about(3)]);
  });

  it('polls every 5 s when the server names no interval', async () => {
    const { polls } = deviceServer(['pending', 'ok'], { interval: undefined });
    const prompts: DeviceCodePrompt[] = [];
    await drive(source({}, prompts).obtain(makeContext()));
    expect(prompts[0]?.interval).toBe(5);
    expect(gaps(polls)).toEqual([about(5), about(5)]);
  });

  it('slow_down adds 5 s to the interval, for every later poll', async () => {
    const { polls } = deviceServer(['pending', 'slow_down', 'pending', 'slow_down', 'ok'], {
      interval: 2,
    });
    await drive(source().obtain(makeContext()));
    expect(gaps(polls)).toEqual([about(2), about(2), about(7), about(7), about(12)]);
  });

  it('a connection failure doubles the interval (RFC 8628 §3.5)', async () => {
    const { polls } = deviceServer(['network', 'ok'], { interval: 2 });
    await drive(source().obtain(makeContext()));
    expect(gaps(polls)).toEqual([about(2), about(4)]);
  });

  it('access_denied stops polling with ERR_ACCESS_DENIED', async () => {
    const { polls } = deviceServer(['pending', 'access_denied', 'ok']);
    const error = (await drive(rejection(source().obtain(makeContext())))) as TokenWardenError;
    expect(error.code).toBe('ERR_ACCESS_DENIED');
    expect(error.status).toBe(400);
    expect(error.credentialId).toBe('test-credential');
    expect((error.cause as OAuthError).error).toBe('access_denied');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(polls).toHaveLength(2);
    expect(findLeaks([error], SECRETS)).toEqual([]);
  });

  it('expired_token stops polling with ERR_DEVICE_CODE_EXPIRED', async () => {
    const { polls } = deviceServer(['pending', 'expired_token', 'ok']);
    const error = (await drive(rejection(source().obtain(makeContext())))) as TokenWardenError;
    expect(error.code).toBe('ERR_DEVICE_CODE_EXPIRED');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(polls).toHaveLength(2);
    expect(findLeaks([error], SECRETS)).toEqual([]);
  });

  it('gives up with ERR_DEVICE_CODE_EXPIRED once expires_in passed without an answer', async () => {
    const { polls } = deviceServer(['pending'], { expires_in: 12, interval: 5 });
    const error = (await drive(rejection(source().obtain(makeContext())))) as TokenWardenError;
    expect(error.code).toBe('ERR_DEVICE_CODE_EXPIRED');
    // Polled at 5 s and 10 s; at 12 s the code is dead, so no third poll.
    expect(polls.map((poll) => poll.at)).toEqual([about(5), about(10)]);
    expect(Date.now() - start).toBeLessThan(12_500);
  });

  it("the option's signal aborts mid-poll with ERR_ABORTED and no further request", async () => {
    const { polls } = deviceServer(['pending']);
    const controller = new AbortController();
    const pending = rejection(source({ signal: controller.signal }).obtain(makeContext()));
    await vi.advanceTimersByTimeAsync(5_100);
    await new Promise((resolve) => setImmediate(resolve));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(polls).toHaveLength(1);
    controller.abort();
    const error = (await pending) as TokenWardenError;
    expect(error.code).toBe('ERR_ABORTED');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(polls).toHaveLength(1);
  });

  it("the credential's signal aborts it too, even with a poll in flight", async () => {
    server.use(
      http.post(DEVICE_ENDPOINT, () =>
        HttpResponse.json({
          device_code: DEVICE_CODE,
          user_code: 'ABCD',
          verification_uri: 'https://auth.example.com/device',
          expires_in: 600,
          interval: 1,
        }),
      ),
      // A token endpoint that never answers.
      http.post(TOKEN_ENDPOINT, () => new Promise<Response>(() => {})),
    );
    const controller = new AbortController();
    const pending = rejection(source().obtain(makeContext({ signal: controller.signal })));
    await vi.advanceTimersByTimeAsync(1_500);
    controller.abort();
    expect(((await pending) as TokenWardenError).code).toBe('ERR_ABORTED');
  });

  it('an already-aborted signal stops it before any request', async () => {
    const { polls, authorizations } = deviceServer(['ok']);
    const error = (await rejection(
      source({ signal: AbortSignal.abort() }).obtain(makeContext()),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_ABORTED');
    expect(authorizations).toHaveLength(0);
    expect(polls).toHaveLength(0);
  });

  it('an onPrompt that throws fails with ERR_SOURCE_FAILED before any poll', async () => {
    const { polls } = deviceServer(['ok']);
    const dc = source({
      onPrompt: () => {
        throw new Error(`cannot show ${DEVICE_CODE}`);
      },
    });
    const error = (await drive(rejection(dc.obtain(makeContext())))) as TokenWardenError;
    expect(error.code).toBe('ERR_SOURCE_FAILED');
    expect(polls).toHaveLength(0);
    expect(findLeaks([error], SECRETS)).toEqual([]);
  });

  it('waits for an async onPrompt before polling', async () => {
    const { polls } = deviceServer(['ok'], { interval: 1 });
    let shown = 0;
    const dc = source({
      onPrompt: async () => {
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        shown = Date.now() - start;
      },
    });
    await drive(dc.obtain(makeContext()));
    expect(shown).toBeGreaterThanOrEqual(3_000);
    expect((polls[0] as Poll).at).toBeGreaterThanOrEqual(shown + 1_000);
  });

  it('authenticates a confidential client at both endpoints', async () => {
    const { polls, authorizations } = deviceServer(['ok']);
    await drive(source({ clientSecret: SENTINEL.clientSecret }).obtain(makeContext()));
    const basic = (authorizations[0] as Request).headers.get('authorization');
    expect(basic).toMatch(/^Basic /);
    const form = new URLSearchParams(await (authorizations[0] as Request).text());
    expect(form.has('client_id')).toBe(false);
    expect((polls[0] as Poll).form.has('client_id')).toBe(false);
  });
});

describe('deviceCode: discovery and options', () => {
  const metadata = (extra: Record<string, unknown>) =>
    http.get(`${ISSUER}/.well-known/oauth-authorization-server`, () =>
      HttpResponse.json({ issuer: ISSUER, token_endpoint: TOKEN_ENDPOINT, ...extra }),
    );

  it('discovers device_authorization_endpoint from the issuer', async () => {
    server.use(metadata({ device_authorization_endpoint: DEVICE_ENDPOINT }));
    const { polls } = deviceServer(['ok']);
    const dc = deviceCode({ issuer: ISSUER, clientId: 'cli', onPrompt: () => {} });
    await drive(dc.obtain(makeContext()));
    expect(polls).toHaveLength(1);
  });

  it.each([
    ['absent', {}, 'ERR_UNSUPPORTED'],
    [
      'not https',
      { device_authorization_endpoint: 'http://auth.example.com/device' },
      'ERR_INVALID_RESPONSE',
    ],
    ['not a string', { device_authorization_endpoint: 42 }, 'ERR_INVALID_RESPONSE'],
  ])('metadata with the device endpoint %s → $2', async (_, extra, code) => {
    server.use(metadata(extra));
    const dc = deviceCode({ issuer: ISSUER, clientId: 'cli', onPrompt: () => {} });
    const error = (await rejection(dc.obtain(makeContext()))) as TokenWardenError;
    expect(error.code).toBe(code);
  });

  it.each([
    ['no onPrompt', { onPrompt: undefined }],
    [
      'an explicit tokenEndpoint without deviceAuthorizationEndpoint',
      { deviceAuthorizationEndpoint: undefined },
    ],
    [
      'a plain-http device endpoint',
      { deviceAuthorizationEndpoint: 'http://auth.example.com/device' },
    ],
    [
      'a device endpoint with credentials',
      { deviceAuthorizationEndpoint: 'https://u:p@auth.example.com/d' },
    ],
    ['a device endpoint that is no URL', { deviceAuthorizationEndpoint: 'not a url' }],
    ['a signal that is no AbortSignal', { signal: {} as AbortSignal }],
    ['a malformed scope', { scope: 'a "b"' }],
  ])('rejects %s with ERR_INVALID_ARGUMENT', (_, extra) => {
    const error = thrown(() =>
      source({ ...extra, clientSecret: SENTINEL.clientSecret } as Partial<DeviceCodeOptions>),
    ) as TokenWardenError;
    expect(error.code).toBe('ERR_INVALID_ARGUMENT');
    expect(findLeaks([error], SECRETS)).toEqual([]);
  });
});

describe('deviceCode: bad device authorization responses', () => {
  const valid = {
    device_code: DEVICE_CODE,
    user_code: 'WDJB-MJHT',
    verification_uri: 'https://auth.example.com/device',
    expires_in: 600,
  };
  const json =
    (body: Record<string, unknown> | unknown[], status = 200) =>
    () =>
      HttpResponse.json(body as never, { status });

  it.each([
    [
      'a 500 without an error body',
      'ERR_HTTP_STATUS',
      () => new HttpResponse('oops', { status: 500 }),
    ],
    ['a 401 invalid_client', 'ERR_OAUTH_ERROR', json({ error: 'invalid_client' }, 401)],
    [
      'a redirect',
      'ERR_REDIRECT',
      () => new HttpResponse(null, { status: 302, headers: { location: '/x' } }),
    ],
    [
      'a body that is not JSON',
      'ERR_INVALID_RESPONSE',
      () => new HttpResponse(`device_code=${DEVICE_CODE}`),
    ],
    ['a JSON array', 'ERR_INVALID_RESPONSE', json([valid])],
    ['no device_code', 'ERR_INVALID_RESPONSE', json({ ...valid, device_code: undefined })],
    [
      'a device_code with spaces',
      'ERR_INVALID_RESPONSE',
      json({ ...valid, device_code: `${DEVICE_CODE} x` }),
    ],
    ['no user_code', 'ERR_INVALID_RESPONSE', json({ ...valid, user_code: undefined })],
    [
      'a user_code with control characters',
      'ERR_INVALID_RESPONSE',
      json({ ...valid, user_code: 'AB\r\nCD' }),
    ],
    ['a huge user_code', 'ERR_INVALID_RESPONSE', json({ ...valid, user_code: 'A'.repeat(65) })],
    [
      'no verification_uri',
      'ERR_INVALID_RESPONSE',
      json({ ...valid, verification_uri: undefined }),
    ],
    [
      'a plain-http verification_uri',
      'ERR_INVALID_RESPONSE',
      json({ ...valid, verification_uri: 'http://evil.example/device' }),
    ],
    [
      'a javascript: verification_uri_complete',
      'ERR_INVALID_RESPONSE',
      json({ ...valid, verification_uri_complete: 'javascript:alert(1)' }),
    ],
    ['no expires_in', 'ERR_INVALID_RESPONSE', json({ ...valid, expires_in: undefined })],
    ['expires_in 0', 'ERR_INVALID_RESPONSE', json({ ...valid, expires_in: 0 })],
    ['a fractional expires_in', 'ERR_INVALID_RESPONSE', json({ ...valid, expires_in: 1.5 })],
    ['a negative interval', 'ERR_INVALID_RESPONSE', json({ ...valid, interval: -5 })],
    ['an interval that is text', 'ERR_INVALID_RESPONSE', json({ ...valid, interval: 'soon' })],
  ])('%s → %s, no secret in it, no prompt, no poll', async (_, code, handler) => {
    const { polls } = deviceServer(['ok']);
    server.use(http.post(DEVICE_ENDPOINT, handler));
    const prompts: DeviceCodePrompt[] = [];
    const error = (await rejection(
      source({ clientSecret: SENTINEL.clientSecret }, prompts).obtain(makeContext()),
    )) as TokenWardenError;
    expect(error.code).toBe(code);
    if (code !== 'ERR_REDIRECT') expect(error.credentialId).toBe('test-credential');
    expect(prompts).toEqual([]);
    expect(polls).toEqual([]);
    expect(findLeaks([error], SECRETS)).toEqual([]);
  });

  it('accepts verification_url (older servers) and a string interval; raises interval 0 to 1 s', async () => {
    const prompts: DeviceCodePrompt[] = [];
    const { polls } = deviceServer(['pending', 'ok'], {
      verification_uri: undefined,
      verification_uri_complete: undefined,
      verification_url: 'https://auth.example.com/device',
      interval: '0',
      expires_in: '600',
    });
    await drive(source({}, prompts).obtain(makeContext()));
    expect(prompts[0]?.verificationUri).toBe('https://auth.example.com/device');
    expect(prompts[0]).not.toHaveProperty('verificationUriComplete');
    expect(prompts[0]?.interval).toBe(1);
    expect(gaps(polls)).toEqual([about(1), about(1)]);
  });
});

describe('deviceCode: refresh after sign-in', () => {
  it('refreshes from the current set with rotation, without a new sign-in', async () => {
    const { polls, refreshes } = deviceServer(['ok']);
    const prompts: DeviceCodePrompt[] = [];
    const dc = source({}, prompts);
    let current = await drive(dc.obtain(makeContext()));
    for (let i = 1; i <= 3; i += 1) {
      current = await dc.obtain(makeContext({ current }));
      expect(current.revealAccessToken()).toBe(`${SENTINEL.accessToken}-r${i}`);
      expect(current.revealRefreshToken()).toBe(`${SENTINEL.refreshToken}-r${i}`);
    }
    expect(prompts).toHaveLength(1);
    expect(polls).toHaveLength(1);
    expect(refreshes.map((form) => form.get('refresh_token'))).toEqual([
      `${SENTINEL.refreshToken}-0`,
      `${SENTINEL.refreshToken}-r1`,
      `${SENTINEL.refreshToken}-r2`,
    ]);
    // A refresh keeps the granted scope: no scope parameter.
    expect(refreshes.every((form) => !form.has('scope') && form.get('client_id') === 'cli')).toBe(
      true,
    );
    expect(current.scope).toEqual(['openid', 'offline_access']);
  });

  it('a rejected refresh token is an OAuthError invalid_grant, not a new sign-in', async () => {
    const { polls } = deviceServer(['ok']);
    const current = new TokenSet({
      accessToken: 'old',
      refreshToken: 'rejected',
      expiresAt: Date.now(),
      issuedAt: Date.now() - 1_000,
    });
    const error = (await rejection(source().obtain(makeContext({ current })))) as OAuthError;
    expect(error).toBeInstanceOf(OAuthError);
    expect(error.error).toBe('invalid_grant');
    expect(polls).toHaveLength(0);
  });

  it('a current set without a refresh token starts a new sign-in', async () => {
    const { polls } = deviceServer(['ok']);
    const current = new TokenSet({
      accessToken: 'old',
      expiresAt: Date.now(),
      issuedAt: Date.now() - 1_000,
    });
    await drive(source().obtain(makeContext({ current })));
    expect(polls).toHaveLength(1);
  });
});

describe('deviceCode in a credential', () => {
  let warden: Warden | undefined;
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
  });

  function observed(w: Warden) {
    const seen: unknown[] = [];
    for (const name of [
      'refresh',
      'refresh-error',
      'reauth-required',
      'revoke',
      'blocked',
      'tamper',
      'anomaly',
    ] as const) {
      w.on(name, (event) => seen.push({ name, event }));
    }
    return seen;
  }

  it('signs in once, refreshes with rotation, and goes reauth-required on invalid_grant; the device code appears nowhere', async () => {
    const { refreshes } = deviceServer(['pending', 'slow_down', 'ok']);
    const logs: LogRecord[] = [];
    warden = createWarden({ store: memoryStore(), logger: (record) => logs.push(record) });
    const seen = observed(warden);
    const prompts: DeviceCodePrompt[] = [];
    const cred = warden.register('cli', {
      source: source({ clientSecret: SENTINEL.clientSecret }, prompts),
      origins: ['https://api.example.com'],
    });

    const first = await drive(cred.getToken());
    expect(first.reveal()).toBe(`${SENTINEL.accessToken}-0`);
    expect(prompts).toHaveLength(1);
    const second = await drive(cred.getToken({ forceRefresh: true }));
    expect(second.reveal()).toBe(`${SENTINEL.accessToken}-r1`);
    expect(refreshes[0]?.get('refresh_token')).toBe(`${SENTINEL.refreshToken}-0`);
    expect(cred.status().state).toBe('valid');
    expect(cred.status().source).toMatchObject({ kind: 'device_code', clientId: 'cli' });

    // The server forgets the grant: the next refresh is rejected.
    server.use(
      http.post(TOKEN_ENDPOINT, () =>
        HttpResponse.json({ error: 'invalid_grant' }, { status: 400 }),
      ),
    );
    const error = (await drive(
      rejection(cred.getToken({ forceRefresh: true })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_REAUTH_REQUIRED');
    expect(cred.status().state).toBe('reauth-required');
    expect(prompts).toHaveLength(1);

    expect(seen.some((item) => (item as { name: string }).name === 'refresh')).toBe(true);
    expect(
      findLeaks([...seen, ...logs, error, cred.status(), inspect(cred)], [DEVICE_CODE]),
    ).toEqual([]);
    expect(findLeaks([...seen, ...logs, error], [SENTINEL.clientSecret])).toEqual([]);
  });

  it('a declined sign-in surfaces ERR_ACCESS_DENIED with no secret in events or logs', async () => {
    deviceServer(['pending', 'access_denied']);
    const logs: LogRecord[] = [];
    warden = createWarden({ store: memoryStore(), logger: (record) => logs.push(record) });
    const seen = observed(warden);
    const cred = warden.register('cli', {
      source: source({ clientSecret: SENTINEL.clientSecret }),
      origins: ['https://api.example.com'],
    });
    const error = (await drive(rejection(cred.getToken()))) as TokenWardenError;
    expect(error.code).toBe('ERR_ACCESS_DENIED');
    expect(
      seen.some(
        (item) =>
          (item as { name: string; event: { code?: string } }).name === 'refresh-error' &&
          (item as { event: { code?: string } }).event.code === 'ERR_ACCESS_DENIED',
      ),
    ).toBe(true);
    expect(findLeaks([...seen, ...logs, error, cred.status()], SECRETS)).toEqual([]);
  });
});
