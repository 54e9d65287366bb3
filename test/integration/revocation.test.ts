// Server-side revocation against a real oidc-provider: a revoked access token costs exactly one
// refresh and one retry; a revoked grant ends in reauth-required with no further token traffic.
import { describe, expect, it } from 'vitest';
import { isTokenWardenError, ReauthRequiredError } from '../../src/index.js';
import {
  basicClient,
  clientCredential,
  collect,
  countSince,
  tokenCountsSince,
} from '../support/harness.js';
import { useRevocationFixture } from '../support/revocation-fixture.js';

const { server, newWarden, onNewGrant } = useRevocationFixture();

function bearerOf(index: number): string | undefined {
  const header = server().resource.requests[index]?.headers['authorization'];
  return typeof header === 'string' ? header.replace(/^Bearer /, '') : undefined;
}

describe('a token revoked at the server', () => {
  it('client_credentials: one refresh, one retry with the body replayed, then success', async () => {
    const op = server();
    const warden = newWarden();
    const refreshes = collect(warden, 'refresh');
    const cred = clientCredential(op, warden, 'cc', basicClient(op));
    expect((await cred.fetch(`${op.resource.origin}/v1/ping`)).status).toBe(200);
    const revoked = (await cred.getToken()).reveal();
    expect(await op.revokeAccessToken(revoked)).toBe(true);

    const tokens = tokenCountsSince(op, 'client_credentials');
    const rsBefore = op.resource.requests.length;
    const res = await cred.fetch(`${op.resource.origin}/v1/invoices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 42 }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, body: '{"amount":42}' });

    expect(tokens().total).toBe(1);
    expect(op.resource.statuses.slice(rsBefore)).toEqual([401, 200]);
    expect(bearerOf(rsBefore)).toBe(revoked);
    expect(bearerOf(rsBefore + 1)).not.toBe(revoked);
    expect(op.resource.requests[rsBefore + 1]?.body).toBe('{"amount":42}');
    expect(refreshes.map((e) => e.reason)).toEqual(['initial', 'forced']);
  });

  it('refresh_token: one refresh, one retry, and the grant lives on', async () => {
    const { op, cred } = await onNewGrant(newWarden(), 'rt');
    expect((await cred.fetch(`${op.resource.origin}/v1/me`)).status).toBe(200);
    expect(await op.revokeAccessToken((await cred.getToken()).reveal())).toBe(true);

    const tokens = tokenCountsSince(op, 'refresh_token');
    const rsBefore = op.resource.requests.length;
    expect((await cred.fetch(`${op.resource.origin}/v1/me`)).status).toBe(200);
    const after = tokens();
    expect(after.total).toBe(1);
    expect(after.ok).toBe(1);
    expect(op.resource.statuses.slice(rsBefore)).toEqual([401, 200]);
    expect(cred.status().state).toBe('valid');
  });

  it('never retries twice when the new token is rejected too', async () => {
    const op = server();
    const cred = clientCredential(op, newWarden(), 'cc-twice', basicClient(op));
    expect((await cred.fetch(`${op.resource.origin}/v1/ping`)).status).toBe(200);
    op.resource.setOverride({ status: 401, wwwAuthenticate: 'Bearer error="invalid_token"' });
    try {
      const tokens = tokenCountsSince(op, 'client_credentials');
      const apiRequests = countSince(() => op.resource.requests.length);
      const res = await cred.fetch(`${op.resource.origin}/v1/ping`);
      expect(res.status).toBe(401);
      expect(apiRequests()).toBe(2);
      expect(tokens().total).toBe(1);
    } finally {
      op.resource.setOverride(undefined);
    }
  });

  it('does not refresh on 403 insufficient_scope', async () => {
    const op = server();
    const cred = clientCredential(op, newWarden(), 'cc-403', basicClient(op));
    expect((await cred.fetch(`${op.resource.origin}/v1/ping`)).status).toBe(200);
    op.resource.setOverride({
      status: 403,
      wwwAuthenticate: 'Bearer error="insufficient_scope", scope="api:write"',
    });
    try {
      const tokens = tokenCountsSince(op);
      const apiRequests = countSince(() => op.resource.requests.length);
      expect((await cred.fetch(`${op.resource.origin}/v1/ping`)).status).toBe(403);
      expect(apiRequests()).toBe(1);
      expect(tokens().total).toBe(0);
    } finally {
      op.resource.setOverride(undefined);
    }
  });
});

/** A refresh_token credential on a freshly minted grant, and its reauth-required events. */
async function registerOnNewGrant(id: string) {
  const warden = newWarden();
  const reauth = collect(warden, 'reauth-required');
  return { ...(await onNewGrant(warden, id)), reauth };
}

describe('a grant revoked at the server', () => {
  it('moves the credential to reauth-required, fails requests fast, and stops token traffic', async () => {
    const { op, minted, cred, reauth } = await registerOnNewGrant('revoked-grant');
    expect((await cred.fetch(`${op.resource.origin}/v1/me`)).status).toBe(200);

    await op.revokeGrant(minted.grantId);

    // The access token died with the grant: 401 → one forced refresh → invalid_grant.
    const tokens = tokenCountsSince(op, 'refresh_token');
    const first = await cred.fetch(`${op.resource.origin}/v1/me`).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(ReauthRequiredError);
    expect((first as ReauthRequiredError).code).toBe('ERR_REAUTH_REQUIRED');
    const afterFirst = tokens();
    expect(afterFirst.total).toBe(1);
    expect(afterFirst.errors['invalid_grant'] ?? 0).toBe(1);
    expect(reauth).toEqual([
      expect.objectContaining({ id: 'revoked-grant', error: 'invalid_grant' }),
    ]);
    expect(cred.status().state).toBe('reauth-required');

    // From now on: coded errors, no token-endpoint request, no API request.
    const tokenRequests = op.tokenRequests.length;
    const apiRequests = op.resource.requests.length;
    const attempts = await Promise.allSettled([
      cred.fetch(`${op.resource.origin}/v1/me`),
      cred.ky({ prefix: `${op.resource.origin}/v1/` }).get('me'),
      cred.getToken(),
      cred.getToken({ forceRefresh: true }),
    ]);
    for (const attempt of attempts) {
      expect(attempt.status).toBe('rejected');
      const reason = (attempt as PromiseRejectedResult).reason as unknown;
      expect(isTokenWardenError(reason) && reason.code).toBe('ERR_REAUTH_REQUIRED');
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(op.tokenRequests.length).toBe(tokenRequests);
    expect(op.resource.requests.length).toBe(apiRequests);
    expect(reauth).toHaveLength(1);
  });

  it('treats reuse of a rotated refresh token as a revoked grant, not a loop', async () => {
    const { op, minted, cred, reauth } = await registerOnNewGrant('reused');
    await cred.getToken();
    // Someone else redeems the (already rotated) original token: the server revokes the grant.
    const stolen = await fetch(op.tokenEndpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${btoa(`${op.clients.refresh.clientId}:${op.clients.refresh.clientSecret}`)}`,
      },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: minted.refreshToken,
      }),
    });
    expect(stolen.status).toBe(400);

    const tokenRequests = countSince(() => op.tokenRequests.length);
    const error = await cred.getToken({ forceRefresh: true }).catch((e: unknown) => e);
    expect(isTokenWardenError(error) && error.code).toBe('ERR_REAUTH_REQUIRED');
    expect(tokenRequests()).toBe(1);
    expect(reauth).toHaveLength(1);
  });
});
