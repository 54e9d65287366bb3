import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { customSource } from '../../src/index.js';
import { createWarden, type Warden } from '../../src/warden.js';

const API = 'https://api.example.test';

/** Tokens the API currently accepts. */
const accepted = new Set<string>();
const seen: { path: string; auth: string | null; body: string }[] = [];

const server = setupServer(
  http.all(`${API}/*`, async ({ request }) => {
    const auth = request.headers.get('authorization');
    const path = new URL(request.url).pathname;
    seen.push({ path, auth, body: await request.text() });
    if (path === '/forbidden') {
      return new HttpResponse(null, {
        status: 403,
        headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="admin"' },
      });
    }
    if (path === '/always-401' || !auth || !accepted.has(auth.replace(/^Bearer /, ''))) {
      return new HttpResponse(null, {
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    return HttpResponse.json({ ok: true });
  }),
);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

describe('401 recovery through credential.fetch', () => {
  let warden: Warden;
  let minted: string[];
  beforeEach(() => {
    warden = createWarden();
    minted = [];
    seen.length = 0;
    accepted.clear();
  });
  afterEach(() => warden.close());

  function register(accept = true) {
    return warden.register('api', {
      source: customSource(async () => {
        const token = `tok-${minted.length + 1}`;
        minted.push(token);
        if (accept) accepted.add(token);
        return { accessToken: token, expiresIn: 3600 };
      }),
      origins: [API],
    });
  }

  it('a token revoked at the server costs one refresh and one retry, with the body replayed', async () => {
    const credential = register();
    await credential.getToken();
    accepted.clear(); // revoked server-side
    const res = await credential.fetch(`${API}/orders`, {
      method: 'POST',
      body: JSON.stringify({ n: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    expect(minted).toEqual(['tok-1', 'tok-2']);
    expect(seen.map((s) => [s.auth, s.body])).toEqual([
      ['Bearer tok-1', '{"n":1}'],
      ['Bearer tok-2', '{"n":1}'],
    ]);
  });

  it('concurrent requests that see the same 401 share one forced refresh', async () => {
    const credential = register();
    await credential.getToken();
    accepted.clear();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => credential.fetch(`${API}/item/${i}`)),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(minted).toEqual(['tok-1', 'tok-2']);
    expect(seen).toHaveLength(40);
  });

  it('never retries twice: a second 401 is returned to the caller', async () => {
    const credential = register();
    const res = await credential.fetch(`${API}/always-401`);
    expect(res.status).toBe(401);
    expect(seen).toHaveLength(2);
    expect(minted).toHaveLength(2);
  });

  it('a 403 insufficient_scope does not refresh', async () => {
    const credential = register();
    const res = await credential.fetch(`${API}/forbidden`);
    expect(res.status).toBe(403);
    expect(minted).toHaveLength(1);
    expect(seen).toHaveLength(1);
  });

  it('the loop guard caps forced refreshes per minute', async () => {
    const credential = warden.register('guarded', {
      source: customSource(async () => {
        minted.push('x');
        return { accessToken: `tok-guarded-${minted.length}`, expiresIn: 3600 };
      }),
      origins: [API],
      maxForcedRefreshesPerMinute: 3,
    });
    for (let i = 0; i < 6; i++) {
      const res = await credential.fetch(`${API}/always-401`);
      expect(res.status).toBe(401);
    }
    // One initial token plus three forced refreshes; the guard stopped the rest.
    expect(minted).toHaveLength(4);
  });
});
