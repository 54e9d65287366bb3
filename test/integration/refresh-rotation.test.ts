// refresh_token with rotation against a real oidc-provider, which revokes the whole grant when
// a rotated refresh token is reused: any double redemption shows up as invalid_grant.
import { afterEach, describe, expect, it } from 'vitest';
import { collect, refreshCredential, useOidcServer, useWarden } from '../support/harness.js';
import type { TokenRequestRecord } from '../support/oidc-server.js';

const server = useOidcServer();
afterEach(() => {
  server().setTtl({ accessToken: 300 });
});
// Registered after the hook above: after-hooks run as a stack, so the warden closes first.
const newWarden = useWarden();

/** The refresh_token requests made since `from`, in order. */
function refreshRequests(from: number): TokenRequestRecord[] {
  return server()
    .tokenRequests.slice(from)
    .filter((r) => r.grantType === 'refresh_token');
}

/** Each request redeemed the refresh token the previous answer issued, and each only once. */
function expectCleanChain(records: TokenRequestRecord[], first: string): void {
  expect(records.every((r) => r.status === 200)).toBe(true);
  let expected = first;
  const seen = new Set<string>();
  for (const record of records) {
    expect(record.sentRefreshToken).toBe(expected);
    expect(seen.has(record.sentRefreshToken as string)).toBe(false);
    seen.add(record.sentRefreshToken as string);
    expect(record.issuedRefreshToken).toBeTruthy();
    expect(record.issuedRefreshToken).not.toBe(record.sentRefreshToken);
    expected = record.issuedRefreshToken as string;
  }
}

async function register(id: string, options: { keepFresh?: boolean } = {}) {
  const op = server();
  const minted = await op.mintRefreshToken();
  const warden = newWarden();
  const events = { refresh: collect(warden, 'refresh'), errors: collect(warden, 'refresh-error') };
  const cred = refreshCredential(op, warden, id, minted, {
    maxForcedRefreshesPerMinute: 100,
    ...options,
  });
  return { cred, minted, events };
}

describe('refresh_token rotation against oidc-provider', () => {
  it('rotates six times with forced refreshes and never redeems a token twice', async () => {
    const op = server();
    const start = op.tokenRequests.length;
    const { cred, minted, events } = await register('rotating');

    const accessTokens = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const token = await cred.getToken({ forceRefresh: i > 0 });
      accessTokens.add(token.reveal());
      const res = await cred.fetch(`${op.resource.origin}/v1/me`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ ok: true, clientId: 'refresh-client' });
    }

    const chain = refreshRequests(start);
    expect(chain).toHaveLength(6);
    expectCleanChain(chain, minted.refreshToken);
    expect(op.tokenCounts('refresh_token').errors['invalid_grant'] ?? 0).toBe(0);
    expect(accessTokens.size).toBe(6);
    expect(events.errors).toEqual([]);
    expect(events.refresh).toHaveLength(chain.length);
    // The first redemption replaces the configured refresh token; whether that counts as
    // "rotated" is the credential's call. Every later one is a rotation.
    expect(events.refresh.slice(1).every((e) => e.rotated)).toBe(true);
    expect(cred.status().state).toBe('valid');
  });

  it('shares one refresh among concurrent callers', async () => {
    const op = server();
    const start = op.tokenRequests.length;
    const { cred, minted } = await register('single-flight');
    await cred.getToken();
    const afterFirst = refreshRequests(start).length;

    const results = await Promise.all([
      ...Array.from({ length: 8 }, () => cred.getToken({ forceRefresh: true })),
      ...Array.from({ length: 8 }, () => cred.fetch(`${op.resource.origin}/v1/me`)),
    ]);
    for (const result of results) {
      if (result instanceof Response) expect(result.status).toBe(200);
    }
    const chain = refreshRequests(start);
    // 8 concurrent forced refreshes share one token request (the fetches need none).
    expect(chain.length - afterFirst).toBe(1);
    expectCleanChain(chain, minted.refreshToken);
  });

  it('refreshes short-lived tokens before expiry without failing a request', async () => {
    const op = server();
    op.setTtl({ accessToken: 2 });
    const start = op.tokenRequests.length;
    const { cred, minted, events } = await register('short-lived');
    const statuses: number[] = [];
    const until = Date.now() + 7_000;
    while (Date.now() < until) {
      const res = await cred.fetch(`${op.resource.origin}/v1/me`);
      statuses.push(res.status);
      await res.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    const chain = refreshRequests(start);
    // 2 s tokens over 7 s: at least 3 rotations, and not one per request.
    expect(chain.length).toBeGreaterThanOrEqual(3);
    expect(chain.length).toBeLessThan(statuses.length / 2);
    expectCleanChain(chain, minted.refreshToken);
    expect(events.errors).toEqual([]);
  });

  it('keeps tokens fresh on a timer with keepFresh', async () => {
    const op = server();
    op.setTtl({ accessToken: 2 });
    const start = op.tokenRequests.length;
    const { cred, minted } = await register('timer', { keepFresh: true });
    expect((await cred.fetch(`${op.resource.origin}/v1/me`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    const chain = refreshRequests(start);
    expect(chain.length).toBeGreaterThanOrEqual(2);
    expectCleanChain(chain, minted.refreshToken);
    expect((await cred.fetch(`${op.resource.origin}/v1/me`)).status).toBe(200);
  });
});
