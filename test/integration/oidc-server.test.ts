// Proves the oidc-provider fixture on its own, with plain fetch and jose, so that a failing
// tokenwarden integration test can be told apart from a broken fixture.
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { tokenCountsSince, useOidcServer } from '../support/harness.js';
import { BASIC_CLIENT_SECRET } from '../support/oidc-server.js';

const server = useOidcServer();

function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

function basic(clientId: string, clientSecret: string): string {
  return `Basic ${btoa(`${formEncode(clientId)}:${formEncode(clientSecret)}`)}`;
}

/** The Authorization header of a fixture client with a secret. */
function authAs(client: { clientId: string; clientSecret: string }): Record<string, string> {
  return { authorization: basic(client.clientId, client.clientSecret) };
}

async function tokenRequest(
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(server().tokenEndpoint, {
    method: 'POST',
    headers: { accept: 'application/json', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Redeems a refresh token as the fixture's refresh client. */
function redeem(refreshToken: string): ReturnType<typeof tokenRequest> {
  return tokenRequest(
    { grant_type: 'refresh_token', refresh_token: refreshToken },
    authAs(server().clients.refresh),
  );
}

async function callResource(token: string): Promise<Response> {
  return fetch(`${server().resource.origin}/v1/ping`, {
    headers: { authorization: `Bearer ${token}` },
  });
}

describe('oidc-server fixture', () => {
  it('serves OpenID Connect discovery with the exact issuer', async () => {
    const op = server();
    const res = await fetch(`${op.issuer}/.well-known/openid-configuration`);
    const meta = (await res.json()) as Record<string, unknown>;
    expect(meta['issuer']).toBe(op.issuer);
    expect(meta['token_endpoint']).toBe(op.tokenEndpoint);
    expect(meta['revocation_endpoint']).toBe(op.revocationEndpoint);
    expect(meta['introspection_endpoint']).toBe(op.introspectionEndpoint);
    expect(meta['grant_types_supported']).toEqual(
      expect.arrayContaining(['client_credentials', 'refresh_token']),
    );
  });

  it('authenticates client_secret_basic with a %:+-and-space secret (RFC 6749 §2.3.1)', async () => {
    const op = server();
    expect(BASIC_CLIENT_SECRET).toMatch(/%/);
    expect(BASIC_CLIENT_SECRET).toMatch(/:/);
    expect(BASIC_CLIENT_SECRET).toMatch(/\+/);
    expect(BASIC_CLIENT_SECRET).toMatch(/ /);
    const { status, json } = await tokenRequest(
      { grant_type: 'client_credentials' },
      authAs(op.clients.basic),
    );
    expect(status).toBe(200);
    expect(json['token_type']).toBe('Bearer');
    expect(typeof json['access_token']).toBe('string');
    expect(json['expires_in']).toBe(300);
    // Without a resource indicator the token is opaque (not a JWT).
    expect(String(json['access_token']).split('.')).toHaveLength(1);

    const res = await callResource(json['access_token'] as string);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, clientId: 'basic-client' });
  });

  it('rejects the same secret sent without form-encoding', async () => {
    const op = server();
    const raw = `Basic ${btoa(`${op.clients.basic.clientId}:${op.clients.basic.clientSecret}`)}`;
    const { status, json } = await tokenRequest(
      { grant_type: 'client_credentials' },
      { authorization: raw },
    );
    expect(status).toBe(401);
    expect(json['error']).toBe('invalid_client');
  });

  it('issues resource-bound tokens with filtered scope (RFC 8707)', async () => {
    const op = server();
    const { status, json } = await tokenRequest(
      {
        grant_type: 'client_credentials',
        resource: op.resource.resourceIndicator,
        scope: 'api:read openid',
      },
      authAs(op.clients.basic),
    );
    expect(status).toBe(200);
    expect(json['scope']).toBe('api:read');
    const res = await callResource(json['access_token'] as string);
    expect(res.status).toBe(200);

    const unknown = await tokenRequest(
      { grant_type: 'client_credentials', resource: 'https://elsewhere.example/' },
      authAs(op.clients.basic),
    );
    expect(unknown.status).toBe(400);
    expect(unknown.json['error']).toBe('invalid_target');
  });

  it('authenticates private_key_jwt (RFC 7523, aud = issuer)', async () => {
    const op = server();
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: op.clients.jwt.privateJwk.kid as string })
      .setIssuer(op.clients.jwt.clientId)
      .setSubject(op.clients.jwt.clientId)
      .setAudience(op.issuer)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(op.clients.jwt.privateKey);
    const { status, json } = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: op.clients.jwt.clientId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    });
    expect(status).toBe(200);
    const res = await callResource(json['access_token'] as string);
    expect(await res.json()).toMatchObject({ ok: true, clientId: 'jwt-client' });
  });

  it('mints a refresh token, rotates it twice, and revokes the grant on reuse', async () => {
    const op = server();
    const tokens = tokenCountsSince(op, 'refresh_token');
    const minted = await op.mintRefreshToken();
    expect(minted.refreshToken).toBeTruthy();
    expect((await callResource(minted.accessToken)).status).toBe(200);

    const first = await redeem(minted.refreshToken);
    expect(first.status).toBe(200);
    const rt1 = first.json['refresh_token'] as string;
    expect(rt1).toBeTruthy();
    expect(rt1).not.toBe(minted.refreshToken);
    expect((await callResource(first.json['access_token'] as string)).status).toBe(200);

    const second = await redeem(rt1);
    expect(second.status).toBe(200);
    const rt2 = second.json['refresh_token'] as string;
    expect(rt2).not.toBe(rt1);
    const at2 = second.json['access_token'] as string;

    // Reusing a rotated refresh token revokes the whole grant, the newest tokens included.
    const reuse = await redeem(rt1);
    expect(reuse.status).toBe(400);
    expect(reuse.json['error']).toBe('invalid_grant');
    const after = await redeem(rt2);
    expect(after.json['error']).toBe('invalid_grant');
    const rejected = await callResource(at2);
    expect(rejected.status).toBe(401);
    expect(rejected.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);

    const counts = tokens();
    expect(counts.total).toBe(4);
    expect(counts.ok).toBe(2);
    expect(counts.errors['invalid_grant'] ?? 0).toBe(2);
  });

  it('mints for a public client too (token_endpoint_auth_method none)', async () => {
    const op = server();
    const minted = await op.mintRefreshToken({ client: 'public' });
    const { status, json } = await tokenRequest({
      grant_type: 'refresh_token',
      refresh_token: minted.refreshToken,
      client_id: op.clients.public.clientId,
    });
    expect(status).toBe(200);
    expect(json['refresh_token']).not.toBe(minted.refreshToken);
  });

  it('revokes one access token without touching its grant', async () => {
    const op = server();
    const minted = await op.mintRefreshToken();
    expect(await op.introspect(minted.accessToken)).toMatchObject({ active: true });
    expect(await op.revokeAccessToken(minted.accessToken)).toBe(true);
    expect(await op.introspect(minted.accessToken)).toEqual({ active: false });
    expect((await callResource(minted.accessToken)).status).toBe(401);

    const refreshed = await redeem(minted.refreshToken);
    expect(refreshed.status).toBe(200);
    expect((await callResource(refreshed.json['access_token'] as string)).status).toBe(200);
  });

  it('revokes a whole grant by refresh token', async () => {
    const op = server();
    const minted = await op.mintRefreshToken();
    await op.revokeGrant(minted.refreshToken);
    expect((await callResource(minted.accessToken)).status).toBe(401);
    const refreshed = await redeem(minted.refreshToken);
    expect(refreshed.status).toBe(400);
    expect(refreshed.json['error']).toBe('invalid_grant');
  });

  it('expires access tokens after the configured TTL', async () => {
    const op = server();
    op.setTtl({ clientCredentials: 1 });
    try {
      const { json } = await tokenRequest(
        { grant_type: 'client_credentials' },
        authAs(op.clients.basic),
      );
      expect(json['expires_in']).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      expect((await callResource(json['access_token'] as string)).status).toBe(401);
    } finally {
      op.setTtl({ clientCredentials: 300 });
    }
  });

  it('records raw requests and answers 401 without a bearer token', async () => {
    const op = server();
    const res = await fetch(`${op.resource.origin}/v1/anything?x=1`, {
      method: 'POST',
      body: 'hi',
    });
    expect(res.status).toBe(401);
    const last = op.resource.requests.at(-1);
    expect(last).toMatchObject({ method: 'POST', url: '/v1/anything?x=1', body: 'hi' });
    expect(op.resource.statuses.at(-1)).toBe(401);
    expect(op.requests.some((r) => r.url === '/token' && r.body.includes('grant_type='))).toBe(
      true,
    );
  });

  it('answers redirects and fixed overrides on the resource server', async () => {
    const op = server();
    const redirect = await fetch(
      `${op.resource.origin}/redirect?to=${encodeURIComponent(`${op.issuer}/x`)}`,
      { redirect: 'manual' },
    );
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get('location')).toBe(`${op.issuer}/x`);

    const { json } = await tokenRequest(
      { grant_type: 'client_credentials' },
      authAs(op.clients.basic),
    );
    op.resource.setOverride({ status: 403, wwwAuthenticate: 'Bearer error="insufficient_scope"' });
    try {
      const res = await callResource(json['access_token'] as string);
      expect(res.status).toBe(403);
      expect(res.headers.get('www-authenticate')).toBe('Bearer error="insufficient_scope"');
    } finally {
      op.resource.setOverride(undefined);
    }
    expect((await callResource(json['access_token'] as string)).status).toBe(200);
  });

  it('records each token request with its outcome and issued tokens', async () => {
    const op = server();
    op.resetRecords();
    const minted = await op.mintRefreshToken();
    expect(op.tokenRequests).toEqual([
      expect.objectContaining({
        grantType: 'urn:test:mint-refresh',
        status: 200,
        error: undefined,
        clientId: 'refresh-client',
        issuedAccessToken: minted.accessToken,
        issuedRefreshToken: minted.refreshToken,
      }),
    ]);
    expect(op.tokenCounts()).toEqual({ total: 1, ok: 1, failed: 0, errors: {} });
  });
});
