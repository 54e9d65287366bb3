// TokenSource.attach(): an interactive source installs a token set it obtained on its own (a
// sign-in) through the credential, with the guarantees of a refresh: stored, announced to other
// wardens sharing the store, `refresh` event, reauth-required cleared.
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createWarden,
  memoryStore,
  ReauthRequiredError,
  type SourceBinding,
  TokenSet,
  type TokenSource,
  TokenWardenError,
  type Warden,
} from '../../src/index.js';
import { SENTINEL } from '../support/sentinel.js';

const API = 'https://api.example.com';
const seen: string[] = [];
const server = setupServer(
  http.get(`${API}/*`, ({ request }) => {
    seen.push(request.headers.get('authorization') ?? '');
    return HttpResponse.json({ ok: true });
  }),
);
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

const wardens: Warden[] = [];
afterEach(async () => {
  await Promise.all(wardens.splice(0).map((w) => w.close()));
  seen.length = 0;
});

/** A source that can only be signed in: obtain() without a refresh token asks for the user. */
function signInSource() {
  const bindings: SourceBinding[] = [];
  const source: TokenSource = {
    kind: 'authorization_code',
    interactive: true,
    info: () => ({ kind: 'authorization_code' }),
    async obtain(context) {
      throw new ReauthRequiredError(context.credentialId);
    },
    attach(binding) {
      bindings.push(binding);
    },
  };
  return { source, bindings };
}

function tokens(n: number, lifetimeMs = 3_600_000): TokenSet {
  const now = Date.now();
  return new TokenSet({
    accessToken: `${SENTINEL.accessToken}-${n}`,
    refreshToken: `${SENTINEL.refreshToken}-${n}`,
    issuedAt: now,
    expiresAt: now + lifetimeMs,
  });
}

describe('a source bound to its credential', () => {
  it('is attached once, with the credential id and a context', () => {
    const { source, bindings } = signInSource();
    const warden = createWarden();
    wardens.push(warden);
    warden.register('me', { source, origins: [API] });
    expect(bindings).toHaveLength(1);
    expect(bindings[0]?.credentialId).toBe('me');
    const context = bindings[0]?.context();
    expect(context?.credentialId).toBe('me');
    expect(context?.signal.aborted).toBe(false);
    expect(context?.current).toBeUndefined();
  });

  it('installs a signed-in set: stored, used, announced, and ends reauth-required', async () => {
    const store = memoryStore();
    const { source, bindings } = signInSource();
    const warden = createWarden({ store });
    const other = createWarden({ store }); // another "tab" sharing the store
    wardens.push(warden, other);
    const me = warden.register('me', { source, origins: [API] });
    const events: string[] = [];
    warden.on('refresh', (e) => events.push(`refresh:${e.reason}`));
    warden.on('reauth-required', (e) => events.push(`reauth:${e.error}`));
    const twin = other.register('me', { source: signInSource().source, origins: [API] });

    await expect(me.fetch(`${API}/x`)).rejects.toBeInstanceOf(ReauthRequiredError);
    expect(me.status().state).toBe('reauth-required');

    await bindings[0]?.install(tokens(1));
    expect(me.status().state).toBe('valid');
    expect((await me.fetch(`${API}/x`)).status).toBe(200);
    expect(seen.at(-1)).toBe(`Bearer ${SENTINEL.accessToken}-1`);
    expect((await store.get('me'))?.tokens.revealAccessToken()).toBe(`${SENTINEL.accessToken}-1`);
    // The other warden takes the stored set over instead of asking its user.
    expect((await twin.fetch(`${API}/y`)).status).toBe(200);
    expect(seen.at(-1)).toBe(`Bearer ${SENTINEL.accessToken}-1`);

    // A sign-out makes it reauth-required again (an interactive source needs its user)...
    await me.forget();
    expect(me.status().state).toBe('reauth-required');
    // ...until the next sign-in, which replaces the set.
    await bindings[0]?.install(tokens(2));
    expect((await me.fetch(`${API}/z`)).status).toBe(200);
    expect(seen.at(-1)).toBe(`Bearer ${SENTINEL.accessToken}-2`);
    expect(events).toEqual([
      'reauth:no_refresh_token',
      'refresh:initial',
      'reauth:signed_out',
      'refresh:initial',
    ]);
  });

  it('binds a source given to reauthenticate()', async () => {
    const first = signInSource();
    const second = signInSource();
    const warden = createWarden();
    wardens.push(warden);
    const me = warden.register('me', { source: first.source, origins: [API] });
    me.reauthenticate(second.source);
    expect(second.bindings).toHaveLength(1);
    await second.bindings[0]?.install(tokens(7));
    expect((await me.fetch(`${API}/x`)).status).toBe(200);
    expect(seen.at(-1)).toBe(`Bearer ${SENTINEL.accessToken}-7`);
  });

  it('refuses anything but a TokenSet, and a closed credential, with coded errors', async () => {
    const { source, bindings } = signInSource();
    const warden = createWarden();
    wardens.push(warden);
    const me = warden.register('me', { source, origins: [API] });
    await expect(bindings[0]?.install({ accessToken: 'x' } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    await me.close();
    await expect(bindings[0]?.install(tokens(3))).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect(bindings[0]?.context().signal.aborted).toBe(true);
  });

  it('runs a slow sign-in outside the refresh lock, and never retries a failed one unasked', async () => {
    let prompts = 0;
    let outcome: 'approve' | 'decline' = 'approve';
    const source: TokenSource = {
      kind: 'device_code',
      interactive: true,
      info: () => ({ kind: 'device_code' }),
      async obtain(context) {
        prompts++;
        // The user takes longer than the lock's TTL; the lease expiring must not abort this.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        if (context.signal.aborted) throw new Error('aborted under the lock');
        if (outcome === 'decline') {
          throw new TokenWardenError('ERR_ACCESS_DENIED', 'The user declined the sign-in.');
        }
        return tokens(prompts);
      },
    };
    const store = memoryStore();
    const warden = createWarden({ store });
    wardens.push(warden);
    const errors: (number | undefined)[] = [];
    warden.on('refresh-error', (e) => errors.push(e.retryAt));
    const me = warden.register('me', {
      source,
      origins: [API],
      timeout: '300ms',
      lockTtl: '600ms',
      keepFresh: true,
    });
    const token = await me.getToken();
    expect(token.reveal()).toBe(`${SENTINEL.accessToken}-1`);
    expect((await store.get('me'))?.tokens.revealAccessToken()).toBe(`${SENTINEL.accessToken}-1`);

    // A declined sign-in: reported, no background retry (no second prompt), no backoff.
    await me.forget();
    outcome = 'decline';
    await expect(me.getToken()).rejects.toMatchObject({ code: 'ERR_ACCESS_DENIED' });
    expect(errors).toEqual([undefined]);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(prompts).toBe(2);
    outcome = 'approve';
    expect((await me.getToken()).reveal()).toBe(`${SENTINEL.accessToken}-3`);
  }, 15_000);
});
