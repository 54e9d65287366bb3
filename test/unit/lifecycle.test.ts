import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Credential } from '../../src/credential.js';
import { OAuthError, ReauthRequiredError, TokenWardenError } from '../../src/errors.js';
import type { WardenEvents } from '../../src/events.js';
import type { SourceContext, TokenSource } from '../../src/sources/types.js';
import { TokenSet } from '../../src/token.js';
import { createWarden, type Warden } from '../../src/warden.js';

const ORIGIN = 'https://api.example.test';

interface FakeSource extends TokenSource {
  readonly calls: SourceContext[];
  /** Replace what the next calls do. */
  next: (context: SourceContext) => Promise<TokenSet>;
}

let minted = 0;
function mint(lifetimeMs: number, extra: Partial<ConstructorParameters<typeof TokenSet>[0]> = {}) {
  minted++;
  const now = Date.now();
  return new TokenSet({
    accessToken: `access-sentinel-${minted}`,
    expiresAt: now + lifetimeMs,
    issuedAt: now,
    ...extra,
  });
}

function fakeSource(lifetimeMs = 100_000): FakeSource {
  const source: FakeSource = {
    kind: 'custom',
    calls: [],
    next: async () => mint(lifetimeMs),
    info: () => ({ kind: 'custom' }),
    obtain(context) {
      source.calls.push(context);
      return source.next(context);
    },
  };
  return source;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function record(warden: Warden) {
  const seen: { event: keyof WardenEvents; payload: unknown }[] = [];
  for (const event of [
    'refresh',
    'refresh-error',
    'reauth-required',
    'blocked',
  ] as (keyof WardenEvents)[]) {
    warden.on(event, (payload: unknown) => seen.push({ event, payload }));
  }
  return seen;
}

describe('credential lifecycle', () => {
  let warden: Warden;
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    warden = createWarden();
  });
  afterEach(async () => {
    await warden.close();
    vi.useRealTimers();
  });

  function register(source: TokenSource, extra: Record<string, unknown> = {}): Credential {
    return warden.register('api', { source, origins: [ORIGIN], ...extra });
  }

  it('shares one token request among concurrent callers (single-flight)', async () => {
    const source = fakeSource();
    const gate = deferred<TokenSet>();
    source.next = () => gate.promise;
    const credential = register(source);
    const waiting = Array.from({ length: 25 }, () => credential.getToken());
    await vi.advanceTimersByTimeAsync(0);
    expect(source.calls).toHaveLength(1);
    gate.resolve(mint(100_000));
    const tokens = await Promise.all(waiting);
    expect(new Set(tokens.map((t) => t.reveal())).size).toBe(1);
    expect(source.calls).toHaveLength(1);
  });

  it('clears the shared promise after success: a later forced refresh makes a new request', async () => {
    const source = fakeSource();
    const credential = register(source);
    const first = await credential.getToken();
    const second = await credential.getToken({ forceRefresh: true });
    expect(source.calls).toHaveLength(2);
    expect(second.reveal()).not.toBe(first.reveal());
    expect(credential.status().refreshing).toBe(false);
  });

  it('clears the shared promise after failure: the next attempt makes a new request', async () => {
    const source = fakeSource();
    source.next = async () => {
      throw new TokenWardenError('ERR_NETWORK', 'unreachable');
    };
    const credential = register(source, { backoff: { initial: 1_000, max: 1_000 } });
    await expect(credential.getToken()).rejects.toMatchObject({ code: 'ERR_NETWORK' });
    expect(credential.status().refreshing).toBe(false);
    source.next = async () => mint(100_000);
    await vi.advanceTimersByTimeAsync(1_001);
    await expect(credential.getToken()).resolves.toBeDefined();
    expect(source.calls).toHaveLength(2);
  });

  it('refreshes in the background inside the window while requests go on with the valid token', async () => {
    const source = fakeSource(100_000);
    const credential = register(source);
    const first = await credential.getToken();
    const refreshAt = credential.status().refreshAt!;
    // Window: a fifth of 100 s plus up to 50 % jitter, so refresh is due 20–30 s before expiry.
    expect(refreshAt - first.issuedAt).toBeGreaterThanOrEqual(70_000);
    expect(refreshAt - first.issuedAt).toBeLessThanOrEqual(80_000);

    const gate = deferred<TokenSet>();
    source.next = () => gate.promise;
    vi.setSystemTime(refreshAt + 1);
    // These resolve although the refresh has not: nobody waits while a valid token exists.
    const during = await Promise.all([credential.getToken(), credential.getToken()]);
    expect(during.map((t) => t.reveal())).toEqual([first.reveal(), first.reveal()]);
    await vi.advanceTimersByTimeAsync(0); // the background refresh reaches the source
    expect(source.calls).toHaveLength(2);
    expect(source.calls[1]?.current?.revealAccessToken()).toBe(first.reveal());
    gate.resolve(mint(100_000));
    await vi.advanceTimersByTimeAsync(0);
    expect((await credential.getToken()).reveal()).not.toBe(first.reveal());
    expect(source.calls).toHaveLength(2);
  });

  it('does not refresh a short-lived token on every request', async () => {
    const source = fakeSource(2_000);
    const credential = register(source, { refreshWindow: '10m' });
    await credential.getToken();
    // A 10-minute window is capped at half the lifetime.
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(150);
      await credential.getToken();
    }
    expect(source.calls).toHaveLength(1);
  });

  it('spreads refresh times with jitter so a fleet does not refresh in lockstep', async () => {
    const refreshTimes = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const credential = warden.register(`c${i}`, {
        source: fakeSource(3_600_000),
        origins: [ORIGIN],
      });
      await credential.getToken();
      refreshTimes.add(credential.status().refreshAt!);
    }
    expect(refreshTimes.size).toBeGreaterThan(15);
  });

  it('waits for a refresh when the token has expired', async () => {
    const source = fakeSource(10_000);
    const credential = register(source);
    const first = await credential.getToken();
    vi.setSystemTime(first.expiresAt + 1);
    const next = await credential.getToken();
    expect(next.reveal()).not.toBe(first.reveal());
    expect(source.calls).toHaveLength(2);
  });

  it('with keepFresh, refreshes on a timer without any request', async () => {
    const source = fakeSource(60_000);
    const credential = register(source, { keepFresh: true });
    const seen = record(warden);
    await credential.getToken();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(source.calls.length).toBeGreaterThanOrEqual(2);
    expect(
      seen
        .filter((e) => e.event === 'refresh')
        .map((e) => (e.payload as { reason: string }).reason),
    ).toContain('scheduled');
    await warden.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('backs off after failures, honours Retry-After and keeps serving a valid token', async () => {
    const source = fakeSource(100_000);
    const credential = register(source);
    const seen = record(warden);
    const first = await credential.getToken();
    source.next = async () => {
      throw new TokenWardenError('ERR_HTTP_STATUS', 'The token endpoint answered 503.', {
        status: 503,
        response: new Response(null, { status: 503, headers: { 'retry-after': '120' } }),
      });
    };
    vi.setSystemTime(credential.status().refreshAt! + 1);
    expect((await credential.getToken()).reveal()).toBe(first.reveal());
    await vi.advanceTimersByTimeAsync(0);
    const status = credential.status();
    expect(status.failures).toBe(1);
    expect(status.retryAt! - Date.now()).toBeGreaterThanOrEqual(119_000);
    const error = seen.find((e) => e.event === 'refresh-error')?.payload as {
      servingStale: boolean;
      code: string;
    };
    expect(error).toMatchObject({ servingStale: true, code: 'ERR_HTTP_STATUS' });
    // Within the backoff, requests use the still-valid token and cause no token request.
    for (let i = 0; i < 10; i++) await credential.getToken();
    expect(source.calls).toHaveLength(2);
  });

  it('fails fast during backoff when no valid token exists, without contacting the source', async () => {
    const source = fakeSource();
    source.next = async () => {
      throw new TokenWardenError('ERR_NETWORK', 'unreachable');
    };
    const credential = register(source, { backoff: { initial: '10s', max: '1m' } });
    await expect(credential.getToken()).rejects.toMatchObject({ code: 'ERR_NETWORK' });
    await expect(credential.getToken()).rejects.toMatchObject({ code: 'ERR_NETWORK' });
    expect(source.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_001);
    await expect(credential.getToken()).rejects.toMatchObject({ code: 'ERR_NETWORK' });
    expect(source.calls).toHaveLength(2);
    // Exponential: the second delay is longer than the first ceiling's half.
    expect(credential.status().retryAt! - Date.now()).toBeGreaterThanOrEqual(10_000);
  });

  it.each(['invalid_grant', 'invalid_client', 'unauthorized_client'])(
    '%s moves the credential to reauth-required with no further token requests',
    async (code) => {
      const source = fakeSource();
      source.next = async () => {
        throw new OAuthError(code, 'rejected', { status: 400 });
      };
      const credential = register(source, { keepFresh: true });
      const seen = record(warden);
      await expect(credential.getToken()).rejects.toBeInstanceOf(ReauthRequiredError);
      await expect(credential.getToken()).rejects.toMatchObject({ code: 'ERR_REAUTH_REQUIRED' });
      await expect(credential.fetch(`${ORIGIN}/x`)).rejects.toMatchObject({
        code: 'ERR_REAUTH_REQUIRED',
      });
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(source.calls).toHaveLength(1);
      expect(credential.status().state).toBe('reauth-required');
      expect(seen.filter((e) => e.event === 'reauth-required')).toEqual([
        { event: 'reauth-required', payload: { id: 'api', error: code } },
      ]);
      // New credentials end the state.
      const fresh = fakeSource();
      credential.reauthenticate(fresh);
      await expect(credential.getToken()).resolves.toBeDefined();
      expect(credential.status().state).toBe('valid');
    },
  );

  it('passes the stored refresh token to the source and reports rotation', async () => {
    const source = fakeSource();
    let n = 0;
    source.next = async () => mint(100_000, { refreshToken: `refresh-sentinel-${++n}` });
    const credential = register(source);
    const seen = record(warden);
    await credential.getToken();
    await credential.getToken({ forceRefresh: true });
    expect(source.calls[1]?.current?.revealRefreshToken()).toBe('refresh-sentinel-1');
    const refreshes = seen.filter((e) => e.event === 'refresh').map((e) => e.payload);
    expect(refreshes).toMatchObject([{ rotated: false }, { rotated: true, reason: 'forced' }]);
  });

  it('close() aborts a refresh in flight, fails later calls and leaves no timer behind', async () => {
    const source = fakeSource();
    source.next = (context) =>
      new Promise((_, reject) =>
        context.signal.addEventListener('abort', () => reject(context.signal.reason)),
      );
    const credential = register(source, { keepFresh: true });
    const pending = credential.getToken();
    await vi.advanceTimersByTimeAsync(0);
    await credential.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(credential.getToken()).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect(credential.status().state).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
    expect(warden.get('api')).toBeUndefined();
  });

  it('lets one caller stop waiting with its signal without cancelling the shared refresh', async () => {
    const source = fakeSource();
    const gate = deferred<TokenSet>();
    source.next = () => gate.promise;
    const credential = register(source);
    const controller = new AbortController();
    const impatient = credential.getToken({ signal: controller.signal });
    const patient = credential.getToken();
    controller.abort();
    await expect(impatient).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    gate.resolve(mint(100_000));
    await expect(patient).resolves.toBeDefined();
    expect(source.calls).toHaveLength(1);
  });

  it('wraps a source that throws a foreign error in a coded error', async () => {
    const source = fakeSource();
    source.next = async () => {
      throw new Error('boom with access-sentinel-secret');
    };
    const credential = register(source);
    const error = await credential.getToken().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_SOURCE_FAILED' });
    expect(String((error as Error).message)).not.toContain('sentinel');
  });

  it('an event listener that throws does not break the refresh', async () => {
    const source = fakeSource();
    const credential = register(source);
    warden.on('refresh', () => {
      throw new Error('listener bug');
    });
    credential.on('refresh', () => {
      throw new Error('listener bug');
    });
    await expect(credential.getToken()).resolves.toBeDefined();
  });

  it('never shows a token through inspect, JSON or string conversion', async () => {
    const source = fakeSource();
    source.next = async () => mint(100_000, { refreshToken: 'refresh-sentinel-x' });
    const credential = register(source);
    const token = await credential.getToken();
    const raw = token.reveal();
    for (const shown of [
      inspect(token, { depth: 5, showHidden: true }),
      JSON.stringify(token),
      String(token),
      `${token}`,
      inspect(credential, { depth: 5 }),
      JSON.stringify(credential),
      inspect(warden, { depth: 5 }),
      JSON.stringify(credential.status()),
    ]) {
      expect(shown).not.toContain(raw);
      expect(shown).not.toContain('refresh-sentinel-x');
    }
    expect(String(token)).toBe('[REDACTED]');
  });
});

describe('register() validation', () => {
  it('rejects bad ids, duplicate ids, bad origins and bad sources with coded errors', async () => {
    const warden = createWarden();
    const source = fakeSource();
    const attempts: (() => unknown)[] = [
      () => warden.register('', { source, origins: [ORIGIN] }),
      () => warden.register('a b', { source, origins: [ORIGIN] }),
      () => warden.register('x'.repeat(129), { source, origins: [ORIGIN] }),
      () => warden.register('ok', { source, origins: ['not a url'] }),
      () => warden.register('ok', { source, origins: ['ftp://example.com'] }),
      () => warden.register('ok', { source, origins: ['http://example.com'] }),
      () => warden.register('ok', { source, origins: 'https://example.com' as never }),
      () => warden.register('ok', { source: {} as never, origins: [ORIGIN] }),
      () =>
        warden.register('ok', { source, origins: [ORIGIN], refreshWindow: '5 minutes' as never }),
      () => warden.register('ok', { source, origins: [ORIGIN], maxRedirects: -1 }),
      () => warden.register('ok', { source, origins: [ORIGIN], foreignOrigin: 'allow' as never }),
    ];
    for (const attempt of attempts) {
      expect(attempt).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
    warden.register('ok', {
      source,
      origins: [ORIGIN, 'http://127.0.0.1:8080', 'http://localhost'],
    });
    expect(() => warden.register('ok', { source, origins: [ORIGIN] })).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    await warden.close();
  });
});
