// credential.revoke() and warden.revokeAll() against a real oidc-provider: RFC 7009 at its
// revocation endpoint (refresh token first), checked by RFC 7662 introspection at the server.
import { describe, expect, it } from 'vitest';
import { clientCredentials, introspect, type LogRecord, type Warden } from '../../src/index.js';
import {
  basicClient,
  clientCredential,
  collect,
  countSince,
  tokenCountsSince,
} from '../support/harness.js';
import { BASIC_CLIENT_SECRET, type OidcServer } from '../support/oidc-server.js';
import { useRevocationFixture } from '../support/revocation-fixture.js';
import { findLeaks } from '../support/sentinel.js';

const { server, newWarden, onNewGrant } = useRevocationFixture();

/** The RFC 7009 requests the server received since `from`, as [hint, token] pairs. */
function revocations(op: OidcServer, from = 0): [string | null, string | null][] {
  const path = new URL(op.revocationEndpoint).pathname;
  return op.requests
    .slice(from)
    .filter((r) => r.url === path)
    .map((r) => {
      const form = new URLSearchParams(r.body);
      return [form.get('token_type_hint'), form.get('token')];
    });
}

async function active(op: OidcServer, token: string): Promise<unknown> {
  return (await op.introspect(token))['active'];
}

/** A warden whose events and logs are kept for the leak scan. */
function observedWarden(): { warden: Warden; observed: unknown[] } {
  const observed: unknown[] = [];
  const warden = newWarden({ logger: (line: LogRecord) => observed.push(line) });
  for (const name of ['refresh', 'refresh-error', 'reauth-required', 'revoke'] as const) {
    warden.on(name, (event) => observed.push(event));
  }
  return { warden, observed };
}

/** A refresh_token credential with a held set: its access token and (rotated) refresh token. */
async function refreshWithTokens(warden: Warden, id: string) {
  const { op, minted, cred } = await onNewGrant(warden, id);
  const accessToken = (await cred.getToken()).reveal();
  const refreshToken = op.tokenRequests.at(-1)?.issuedRefreshToken as string;
  expect(refreshToken).toBeTypeOf('string');
  return { minted, cred, accessToken, refreshToken };
}

describe('revoke() at a real authorization server', () => {
  it('refresh_token: revokes the refresh token first, then the access token; both inactive', async () => {
    const op = server();
    const { warden, observed } = observedWarden();
    const revokes = collect(warden, 'revoke');
    const { cred, accessToken, refreshToken, minted } = await refreshWithTokens(warden, 'rt');
    expect(await active(op, accessToken)).toBe(true);
    expect(await active(op, refreshToken)).toBe(true);

    const from = op.requests.length;
    const result = await cred.revoke();

    expect(revocations(op, from)).toEqual([
      ['refresh_token', refreshToken],
      ['access_token', accessToken],
    ]);
    expect(result).toMatchObject({
      id: 'rt',
      outcome: 'revoked',
      revokedAtServer: true,
      tokens: ['refresh_token', 'access_token'],
      failures: [],
    });
    expect(await active(op, refreshToken)).toBe(false);
    expect(await active(op, accessToken)).toBe(false);
    expect(revokes).toEqual([expect.objectContaining({ id: 'rt', revokedAtServer: true })]);

    // reauth-required, with no further token request.
    const tokenRequests = countSince(() => op.tokenRequests.length);
    expect(cred.status().state).toBe('reauth-required');
    await expect(cred.getToken()).rejects.toMatchObject({ code: 'ERR_REAUTH_REQUIRED' });
    await expect(cred.fetch(`${op.resource.origin}/v1/me`)).rejects.toMatchObject({
      code: 'ERR_REAUTH_REQUIRED',
    });
    expect(tokenRequests()).toBe(0);

    const secrets = [
      accessToken,
      refreshToken,
      minted.refreshToken,
      op.clients.refresh.clientSecret,
    ];
    expect(findLeaks([result, ...observed], secrets)).toEqual([]);
  });

  it('client_credentials: revokes the access token, then fetches a new one on the next request', async () => {
    const op = server();
    const { warden, observed } = observedWarden();
    const cred = clientCredential(op, warden, 'cc', basicClient(op));
    const accessToken = (await cred.getToken()).reveal();
    expect(await active(op, accessToken)).toBe(true);

    const from = op.requests.length;
    const result = await cred.revoke();
    expect(revocations(op, from)).toEqual([['access_token', accessToken]]);
    expect(result).toMatchObject({ outcome: 'revoked', tokens: ['access_token'] });
    expect(await active(op, accessToken)).toBe(false);

    const tokens = tokenCountsSince(op, 'client_credentials');
    const res = await cred.fetch(`${op.resource.origin}/v1/ping`);
    expect(res.status).toBe(200);
    expect(tokens().ok).toBe(1);
    const next = (await cred.getToken()).reveal();
    expect(next).not.toBe(accessToken);
    expect(await active(op, next)).toBe(true);
    expect(findLeaks([result, ...observed], [accessToken, next, BASIC_CLIENT_SECRET])).toEqual([]);
  });
});

describe('revoke() and the access tokens a refresh replaced', () => {
  it('client_credentials: every token issued and not expired is inactive after revoke()', async () => {
    const op = server();
    const { warden, observed } = observedWarden();
    const cred = clientCredential(op, warden, 'cc-replaced', basicClient(op));
    const first = (await cred.getToken()).reveal();
    const second = (await cred.getToken({ forceRefresh: true })).reveal();
    const third = (await cred.getToken({ forceRefresh: true })).reveal();
    expect(new Set([first, second, third]).size).toBe(3);
    // A refresh does not end the token it replaces: the server still accepts it.
    expect(await active(op, first)).toBe(true);
    expect(await active(op, second)).toBe(true);

    const from = op.requests.length;
    const result = await cred.revoke();
    expect(revocations(op, from)).toEqual([
      ['access_token', third],
      ['access_token', first],
      ['access_token', second],
    ]);
    expect(result).toMatchObject({
      outcome: 'revoked',
      tokens: ['access_token'],
      superseded: { revoked: 2, failed: 0 },
    });
    for (const token of [first, second, third]) expect(await active(op, token)).toBe(false);
    const secrets = [first, second, third, BASIC_CLIENT_SECRET];
    expect(findLeaks([result, ...observed], secrets)).toEqual([]);
  });

  it('refresh_token with rotation: the replaced access tokens are inactive too', async () => {
    const op = server();
    const { warden } = observedWarden();
    const { cred, accessToken: first } = await refreshWithTokens(warden, 'rt-replaced');
    const second = (await cred.getToken({ forceRefresh: true })).reveal();
    expect(await active(op, first)).toBe(true);
    const result = await cred.revoke();
    expect(result).toMatchObject({
      outcome: 'revoked',
      tokens: ['refresh_token', 'access_token'],
      superseded: { revoked: 1, failed: 0 },
    });
    expect(await active(op, first)).toBe(false);
    expect(await active(op, second)).toBe(false);
  });
});

describe('revokeAll() at a real authorization server', () => {
  it('revokes every credential: every token inactive at the server, refresh tokens first', async () => {
    const op = server();
    const { warden, observed } = observedWarden();
    const a = await refreshWithTokens(warden, 'user-a');
    const b = await refreshWithTokens(warden, 'user-b');
    const cc = clientCredential(op, warden, 'svc', basicClient(op));
    const ccToken = (await cc.getToken()).reveal();

    const from = op.requests.length;
    const results = await warden.revokeAll();
    expect(results.map((r) => [r.id, r.outcome, r.tokens])).toEqual([
      ['user-a', 'revoked', ['refresh_token', 'access_token']],
      ['user-b', 'revoked', ['refresh_token', 'access_token']],
      ['svc', 'revoked', ['access_token']],
    ]);
    // Per credential, the refresh token went before the access token.
    const sent = revocations(op, from);
    expect(sent).toHaveLength(5);
    for (const { refreshToken, accessToken } of [a, b]) {
      const rt = sent.findIndex(([, token]) => token === refreshToken);
      const at = sent.findIndex(([, token]) => token === accessToken);
      expect(sent[rt]?.[0]).toBe('refresh_token');
      expect(sent[at]?.[0]).toBe('access_token');
      expect(rt).toBeGreaterThanOrEqual(0);
      expect(rt).toBeLessThan(at);
    }
    for (const token of [a.accessToken, a.refreshToken, b.accessToken, b.refreshToken, ccToken]) {
      expect(await active(op, token)).toBe(false);
    }
    expect(a.cred.status().state).toBe('reauth-required');
    expect(b.cred.status().state).toBe('reauth-required');
    expect(cc.status().state).toBe('empty');
    const secrets = [a.accessToken, a.refreshToken, b.accessToken, b.refreshToken, ccToken];
    expect(findLeaks([results, ...observed], secrets)).toEqual([]);
  });
});

describe('introspect() at a real authorization server', () => {
  it('says active for a live token and inactive for a revoked one', async () => {
    const op = server();
    const warden = newWarden();
    const cred = clientCredential(op, warden, 'cc-introspect', basicClient(op));
    const token = (await cred.getToken()).reveal();
    const inspector = clientCredentials({ issuer: op.issuer, ...basicClient(op) });
    const live = await introspect(inspector, token, { hint: 'access_token' });
    expect(live).toMatchObject({ active: true, clientId: op.clients.basic.clientId });
    await cred.revoke();
    expect(await introspect(inspector, token)).toEqual({ active: false });
  });
});
