import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import type { TokenWardenError } from '../../../src/errors.js';
import { clientCredentials } from '../../../src/sources/client-credentials.js';
import {
  discover,
  oauthMetadataUrl,
  openIdConfigurationUrl,
  parseIssuer,
} from '../../../src/sources/discovery.js';
import { refreshToken } from '../../../src/sources/refresh-token.js';
import { makeContext, rejection, thrown, useMsw } from './support.js';

const server = useMsw();

const TENANT = 'https://login.example.com/tenants/acme';
const TENANT_RFC8414 =
  'https://login.example.com/.well-known/oauth-authorization-server/tenants/acme';
const TENANT_OIDC = 'https://login.example.com/tenants/acme/.well-known/openid-configuration';

function metadata(issuer: string, extra: Record<string, unknown> = {}) {
  return {
    issuer,
    token_endpoint: 'https://login.example.com/tenants/acme/oauth/token',
    revocation_endpoint: 'https://login.example.com/tenants/acme/oauth/revoke',
    ...extra,
  };
}

function tokenEndpoint(count = { n: 0 }) {
  server.use(
    http.post('https://login.example.com/tenants/acme/oauth/token', () => {
      count.n += 1;
      return HttpResponse.json({ access_token: 'at', token_type: 'Bearer', expires_in: 60 });
    }),
  );
  return count;
}

function source(issuer = TENANT) {
  return clientCredentials({ issuer, clientId: 'c', clientSecret: 's' });
}

describe('well-known URLs', () => {
  it('inserts the RFC 8414 suffix between host and path, appends the OIDC one', () => {
    expect(oauthMetadataUrl(new URL(TENANT)).href).toBe(TENANT_RFC8414);
    expect(openIdConfigurationUrl(new URL(TENANT)).href).toBe(TENANT_OIDC);
    expect(oauthMetadataUrl(new URL('https://a.example')).href).toBe(
      'https://a.example/.well-known/oauth-authorization-server',
    );
    expect(openIdConfigurationUrl(new URL('https://a.example/')).href).toBe(
      'https://a.example/.well-known/openid-configuration',
    );
  });
});

describe('discover', () => {
  it('uses RFC 8414 metadata for an issuer with a path, then the discovered token endpoint', async () => {
    let oidcAsked = false;
    server.use(
      http.get(TENANT_RFC8414, () => HttpResponse.json(metadata(TENANT))),
      http.get(TENANT_OIDC, () => {
        oidcAsked = true;
        return HttpResponse.json(metadata(TENANT));
      }),
    );
    const tokens = tokenEndpoint();
    const set = await source().obtain(makeContext());
    expect(set.revealAccessToken()).toBe('at');
    expect(tokens.n).toBe(1);
    expect(oidcAsked).toBe(false);
  });

  it('falls back to OpenID Connect discovery when RFC 8414 is not there', async () => {
    server.use(
      http.get(TENANT_RFC8414, () => new HttpResponse('Not Found', { status: 404 })),
      http.get(TENANT_OIDC, () => HttpResponse.json(metadata(TENANT))),
    );
    const found = await discover(TENANT, { fetch, timeoutMs: 1_000, maxResponseBytes: 65_536 });
    expect(found.tokenEndpoint).toBe('https://login.example.com/tenants/acme/oauth/token');
    expect(found.revocationEndpoint).toBe('https://login.example.com/tenants/acme/oauth/revoke');
  });

  it('also falls back when RFC 8414 redirects (to a login page)', async () => {
    server.use(
      http.get(
        TENANT_RFC8414,
        () =>
          new HttpResponse(null, {
            status: 302,
            headers: { location: 'https://login.example.com/' },
          }),
      ),
      http.get(TENANT_OIDC, () => HttpResponse.json(metadata(TENANT))),
    );
    const found = await discover(TENANT, { fetch, timeoutMs: 1_000, maxResponseBytes: 65_536 });
    expect(found.issuer).toBe(TENANT);
  });

  it('discovers once per issuer, however many sources and calls', async () => {
    let asked = 0;
    server.use(
      http.get(TENANT_RFC8414, () => {
        asked += 1;
        return HttpResponse.json(metadata(TENANT));
      }),
    );
    const tokens = tokenEndpoint();
    const a = source();
    const b = refreshToken({ issuer: TENANT, clientId: 'c', refreshToken: 'rt' });
    await Promise.all([a.obtain(makeContext()), b.obtain(makeContext())]);
    await a.obtain(makeContext());
    await b.obtain(makeContext());
    expect(asked).toBe(1);
    expect(tokens.n).toBe(4);
  });

  it('does not cache a failure', async () => {
    let healthy = false;
    server.use(
      http.get(TENANT_RFC8414, () =>
        healthy ? HttpResponse.json(metadata(TENANT)) : new HttpResponse('down', { status: 503 }),
      ),
      http.get(TENANT_OIDC, () => new HttpResponse('down', { status: 503 })),
    );
    tokenEndpoint();
    const error = (await rejection(source().obtain(makeContext()))) as TokenWardenError;
    expect(error.code).toBe('ERR_HTTP_STATUS');
    expect(error.status).toBe(503);
    healthy = true;
    await expect(source().obtain(makeContext())).resolves.toBeDefined();
  });

  it.each([
    ['a trailing slash', `${TENANT}/`],
    ['another tenant', 'https://login.example.com/tenants/evil'],
    ['another host', 'https://evil.example.net/tenants/acme'],
    ['different case', TENANT.toUpperCase()],
    ['no issuer', undefined],
  ])('metadata naming %s → ERR_ISSUER_MISMATCH, with no fallback', async (_, issuer) => {
    let oidcAsked = false;
    const tokens = tokenEndpoint();
    server.use(
      http.get(TENANT_RFC8414, () => HttpResponse.json(metadata(issuer as string))),
      http.get(TENANT_OIDC, () => {
        oidcAsked = true;
        return HttpResponse.json(metadata(TENANT));
      }),
    );
    const error = (await rejection(source().obtain(makeContext()))) as TokenWardenError;
    expect(error.code).toBe('ERR_ISSUER_MISMATCH');
    expect(oidcAsked).toBe(false);
    expect(tokens.n).toBe(0);
  });

  it('a configured trailing slash must match a trailing slash', async () => {
    server.use(
      http.get('https://auth.example.com/.well-known/oauth-authorization-server', () =>
        HttpResponse.json({
          issuer: 'https://auth.example.com',
          token_endpoint: 'https://auth.example.com/t',
        }),
      ),
    );
    const error = (await rejection(
      discover('https://auth.example.com/', { fetch, timeoutMs: 1_000, maxResponseBytes: 65_536 }),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_ISSUER_MISMATCH');
  });

  it.each([
    ['a plain-http token endpoint', { token_endpoint: 'http://login.example.com/token' }],
    ['no token endpoint', { token_endpoint: undefined }],
    ['a relative token endpoint', { token_endpoint: '/token' }],
    ['a javascript: revocation endpoint', { revocation_endpoint: 'javascript:alert(1)' }],
  ])('metadata with %s → ERR_INVALID_RESPONSE', async (_, extra) => {
    server.use(http.get(TENANT_RFC8414, () => HttpResponse.json(metadata(TENANT, extra))));
    const error = (await rejection(source().obtain(makeContext()))) as TokenWardenError;
    expect(error.code).toBe('ERR_INVALID_RESPONSE');
  });

  it('metadata that is not a JSON object → ERR_INVALID_RESPONSE', async () => {
    server.use(http.get(TENANT_RFC8414, () => HttpResponse.text('<html>hi</html>')));
    expect(((await rejection(source().obtain(makeContext()))) as TokenWardenError).code).toBe(
      'ERR_INVALID_RESPONSE',
    );
  });

  it("one caller's abort does not fail another caller", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    server.use(
      http.get(TENANT_RFC8414, async () => {
        await gate;
        return HttpResponse.json(metadata(TENANT));
      }),
    );
    const context = { fetch, timeoutMs: 2_000, maxResponseBytes: 65_536 };
    const quitter = new AbortController();
    const first = discover(TENANT, { ...context, signal: quitter.signal });
    const second = discover(TENANT, { ...context, signal: new AbortController().signal });
    quitter.abort();
    expect(((await rejection(first)) as TokenWardenError).code).toBe('ERR_ABORTED');
    release();
    expect((await second).issuer).toBe(TENANT);
  });

  it.each([
    ['a query', 'https://auth.example.com?x=1'],
    ['a fragment', 'https://auth.example.com#x'],
    ['plain http', 'http://auth.example.com'],
    ['credentials', 'https://user:pw@auth.example.com'],
    ['not a URL', 'auth.example.com'],
    ['a number', 42],
  ])('an issuer with %s → ERR_INVALID_ARGUMENT', (_, issuer) => {
    expect(thrown(() => parseIssuer(issuer))).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(thrown(() => source(issuer as string))).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('accepts a loopback http issuer', () => {
    expect(parseIssuer('http://127.0.0.1:3000').port).toBe('3000');
    expect(parseIssuer('http://localhost:3000/realm').pathname).toBe('/realm');
  });
});

describe('revocation (RFC 7009)', () => {
  it('revokes with token_type_hint and client authentication at the discovered endpoint', async () => {
    let form: URLSearchParams | undefined;
    let authorization: string | null = null;
    server.use(
      http.get(TENANT_RFC8414, () => HttpResponse.json(metadata(TENANT))),
      http.post('https://login.example.com/tenants/acme/oauth/revoke', async ({ request }) => {
        form = new URLSearchParams(await request.text());
        authorization = request.headers.get('authorization');
        return new HttpResponse('anything', { status: 200 });
      }),
    );
    await expect(source().revoke('rt-value', 'refresh_token', makeContext())).resolves.toBe(true);
    expect(form?.get('token')).toBe('rt-value');
    expect(form?.get('token_type_hint')).toBe('refresh_token');
    expect(authorization).toBe(`Basic ${btoa('c:s')}`);
  });

  it('503 → ERR_HTTP_STATUS with Retry-After readable; no endpoint → false', async () => {
    server.use(
      http.get(TENANT_RFC8414, () =>
        HttpResponse.json(metadata(TENANT, { revocation_endpoint: undefined })),
      ),
    );
    await expect(source().revoke('t', 'access_token', makeContext())).resolves.toBe(false);

    const explicit = clientCredentials({
      tokenEndpoint: 'https://auth.example.com/token',
      revocationEndpoint: 'https://auth.example.com/revoke',
      clientId: 'c',
    });
    server.use(
      http.post(
        'https://auth.example.com/revoke',
        () => new HttpResponse('busy', { status: 503, headers: { 'retry-after': '30' } }),
      ),
    );
    const error = (await rejection(
      explicit.revoke('t', 'access_token', makeContext()),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_HTTP_STATUS');
    expect(error.status).toBe(503);
    expect(error.response?.headers.get('retry-after')).toBe('30');
  });
});
