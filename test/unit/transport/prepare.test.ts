// The authenticated fetch reads simple calls (a URL and an init of method, headers, string body,
// signal, redirect) without building a Request, and a Request input without an init as it is.
// Whatever path a call takes, the request that goes out must be the one `new Request(input,
// init)` describes, and bad calls must fail as fetch fails them.
import { afterEach, describe, expect, it } from 'vitest';
import { createWarden, customFetch, customSource, type Warden } from '../../../src/index.js';

const API = 'https://api.example.com';
const TOKEN = 'prepare-test-token-Zq8f3kP1xV';

interface Sent {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body: string | null;
  readonly redirect: string | undefined;
}

const wardens: Warden[] = [];
afterEach(async () => {
  await Promise.all(wardens.splice(0).map((w) => w.close()));
});

function setup() {
  const sent: Sent[] = [];
  const stub = (async (input: string, init: RequestInit) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const body =
      init.body === null || init.body === undefined
        ? null
        : new TextDecoder().decode(init.body as ArrayBuffer);
    sent.push({ url: input, method: init.method ?? 'GET', headers, body, redirect: init.redirect });
    return new Response('{}', { status: 200 });
  }) as unknown as typeof fetch;
  const warden = createWarden({ [customFetch]: stub });
  wardens.push(warden);
  const credential = warden.register('api', {
    source: customSource(async () => ({ accessToken: TOKEN, expiresIn: 3600 })),
    origins: [API],
  });
  return { credential, sent };
}

/** What `new Request(input, init)` says the request is, in the same shape. */
async function expected(input: string, init?: RequestInit): Promise<Omit<Sent, 'redirect'>> {
  const request = new Request(input, init);
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
  });
  headers['authorization'] = `Bearer ${TOKEN}`;
  const body = request.body === null ? null : await request.text();
  return { url: request.url, method: request.method, headers, body };
}

describe('preparing a request', () => {
  const cases: [string, RequestInit | undefined][] = [
    ['no init', undefined],
    ['a GET with headers', { headers: { accept: 'application/json', 'x-trace': '1' } }],
    ['a POST with a string body', { method: 'POST', body: '{"a":1}' }],
    [
      'a POST with its own content type',
      {
        method: 'POST',
        body: 'a=1',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
    ],
    ['a lower-case method (normalised)', { method: 'post', body: 'x' }],
    ['a PATCH', { method: 'PATCH', body: 'x' }],
    ['a body of bytes', { method: 'PUT', body: new TextEncoder().encode('bytes') }],
    ['a caller-set Authorization (replaced)', { headers: { Authorization: 'Basic bad' } }],
    ['a Headers object', { headers: new Headers([['x-a', '1']]) }],
    ['a redirect mode', { redirect: 'error' }],
  ];

  it.each(cases)('sends what new Request() describes: %s', async (_, init) => {
    const { credential, sent } = setup();
    const url = `${API}/v1/items?page=2`;
    await credential.fetch(url, init);
    const { redirect, ...rest } = sent[0] as Sent;
    expect(rest).toEqual(await expected(url, init));
    expect(redirect).toBe('manual');
  });

  it('reads a Request input without an init as it is, body included', async () => {
    const { credential, sent } = setup();
    const request = new Request(`${API}/v1/items`, {
      method: 'POST',
      body: 'payload',
      headers: { 'x-a': '1', authorization: 'Basic nope' },
    });
    await credential.fetch(request);
    expect(sent[0]).toMatchObject({
      url: `${API}/v1/items`,
      method: 'POST',
      body: 'payload',
      headers: { 'x-a': '1', authorization: `Bearer ${TOKEN}` },
    });
  });

  it('fails bad calls as fetch does, before sending anything', async () => {
    const { credential, sent } = setup();
    for (const init of [
      { body: 'x' },
      { method: 'GET', body: 'x' },
      { method: 'HEAD', body: 'x' },
      { redirect: 'sometimes' as RequestRedirect },
      { method: 'CONNECT' },
      { headers: { 'bad header': '1' } },
    ]) {
      await expect(credential.fetch(`${API}/x`, init), JSON.stringify(init)).rejects.toBeInstanceOf(
        TypeError,
      );
    }
    expect(sent).toEqual([]);
  });
});
