import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { createSkewClock } from '../../../src/internal/clock.js';
import { clientCredentials } from '../../../src/sources/client-credentials.js';
import { makeContext, TOKEN_ENDPOINT, thrown, useMsw } from './support.js';

const server = useMsw();

function capture(response: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const forms: URLSearchParams[] = [];
  server.use(
    http.post(TOKEN_ENDPOINT, async ({ request }) => {
      forms.push(new URLSearchParams(await request.text()));
      return HttpResponse.json(
        { access_token: 'at', token_type: 'Bearer', expires_in: 300, ...response },
        { headers },
      );
    }),
  );
  return forms;
}

describe('clientCredentials', () => {
  it('sends grant_type, scope, audience and one resource parameter per resource', async () => {
    const forms = capture();
    const source = clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: 'c',
      clientSecret: 's',
      scope: ['invoices:read', 'invoices:write'],
      audience: 'https://api.example.com',
      resource: ['https://billing.example.com/', new URL('https://ledger.example.com/v1')],
    });
    expect(source.kind).toBe('client_credentials');
    const set = await source.obtain(makeContext());
    const form = forms[0];
    expect(form?.get('grant_type')).toBe('client_credentials');
    expect(form?.get('scope')).toBe('invoices:read invoices:write');
    expect(form?.get('audience')).toBe('https://api.example.com');
    expect(form?.getAll('resource')).toEqual([
      'https://billing.example.com/',
      'https://ledger.example.com/v1',
    ]);
    expect(set.scope).toEqual(['invoices:read', 'invoices:write']);
    expect(set.tokenType).toBe('Bearer');
  });

  it('accepts a scope string and a single resource, and sends nothing it was not given', async () => {
    const forms = capture({ scope: 'a' });
    await clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: 'c',
      clientSecret: 's',
      scope: 'a  b',
      resource: 'urn:example:api',
    }).obtain(makeContext());
    expect(forms[0]?.get('scope')).toBe('a b');
    expect(forms[0]?.getAll('resource')).toEqual(['urn:example:api']);

    await clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: 'c',
      clientSecret: 's',
    }).obtain(makeContext());
    expect([...(forms[1]?.keys() ?? [])]).toEqual(['grant_type']);
  });

  it('records the granted scope when the server narrows it', async () => {
    capture({ scope: 'read' });
    const set = await clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: 'c',
      clientSecret: 's',
      scope: ['read', 'write'],
    }).obtain(makeContext());
    expect(set.scope).toEqual(['read']);
  });

  it("learns the server's clock from the token response", async () => {
    const local = Date.now();
    capture({}, { date: new Date(local + 3_600_000).toUTCString() });
    const clock = createSkewClock();
    await clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: 'c',
      clientSecret: 's',
    }).obtain(makeContext({ clock }));
    expect(Math.abs(clock.skewMs - 3_600_000)).toBeLessThan(5_000);
  });

  it('describes itself without secrets', () => {
    const source = clientCredentials({
      issuer: 'https://auth.example.com',
      clientId: 'c',
      clientSecret: 'SENTINEL-secret',
      scope: 'a',
    });
    expect(source.info()).toEqual({
      kind: 'client_credentials',
      issuer: 'https://auth.example.com',
      clientId: 'c',
      scope: ['a'],
    });
    expect(JSON.stringify(source)).not.toContain('SENTINEL');
    const explicit = clientCredentials({
      tokenEndpoint: `${TOKEN_ENDPOINT}?tenant=x`,
      clientId: 'c',
    });
    expect(explicit.info().issuer).toBe(TOKEN_ENDPOINT);
  });

  it.each([
    ['no options', undefined],
    ['neither issuer nor tokenEndpoint', { clientId: 'c' }],
    ['no clientId', { tokenEndpoint: TOKEN_ENDPOINT }],
    [
      'a plain-http token endpoint',
      { clientId: 'c', tokenEndpoint: 'http://auth.example.com/token' },
    ],
    ['a token endpoint with a fragment', { clientId: 'c', tokenEndpoint: `${TOKEN_ENDPOINT}#x` }],
    [
      'a token endpoint with credentials',
      { clientId: 'c', tokenEndpoint: 'https://u:p@auth.example.com/t' },
    ],
    ['a relative token endpoint', { clientId: 'c', tokenEndpoint: '/token' }],
    [
      'a plain-http revocation endpoint',
      { clientId: 'c', tokenEndpoint: TOKEN_ENDPOINT, revocationEndpoint: 'http://a.example/r' },
    ],
    ['a scope with a quote', { clientId: 'c', tokenEndpoint: TOKEN_ENDPOINT, scope: ['a"b'] }],
    ['a scope that is a number', { clientId: 'c', tokenEndpoint: TOKEN_ENDPOINT, scope: 42 }],
    ['an empty audience', { clientId: 'c', tokenEndpoint: TOKEN_ENDPOINT, audience: '' }],
    ['an audience with CRLF', { clientId: 'c', tokenEndpoint: TOKEN_ENDPOINT, audience: 'a\r\nb' }],
    ['a relative resource', { clientId: 'c', tokenEndpoint: TOKEN_ENDPOINT, resource: '/api' }],
    [
      'a resource with a fragment',
      { clientId: 'c', tokenEndpoint: TOKEN_ENDPOINT, resource: ['https://a.example/#f'] },
    ],
  ])('%s → ERR_INVALID_ARGUMENT, synchronously', (_, options) => {
    expect(thrown(() => clientCredentials(options as never))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('accepts loopback http endpoints', () => {
    expect(() =>
      clientCredentials({ clientId: 'c', tokenEndpoint: 'http://127.0.0.1:8080/token' }),
    ).not.toThrow();
    expect(() =>
      clientCredentials({ clientId: 'c', tokenEndpoint: 'http://localhost/token' }),
    ).not.toThrow();
  });
});
