// client_credentials against a real oidc-provider: every client authentication method the
// server supports for it, discovery by issuer, and a protected resource call that succeeds.
import { describe, expect, it } from 'vitest';
import { isTokenWardenError } from '../../src/index.js';
import {
  basicClient,
  clientCredential,
  collect,
  lastTokenForm,
  tokenCountsSince,
  tokenEndpointRequests,
  useOidcServer,
  useWarden,
} from '../support/harness.js';
import { BASIC_CLIENT_SECRET } from '../support/oidc-server.js';

const server = useOidcServer();
const newWarden = useWarden();

describe('client_credentials against oidc-provider', () => {
  it('authenticates with client_secret_basic and a %:+-and-space secret', async () => {
    const op = server();
    const w = newWarden();
    const refreshes = collect(w, 'refresh');
    const tokens = tokenCountsSince(op, 'client_credentials');
    const cred = clientCredential(op, w, 'basic', {
      ...basicClient(op),
      clientAuth: 'client_secret_basic',
    });

    const res = await cred.fetch(`${op.resource.origin}/v1/ping`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, clientId: 'basic-client' });

    const after = tokens();
    expect(after.ok).toBe(1);
    expect(after.failed).toBe(0);
    const tokenRequest = tokenEndpointRequests(op).at(-1);
    expect(tokenRequest?.method).toBe('POST');
    expect(tokenRequest?.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(tokenRequest?.headers['accept']).toMatch(/application\/json/);
    expect(tokenRequest?.headers['authorization']).toMatch(/^Basic /);
    expect(tokenRequest?.body).not.toContain('client_secret');

    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]).toMatchObject({ id: 'basic', reason: 'initial' });
    expect(cred.status()).toMatchObject({ id: 'basic', state: 'valid' });
    expect(cred.status().expiresAt).toBeGreaterThan(Date.now() + 200_000);
  });

  it('authenticates with client_secret_post', async () => {
    const op = server();
    const cred = clientCredential(op, newWarden(), 'post', {
      clientId: 'post-client',
      clientSecret: BASIC_CLIENT_SECRET,
      clientAuth: 'client_secret_post',
    });
    const res = await cred.fetch(`${op.resource.origin}/v1/ping`);
    expect(await res.json()).toMatchObject({ ok: true, clientId: 'post-client' });
    const tokenRequest = tokenEndpointRequests(op).at(-1);
    expect(tokenRequest?.headers['authorization']).toBeUndefined();
    expect(new URLSearchParams(tokenRequest?.body).get('client_secret')).toBe(BASIC_CLIENT_SECRET);
  });

  it('authenticates with private_key_jwt (CryptoKey)', async () => {
    const op = server();
    const cred = clientCredential(op, newWarden(), 'jwt', {
      clientId: op.clients.jwt.clientId,
      clientAuth: 'private_key_jwt',
      privateKey: op.clients.jwt.privateKey,
    });
    const res = await cred.fetch(`${op.resource.origin}/v1/ping`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, clientId: 'jwt-client' });

    const form = lastTokenForm(op);
    expect(form.get('client_assertion_type')).toBe(
      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    );
    const [, payload] = (form.get('client_assertion') ?? '').split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    expect(claims['iss']).toBe('jwt-client');
    expect(claims['sub']).toBe('jwt-client');
    expect(claims['aud']).toBe(op.issuer);
    expect(typeof claims['jti']).toBe('string');
    expect(Number(claims['exp']) - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(300);
  });

  it('authenticates with private_key_jwt (JWK) and a fresh jti per assertion', async () => {
    const op = server();
    const cred = clientCredential(
      op,
      newWarden(),
      'jwt-jwk',
      {
        clientId: op.clients.jwt.clientId,
        clientAuth: 'private_key_jwt',
        privateKey: op.clients.jwt.privateJwk,
      },
      { maxForcedRefreshesPerMinute: 100 },
    );
    expect((await cred.fetch(`${op.resource.origin}/v1/ping`)).status).toBe(200);
    await cred.getToken({ forceRefresh: true });
    const jtis = tokenEndpointRequests(op)
      .slice(-2)
      .map((r) => new URLSearchParams(r.body).get('client_assertion') ?? '')
      .map((jwt) => JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()).jti);
    expect(jtis).toHaveLength(2);
    expect(jtis[0]).not.toBe(jtis[1]);
  });

  it('requests a resource-bound token with scope (RFC 8707) and uses it through ky', async () => {
    const op = server();
    const cred = clientCredential(op, newWarden(), 'scoped', {
      ...basicClient(op),
      scope: ['api:read'],
      resource: op.resource.resourceIndicator,
    });
    const api = cred.ky({ prefix: `${op.resource.origin}/v1/` });
    const body = await api.get('invoices').json<Record<string, unknown>>();
    expect(body).toMatchObject({ ok: true, path: '/v1/invoices', scope: 'api:read' });

    const form = lastTokenForm(op);
    expect(form.get('resource')).toBe(op.resource.resourceIndicator);
    expect(form.get('scope')).toBe('api:read');
    expect((await cred.getToken()).scope).toEqual(['api:read']);
  });

  it('turns a wrong secret into a coded error and sends no API request', async () => {
    const op = server();
    const cred = clientCredential(op, newWarden(), 'wrong', {
      clientId: op.clients.basic.clientId,
      clientSecret: 'not-the-secret',
    });
    const before = op.resource.requests.length;
    const error: unknown = await cred.fetch(`${op.resource.origin}/v1/ping`).catch((e) => e);
    expect(isTokenWardenError(error)).toBe(true);
    // invalid_client moves the credential to reauth-required (issue 2, lifecycle rules).
    expect((error as { code: string }).code).toMatch(/^ERR_(REAUTH_REQUIRED|OAUTH_ERROR)$/);
    expect(JSON.stringify(error)).not.toContain('not-the-secret');
    expect(op.resource.requests.length).toBe(before);
  });
});
