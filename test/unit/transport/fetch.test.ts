import { inspect } from 'node:util';
import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { BlockedRequestError, isTokenWardenError, TokenWardenError } from '../../../src/errors.js';
import { createAuthenticatedFetch } from '../../../src/transport/fetch.js';
import { type FakeHostOptions, fakeHost, TOKEN_1, TOKEN_2 } from './fake-host.js';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

const server = setupServer();
let pending: Promise<Seen>[] = [];

async function seen(): Promise<Seen[]> {
  return Promise.all(pending);
}

function forms(secret: string): string[] {
  const b64 = Buffer.from(secret).toString('base64');
  return [
    secret,
    encodeURIComponent(secret),
    b64,
    b64.replace(/=+$/, ''),
    Buffer.from(secret).toString('base64url'),
  ];
}

function containsSecret(text: string, secret: string): boolean {
  return forms(secret).some((form) => text.includes(form));
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Asserts a coded tokenwarden error that carries no token anywhere. */
function expectCode(error: unknown, code: string): void {
  expect(isTokenWardenError(error), String(error)).toBe(true);
  expect((error as TokenWardenError).code).toBe(code);
  const rendered = `${inspect(error, { showHidden: true, depth: 5 })} ${JSON.stringify(error)} ${(error as Error).message}`;
  for (const token of [TOKEN_1, TOKEN_2]) expect(containsSecret(rendered, token)).toBe(false);
}

function setup(options: FakeHostOptions = {}) {
  const host = fakeHost(options);
  return { host, fetch: createAuthenticatedFetch(host) };
}

const ok = () => HttpResponse.json({ ok: true });

/** A redirect response; unlike Response.redirect it allows a relative Location. */
function redirect(location: string, status: number): HttpResponse<null> {
  return new HttpResponse(null, { status, headers: { Location: location } });
}

/** An msw matcher for a URL, literal even where msw's path syntax would read `:` or `*`. */
function exact(url: string): RegExp {
  return new RegExp(`^${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

beforeAll(() => {
  server.listen({ onUnhandledRequest: 'error' });
  server.events.on('request:start', ({ request }) => {
    const copy = request.clone();
    pending.push(
      copy.text().then((body) => ({
        method: request.method,
        url: request.url,
        headers: Object.fromEntries(request.headers),
        body,
      })),
    );
  });
});
beforeEach(() => {
  pending = [];
});
afterEach(() => {
  server.resetHandlers();
  vi.unstubAllGlobals();
});
afterAll(() => server.close());

describe('where the token goes', () => {
  it('puts the token in Authorization only: not in the URL, the body or another header', async () => {
    server.use(http.post('https://api.example.com/v1/items', ok));
    const { host, fetch } = setup();
    const res = await fetch('https://api.example.com/v1/items?q=1', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-trace': 'abc' },
      body: JSON.stringify({ name: 'widget' }),
    });
    expect(res.status).toBe(200);
    const [request] = await seen();
    expect(request?.headers['authorization']).toBe(`Bearer ${TOKEN_1}`);
    const { authorization: _, ...others } = request?.headers ?? {};
    const elsewhere = `${request?.url} ${request?.body} ${JSON.stringify(others)}`;
    expect(containsSecret(elsewhere, TOKEN_1)).toBe(false);
    expect(request?.headers['x-trace']).toBe('abc');
    expect(request?.body).toBe('{"name":"widget"}');
    expect(host.acquireCount).toBe(1);
    expect(host.outcomes).toEqual([
      {
        method: 'POST',
        origin: 'https://api.example.com',
        status: 200,
        durationMs: expect.any(Number),
        retried: false,
        authenticated: true,
      },
    ]);
  });

  it('puts an API key in its custom header only, with no Authorization header', async () => {
    server.use(http.get('https://api.example.com/v1/items', ok));
    const { fetch } = setup({ header: 'X-API-Key', scheme: null });
    await fetch('https://api.example.com/v1/items', {
      headers: { Authorization: 'Bearer caller-value', 'x-api-key': 'caller-key' },
    });
    const [request] = await seen();
    expect(request?.headers['x-api-key']).toBe(TOKEN_1);
    expect(request?.headers['authorization']).toBeUndefined();
    const { 'x-api-key': _, ...others } = request?.headers ?? {};
    expect(containsSecret(`${request?.url} ${JSON.stringify(others)}`, TOKEN_1)).toBe(false);
  });

  it('overwrites a caller-set Authorization header, whatever its case', async () => {
    server.use(http.get('https://api.example.com/v1/me', ok));
    const { fetch } = setup();
    await fetch('https://api.example.com/v1/me', {
      headers: [
        ['authorization', 'Basic attacker'],
        ['DPoP', 'caller-proof'],
      ],
    });
    const [request] = await seen();
    expect(request?.headers['authorization']).toBe(`Bearer ${TOKEN_1}`);
    expect(request?.headers['dpop']).toBeUndefined();
  });

  it('accepts a Request with a body, and lets init override its fields', async () => {
    server.use(
      http.put('https://api.example.com/v1/items/1', ok),
      http.patch('https://api.example.com/v1/items/2', ok),
    );
    const { fetch } = setup();
    const request = new Request('https://api.example.com/v1/items/1', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: 'Bearer caller' },
      body: '{"a":1}',
    });
    await fetch(request);
    await fetch(new Request('https://api.example.com/v1/items/2', { method: 'PUT', body: 'old' }), {
      method: 'PATCH',
      headers: { 'x-init': '1' },
      body: 'new',
    });
    const [first, second] = await seen();
    expect(first?.method).toBe('PUT');
    expect(first?.body).toBe('{"a":1}');
    expect(first?.headers['content-type']).toBe('application/json');
    expect(first?.headers['authorization']).toBe(`Bearer ${TOKEN_1}`);
    expect(second?.method).toBe('PATCH');
    expect(second?.body).toBe('new');
    expect(second?.headers['x-init']).toBe('1');
  });

  it('accepts a URL object', async () => {
    server.use(http.get('https://api.example.com/v1/url', ok));
    const { fetch } = setup();
    expect((await fetch(new URL('https://api.example.com/v1/url'))).status).toBe(200);
  });

  it('refuses a relative URL in Node with ERR_INVALID_ARGUMENT, before anything is sent', async () => {
    const { host, fetch } = setup();
    expectCode(await caught(fetch('/v1/items')), 'ERR_INVALID_ARGUMENT');
    expect(host.acquireCount).toBe(0);
    expect(await seen()).toHaveLength(0);
  });
});

describe('origin allow-list', () => {
  it('blocks a foreign origin with an event; nothing reaches the network, no token is acquired', async () => {
    const { host, fetch } = setup();
    const error = await caught(fetch('https://evil.example.net/steal?x=1'));
    expectCode(error, 'ERR_ORIGIN_NOT_ALLOWED');
    expect(error).toBeInstanceOf(BlockedRequestError);
    expect((error as BlockedRequestError).reason).toBe('origin-not-allowed');
    expect((error as BlockedRequestError).url).toBe('https://evil.example.net/steal');
    expect((error as BlockedRequestError).credentialId).toBe('test');
    expect(host.blockedEvents).toEqual([
      { reason: 'origin-not-allowed', url: 'https://evil.example.net/steal', action: 'refused' },
    ]);
    expect(host.acquireCount).toBe(0);
    expect(host.outcomes).toEqual([]);
    expect(await seen()).toHaveLength(0);
  });

  it.each([
    ['another port', 'https://api.example.com:8443/x'],
    ['another scheme', 'http://api.example.com/x'],
    ['a sub-domain', 'https://sub.api.example.com/x'],
    ['a look-alike', 'https://api.example.com.evil.net/x'],
  ])('treats %s as foreign', async (_, url) => {
    const { fetch } = setup();
    expectCode(await caught(fetch(url)), 'ERR_ORIGIN_NOT_ALLOWED');
    expect(await seen()).toHaveLength(0);
  });

  it("'send-without-token' sends the request with every credential header removed and reports it", async () => {
    server.use(http.get('https://public.example.org/data', ok));
    const { host, fetch } = setup({ foreignOrigin: 'send-without-token' });
    const res = await fetch('https://public.example.org/data', {
      headers: { Authorization: 'Bearer mine', Cookie: 'a=b', DPoP: 'p', 'x-ok': '1' },
    });
    expect(res.status).toBe(200);
    const [request] = await seen();
    expect(request?.headers['authorization']).toBeUndefined();
    expect(request?.headers['cookie']).toBeUndefined();
    expect(request?.headers['dpop']).toBeUndefined();
    expect(request?.headers['x-ok']).toBe('1');
    expect(host.acquireCount).toBe(0);
    expect(host.blockedEvents).toEqual([
      { reason: 'origin-not-allowed', url: 'https://public.example.org/data', action: 'stripped' },
    ]);
    expect(host.outcomes[0]?.authenticated).toBe(false);
  });

  it("'send-without-token' still refuses a URL that carries the current token", async () => {
    const { host, fetch } = setup({ foreignOrigin: 'send-without-token', peek: true });
    const error = await caught(fetch(`https://public.example.org/data?t=${TOKEN_1}`));
    expectCode(error, 'ERR_TOKEN_IN_URL');
    expect(host.blockedEvents[0]?.reason).toBe('token-in-url');
    expect(await seen()).toHaveLength(0);
  });

  it("'send-without-token' without host.peek scans for the last token this fetch attached", async () => {
    server.use(http.get('https://api.example.com/warm', ok));
    const { fetch } = setup({ foreignOrigin: 'send-without-token' });
    await fetch('https://api.example.com/warm');
    const error = await caught(fetch(`https://public.example.org/p/${TOKEN_1}`));
    expectCode(error, 'ERR_TOKEN_IN_URL');
    expect((error as BlockedRequestError).url).toBe('https://public.example.org/[REDACTED]');
    expect(await seen()).toHaveLength(1);
  });

  it('never lets a token in a blocked URL path into the error or the event', async () => {
    const { host, fetch } = setup({ peek: true });
    const error = await caught(fetch(`https://evil.example.net/${TOKEN_1}`));
    expectCode(error, 'ERR_ORIGIN_NOT_ALLOWED');
    expect(JSON.stringify(host.blockedEvents)).not.toContain(TOKEN_1);
    expect((error as BlockedRequestError).url).toBe('https://evil.example.net/[REDACTED]');
  });
});

describe('transport security', () => {
  it('blocks plain http to a non-loopback host', async () => {
    const { host, fetch } = setup({ origins: ['http://api.example.com'] });
    const error = await caught(fetch('http://api.example.com/x'));
    expectCode(error, 'ERR_INSECURE_TRANSPORT');
    expect((error as BlockedRequestError).reason).toBe('insecure-transport');
    expect(host.blockedEvents[0]).toEqual({
      reason: 'insecure-transport',
      url: 'http://api.example.com/x',
      action: 'refused',
    });
    expect(host.acquireCount).toBe(0);
    expect(await seen()).toHaveLength(0);
  });

  it.each([
    'http://127.0.0.1:8080',
    'http://127.10.0.2',
    'http://localhost:3000',
    'http://[::1]:9000',
  ])('allows plain http to loopback %s', async (origin) => {
    server.use(http.get(exact(`${origin}/x`), ok));
    const { fetch } = setup({ origins: [origin] });
    expect((await fetch(`${origin}/x`)).status).toBe(200);
    const [request] = await seen();
    expect(request?.headers['authorization']).toBe(`Bearer ${TOKEN_1}`);
  });

  it('allows plain http anywhere with the allowInsecure opt-out', async () => {
    server.use(http.get('http://api.example.com/x', ok));
    const { fetch } = setup({ origins: ['http://api.example.com'], allowInsecure: true });
    expect((await fetch('http://api.example.com/x')).status).toBe(200);
  });
});

describe('token in the URL', () => {
  const base64url = Buffer.from(TOKEN_1).toString('base64url');
  it.each([
    ['raw in the path', `https://api.example.com/v1/${TOKEN_1}`],
    ['raw in the query', `https://api.example.com/v1?access_token=${TOKEN_1}`],
    ['URL-encoded in the query', `https://api.example.com/v1?t=${encodeURIComponent(TOKEN_1)}`],
    ['in the fragment', `https://api.example.com/v1#access_token=${TOKEN_1}`],
    ['base64url in the path', `https://api.example.com/v1/${base64url}`],
    [
      'base64 in the query',
      `https://api.example.com/v1?b=${Buffer.from(TOKEN_1).toString('base64')}`,
    ],
  ])('refuses the token %s before sending', async (_, url) => {
    const { host, fetch } = setup();
    const error = await caught(fetch(url));
    expectCode(error, 'ERR_TOKEN_IN_URL');
    expect((error as BlockedRequestError).reason).toBe('token-in-url');
    expect(host.blockedEvents).toHaveLength(1);
    expect(host.blockedEvents[0]?.reason).toBe('token-in-url');
    expect(JSON.stringify(host.blockedEvents)).not.toContain(TOKEN_1);
    expect(JSON.stringify(host.blockedEvents)).not.toContain(base64url);
    expect(await seen()).toHaveLength(0);
    expect(host.outcomes).toHaveLength(0);
  });
});

describe('redirects', () => {
  it('keeps the token on a same-origin redirect', async () => {
    server.use(
      http.get('https://api.example.com/old', () => redirect('/new', 302)),
      http.get('https://api.example.com/new', ok),
    );
    const { host, fetch } = setup();
    const res = await fetch('https://api.example.com/old');
    expect(res.status).toBe(200);
    expect(res.redirected).toBe(true);
    const requests = await seen();
    expect(requests.map((r) => r.url)).toEqual([
      'https://api.example.com/old',
      'https://api.example.com/new',
    ]);
    for (const request of requests) {
      expect(request.headers['authorization']).toBe(`Bearer ${TOKEN_1}`);
    }
    expect(host.blockedEvents).toEqual([]);
  });

  it.each([
    ['another host', 'https://other.example.com/landing'],
    ['another port', 'https://api.example.com:8443/landing'],
    ['https to http', 'http://api.example.com/landing'],
  ])(
    'strips Authorization, the API-key header, DPoP and Cookie on a redirect to %s',
    async (_, target) => {
      server.use(
        http.get('https://api.example.com/start', () => redirect(target, 302)),
        http.get(target, ok),
      );
      for (const header of ['Authorization', 'X-API-Key']) {
        pending = [];
        const host = fakeHost({ header, scheme: header === 'Authorization' ? 'Bearer' : null });
        // A host that does not list DPoP itself: DPoP and Cookie are stripped cross-origin anyway.
        Object.assign(host, { credentialHeaders: [header] });
        const fetch = createAuthenticatedFetch(host);
        const res = await fetch('https://api.example.com/start', {
          headers: {
            DPoP: 'proof',
            Cookie: 'session=1',
            'Proxy-Authorization': 'Basic x',
            'x-ok': '1',
          },
        });
        expect(res.status).toBe(200);
        const [first, second] = await seen();
        expect(first?.headers[header.toLowerCase()]).toContain(TOKEN_1);
        expect(first?.headers['dpop']).toBe('proof');
        expect(second?.url).toBe(target);
        expect(second?.headers['authorization']).toBeUndefined();
        expect(second?.headers['x-api-key']).toBeUndefined();
        expect(second?.headers['dpop']).toBeUndefined();
        expect(second?.headers['cookie']).toBeUndefined();
        expect(second?.headers['proxy-authorization']).toBeUndefined();
        expect(second?.headers['x-ok']).toBe('1');
        expect(containsSecret(JSON.stringify(second), TOKEN_1)).toBe(false);
        expect(host.blockedEvents).toEqual([
          { reason: 'redirect', url: target, action: 'stripped' },
        ]);
      }
    },
  );

  it('does not give the token back when a foreign origin redirects back to the original one', async () => {
    server.use(
      http.get('https://api.example.com/a', () => redirect('https://other.example.com/b', 302)),
      http.get('https://other.example.com/b', () =>
        redirect('https://api.example.com/admin/delete', 302),
      ),
      http.get('https://api.example.com/admin/delete', ok),
    );
    const { fetch } = setup({ origins: ['https://api.example.com', 'https://other.example.com'] });
    await fetch('https://api.example.com/a');
    const [, second, third] = await seen();
    expect(second?.headers['authorization']).toBeUndefined();
    expect(third?.headers['authorization']).toBeUndefined();
  });

  it('fails with ERR_REDIRECT after too many redirects', async () => {
    let n = 0;
    server.use(http.get('https://api.example.com/loop', () => redirect(`/loop?n=${++n}`, 302)));
    const { host, fetch } = setup({ maxRedirects: 3 });
    expectCode(await caught(fetch('https://api.example.com/loop')), 'ERR_REDIRECT');
    expect(await seen()).toHaveLength(4);
    expect(host.outcomes).toEqual([expect.objectContaining({ status: 0 })]);
  });

  it('follows 20 redirects by default', async () => {
    let n = 0;
    server.use(
      http.get('https://api.example.com/hop', () => (++n <= 20 ? redirect('/hop', 301) : ok())),
    );
    const { fetch } = setup();
    expect((await fetch('https://api.example.com/hop')).status).toBe(200);
  });

  it('turns a POST into a GET without body on 303', async () => {
    server.use(
      http.post('https://api.example.com/form', () => redirect('/result', 303)),
      http.get('https://api.example.com/result', ok),
    );
    const { fetch } = setup();
    await fetch('https://api.example.com/form', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    const [, second] = await seen();
    expect(second?.method).toBe('GET');
    expect(second?.body).toBe('');
    expect(second?.headers['content-type']).toBeUndefined();
    expect(second?.headers['authorization']).toBe(`Bearer ${TOKEN_1}`);
  });

  it('turns a POST into a GET on 301 and 302, but keeps PUT on 302', async () => {
    server.use(
      http.post('https://api.example.com/p301', () => redirect('/g', 301)),
      http.post('https://api.example.com/p302', () => redirect('/g', 302)),
      http.put('https://api.example.com/u302', () => redirect('/u', 302)),
      http.get('https://api.example.com/g', ok),
      http.put('https://api.example.com/u', ok),
    );
    const { fetch } = setup();
    await fetch('https://api.example.com/p301', { method: 'POST', body: 'x' });
    await fetch('https://api.example.com/p302', { method: 'POST', body: 'x' });
    await fetch('https://api.example.com/u302', { method: 'PUT', body: 'x' });
    const methods = (await seen()).map((r) => `${r.method} ${new URL(r.url).pathname} ${r.body}`);
    expect(methods).toEqual([
      'POST /p301 x',
      'GET /g ',
      'POST /p302 x',
      'GET /g ',
      'PUT /u302 x',
      'PUT /u x',
    ]);
  });

  it.each([307, 308])('replays method and body on %i', async (status) => {
    server.use(
      http.post('https://api.example.com/upload', () => redirect('/upload2', status)),
      http.post('https://api.example.com/upload2', ok),
    );
    const { fetch } = setup();
    await fetch('https://api.example.com/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"big":true}',
    });
    const [first, second] = await seen();
    expect(second?.method).toBe('POST');
    expect(second?.body).toBe('{"big":true}');
    expect(second?.body).toBe(first?.body);
    expect(second?.headers['content-type']).toBe('application/json');
  });

  it('fails with ERR_REDIRECT when a 307 needs a streamed body again', async () => {
    server.use(http.post('https://api.example.com/stream', () => redirect('/stream2', 307)));
    const { fetch } = setup();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('chunk'));
        controller.close();
      },
    });
    const init = { method: 'POST', body, duplex: 'half' } as RequestInit;
    expectCode(await caught(fetch('https://api.example.com/stream', init)), 'ERR_REDIRECT');
    expect(await seen()).toHaveLength(1);
  });

  it("returns the 3xx itself with redirect: 'manual'", async () => {
    server.use(http.get('https://api.example.com/m', () => redirect('/n', 302)));
    const { fetch } = setup();
    const res = await fetch('https://api.example.com/m', { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/n');
    expect(await seen()).toHaveLength(1);
  });

  it("fails with ERR_REDIRECT with redirect: 'error'", async () => {
    server.use(http.get('https://api.example.com/e', () => redirect('/n', 302)));
    const { fetch } = setup();
    expectCode(
      await caught(fetch('https://api.example.com/e', { redirect: 'error' })),
      'ERR_REDIRECT',
    );
    expect(await seen()).toHaveLength(1);
  });

  it('refuses a redirect whose Location carries the token, without following it', async () => {
    server.use(
      http.get('https://api.example.com/leak', () =>
        redirect(`https://api.example.com/next?token=${encodeURIComponent(TOKEN_1)}`, 302),
      ),
    );
    const { host, fetch } = setup();
    expectCode(await caught(fetch('https://api.example.com/leak')), 'ERR_TOKEN_IN_URL');
    expect(await seen()).toHaveLength(1);
    expect(host.blockedEvents).toEqual([
      { reason: 'token-in-url', url: 'https://api.example.com/next', action: 'refused' },
    ]);
  });

  it('refuses a redirect to a non-http scheme', async () => {
    server.use(
      http.get(
        'https://api.example.com/d',
        () => new HttpResponse(null, { status: 302, headers: { Location: 'data:text/plain,hi' } }),
      ),
    );
    const { fetch } = setup();
    expectCode(await caught(fetch('https://api.example.com/d')), 'ERR_REDIRECT');
  });

  it('returns a 3xx without Location as it is', async () => {
    server.use(
      http.get('https://api.example.com/nl', () => new HttpResponse(null, { status: 302 })),
    );
    const { fetch } = setup();
    expect((await fetch('https://api.example.com/nl')).status).toBe(302);
  });
});

describe('401 recovery', () => {
  it('recovers once and replays a JSON POST body identically with the new token', async () => {
    let calls = 0;
    server.use(
      http.post('https://api.example.com/orders', () =>
        ++calls === 1
          ? new HttpResponse(null, {
              status: 401,
              headers: { 'WWW-Authenticate': 'Bearer realm="api", error="invalid_token"' },
            })
          : HttpResponse.json({ created: true }, { status: 201 }),
      ),
    );
    const { host, fetch } = setup();
    const res = await fetch('https://api.example.com/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sku: 'abc', qty: 2 }),
    });
    expect(res.status).toBe(201);
    const [first, second] = await seen();
    expect(first?.body).toBe('{"sku":"abc","qty":2}');
    expect(second?.body).toBe(first?.body);
    expect(second?.headers['content-type']).toBe('application/json');
    expect(first?.headers['authorization']).toBe(`Bearer ${TOKEN_1}`);
    expect(second?.headers['authorization']).toBe(`Bearer ${TOKEN_2}`);
    expect(host.recoverCalls).toEqual([1]);
    expect(host.outcomes).toEqual([
      expect.objectContaining({ status: 201, retried: true, authenticated: true }),
    ]);
  });

  it('recovers on a bare 401 without WWW-Authenticate', async () => {
    let calls = 0;
    server.use(
      http.get('https://api.example.com/bare', () =>
        ++calls === 1 ? new HttpResponse(null, { status: 401 }) : ok(),
      ),
    );
    const { host, fetch } = setup();
    expect((await fetch('https://api.example.com/bare')).status).toBe(200);
    expect(host.recoverCalls).toEqual([1]);
  });

  it('returns a second 401 without another recovery', async () => {
    server.use(
      http.get('https://api.example.com/always401', () => new HttpResponse('no', { status: 401 })),
    );
    const { host, fetch } = setup();
    const res = await fetch('https://api.example.com/always401');
    expect(res.status).toBe(401);
    expect(await res.text()).toBe('no');
    expect(host.recoverCalls).toEqual([1]);
    expect(await seen()).toHaveLength(2);
  });

  it.each([
    [401, 'Bearer error="insufficient_scope", scope="admin"'],
    [401, 'Bearer error="invalid_request"'],
    [403, 'Bearer error="insufficient_scope"'],
    [403, null],
  ])('does not recover on %i %s', async (status, challenge) => {
    server.use(
      http.get(
        'https://api.example.com/scope',
        () =>
          new HttpResponse(null, {
            status,
            headers: challenge === null ? {} : { 'WWW-Authenticate': challenge },
          }),
      ),
    );
    const { host, fetch } = setup();
    expect((await fetch('https://api.example.com/scope')).status).toBe(status);
    expect(host.recoverCalls).toEqual([]);
    expect(await seen()).toHaveLength(1);
  });

  it('recovers concurrent 401s of one token with the same generation and one refresh', async () => {
    server.use(
      http.get('https://api.example.com/c/:n', ({ request }) =>
        request.headers.get('authorization') === `Bearer ${TOKEN_1}`
          ? new HttpResponse(null, {
              status: 401,
              headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
            })
          : ok(),
      ),
    );
    const { host, fetch } = setup();
    const responses = await Promise.all(
      [1, 2, 3].map((n) => fetch(`https://api.example.com/c/${n}`)),
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(host.recoverCalls).toEqual([1, 1, 1]);
    expect(host.refreshes).toBe(1);
  });

  it('throws ERR_REAUTH_REQUIRED when recovery says so', async () => {
    server.use(
      http.get('https://api.example.com/r', () => new HttpResponse(null, { status: 401 })),
    );
    const { host, fetch } = setup({
      recoverError: new TokenWardenError('ERR_REAUTH_REQUIRED', 'sign in again'),
    });
    expectCode(await caught(fetch('https://api.example.com/r')), 'ERR_REAUTH_REQUIRED');
    expect(host.outcomes).toEqual([expect.objectContaining({ status: 401, retried: false })]);
  });

  it('returns the 401 when recovery fails otherwise', async () => {
    server.use(http.get('https://api.example.com/r', () => new HttpResponse('x', { status: 401 })));
    const { host, fetch } = setup({
      recoverError: new TokenWardenError('ERR_NETWORK', 'token endpoint down'),
    });
    const res = await fetch('https://api.example.com/r');
    expect(res.status).toBe(401);
    expect(await res.text()).toBe('x');
    expect(host.outcomes).toEqual([expect.objectContaining({ status: 401, retried: false })]);
  });

  it('does not recover a 401 from an origin the token never reached', async () => {
    server.use(
      http.get('https://api.example.com/go', () => redirect('https://other.example.com/x', 302)),
      http.get('https://other.example.com/x', () => new HttpResponse(null, { status: 401 })),
    );
    const { host, fetch } = setup();
    expect((await fetch('https://api.example.com/go')).status).toBe(401);
    expect(host.recoverCalls).toEqual([]);
  });

  it('does not replay a streamed body after a 401', async () => {
    server.use(
      http.post('https://api.example.com/s', () => new HttpResponse(null, { status: 401 })),
    );
    const { host, fetch } = setup();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('x'));
        controller.close();
      },
    });
    const res = await fetch('https://api.example.com/s', {
      method: 'POST',
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(401);
    expect(host.recoverCalls).toEqual([]);
  });
});

describe('abort signals', () => {
  it('rejects with the reason of an already aborted signal and sends nothing', async () => {
    const { host, fetch } = setup();
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(fetch('https://api.example.com/x', { signal: controller.signal })).rejects.toThrow(
      'gone',
    );
    expect(host.acquireCount).toBe(0);
    expect(await seen()).toHaveLength(0);
  });

  it('honours an abort while the token is being acquired', async () => {
    const { fetch } = setup({ acquireDelayMs: 200 });
    const started = Date.now();
    const error = await caught(
      fetch('https://api.example.com/x', { signal: AbortSignal.timeout(20) }),
    );
    expect((error as Error).name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(150);
    expect(await seen()).toHaveLength(0);
  });

  it('honours an abort while waiting for the response, and reports status 0', async () => {
    server.use(
      http.get('https://api.example.com/slow', async () => {
        await delay(500);
        return ok();
      }),
    );
    const { host, fetch } = setup();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const error = await caught(
      fetch('https://api.example.com/slow', { signal: controller.signal }),
    );
    expect((error as Error).name).toBe('AbortError');
    expect(host.outcomes).toEqual([expect.objectContaining({ status: 0 })]);
  });

  it("honours a Request's own signal", async () => {
    const { fetch } = setup();
    const controller = new AbortController();
    controller.abort();
    const request = new Request('https://api.example.com/x', { signal: controller.signal });
    expect(((await caught(fetch(request))) as Error).name).toBe('AbortError');
  });

  it('honours an abort between redirect hops', async () => {
    const controller = new AbortController();
    server.use(
      http.get('https://api.example.com/r1', () => {
        controller.abort();
        return redirect('/r2', 302);
      }),
    );
    const { fetch } = setup();
    const error = await caught(fetch('https://api.example.com/r1', { signal: controller.signal }));
    expect((error as Error).name).toBe('AbortError');
    expect(await seen()).toHaveLength(1);
  });
});

describe('outcomes', () => {
  it('reports status 0 on a network error, once, with the error name', async () => {
    server.use(http.get('https://api.example.com/down', () => HttpResponse.error()));
    const { host, fetch } = setup();
    await expect(fetch('https://api.example.com/down')).rejects.toThrow(TypeError);
    expect(host.outcomes).toEqual([
      {
        method: 'GET',
        origin: 'https://api.example.com',
        status: 0,
        durationMs: expect.any(Number),
        retried: false,
        authenticated: true,
        error: 'TypeError',
      },
    ]);
  });

  it('reports what a failed call threw: a timeout, an abort, a code, never a message', async () => {
    server.use(
      http.get('https://api.example.com/slow', async () => {
        await delay(2_000);
        return HttpResponse.json({});
      }),
      http.get('https://api.example.com/hop', () =>
        HttpResponse.redirect('https://api.example.com/ok', 302),
      ),
    );
    const { host, fetch } = setup();
    const url = 'https://api.example.com/slow';
    await expect(fetch(url, { signal: AbortSignal.timeout(20) })).rejects.toThrow();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    await expect(fetch(url, { signal: controller.signal })).rejects.toThrow();
    const other = new AbortController();
    setTimeout(() => other.abort('a reason that is no error'), 20);
    await expect(fetch(url, { signal: other.signal })).rejects.toBe('a reason that is no error');
    await expect(fetch('https://api.example.com/hop', { redirect: 'error' })).rejects.toThrow();
    expect(host.outcomes.map(({ status, error }) => ({ status, error }))).toEqual([
      { status: 0, error: 'TimeoutError' },
      { status: 0, error: 'AbortError' },
      { status: 0, error: 'string' },
      { status: 0, error: 'ERR_REDIRECT' },
    ]);
  });

  it('reports no error for a response, whatever its status', async () => {
    server.use(
      http.get('https://api.example.com/boom', () => new HttpResponse(null, { status: 503 })),
    );
    const { host, fetch } = setup();
    expect((await fetch('https://api.example.com/boom')).status).toBe(503);
    expect(host.outcomes).toHaveLength(1);
    expect(host.outcomes[0]).not.toHaveProperty('error', expect.anything());
  });

  it('survives a host whose blocked and observed callbacks throw', async () => {
    server.use(http.get('https://api.example.com/ok', ok));
    const host = fakeHost();
    host.blocked = () => {
      throw new Error('listener bug');
    };
    host.observed = () => {
      throw new Error('metrics bug');
    };
    const fetch = createAuthenticatedFetch(host);
    expect((await fetch('https://api.example.com/ok')).status).toBe(200);
    expectCode(await caught(fetch('https://evil.example.net/')), 'ERR_ORIGIN_NOT_ALLOWED');
  });

  it('reports a token that cannot be a header value with a coded error that does not quote it', async () => {
    const { fetch } = setup({ tokens: ['bad\r\nvalue-tw-transport-token-1+Zq8/f3kP1xV'] });
    const error = await caught(fetch('https://api.example.com/x'));
    expectCode(error, 'ERR_SOURCE_FAILED');
    expect((error as Error).message).not.toContain('bad');
  });
});

describe('browsers (redirect: manual is opaque)', () => {
  function browserHost(options: FakeHostOptions, response: () => Response) {
    vi.stubGlobal('document', {});
    const host = fakeHost(options);
    const inits: RequestInit[] = [];
    Object.assign(host, {
      fetch: async (_input: unknown, init: RequestInit) => {
        inits.push(init);
        return response();
      },
    });
    return { host, inits, fetch: createAuthenticatedFetch(host) };
  }

  function opaqueRedirect(): Response {
    const res = new Response(null, { status: 200 });
    Object.defineProperty(res, 'type', { value: 'opaqueredirect' });
    return res;
  }

  it('lets the browser follow redirects for an Authorization token (the Fetch standard strips it cross-origin)', async () => {
    const { inits, fetch } = browserHost({}, () => new Response('ok'));
    expect((await fetch('https://api.example.com/x')).status).toBe(200);
    expect(inits[0]?.redirect).toBe('follow');
  });

  it('refuses to let a custom API-key header ride a redirect it cannot inspect', async () => {
    const { inits, fetch } = browserHost({ header: 'X-API-Key', scheme: null }, opaqueRedirect);
    expectCode(await caught(fetch('https://api.example.com/x')), 'ERR_REDIRECT');
    expect(inits[0]?.redirect).toBe('manual');
  });

  it("returns the opaque redirect when the caller asked for redirect: 'manual'", async () => {
    const { fetch } = browserHost({ header: 'X-API-Key', scheme: null }, opaqueRedirect);
    const res = await fetch('https://api.example.com/x', { redirect: 'manual' });
    expect(res.type).toBe('opaqueredirect');
  });

  it('does not recover a 401 from another origin the browser redirected to', async () => {
    const { host, fetch } = browserHost({}, () => {
      const res = new Response(null, { status: 401 });
      Object.defineProperty(res, 'url', { value: 'https://other.example.com/x' });
      return res;
    });
    expect((await fetch('https://api.example.com/x')).status).toBe(401);
    expect(host.recoverCalls).toEqual([]);
  });
});
