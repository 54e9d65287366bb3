// DPoP (RFC 9449) against msw servers that verify every proof with jose: token requests and API
// requests carry a fresh proof of the credential's key, nonces are learned and retried once,
// a Bearer answer is refused unless allowed, and the proof follows the origin rules.
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  EmbeddedJWK,
  type JWK,
  jwtVerify,
} from 'jose';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { accessTokenHash } from '../../src/dpop/proof.js';
import { clientCredentials, createWarden, memoryStore, type Warden } from '../../src/index.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const ISSUER = 'https://auth.example.com';
const TOKEN = `${ISSUER}/oauth/token`;
const API = 'https://api.example.com';
const OTHER = 'https://other.example.net';

/** A verified proof, as a server saw it. */
interface SeenProof {
  readonly server: 'as' | 'rs';
  readonly htm: string;
  readonly htu: string;
  readonly jti: string;
  readonly iat: number;
  readonly nonce?: string;
  readonly ath?: string;
  readonly jkt: string;
  readonly jwk: JWK;
  readonly url: string;
}

const seen: SeenProof[] = [];
const rsRequests: { url: string; authorization: string | null; dpop: string | null }[] = [];
/** Nonces the servers currently require (undefined: none). */
const required: { as?: string; rs?: string } = {};
let issued = 0;
let tokenType = 'DPoP';
/** Access token → the key thumbprint it is bound to. */
const bound = new Map<string, string>();

async function verifyProof(
  server: 'as' | 'rs',
  request: Request,
): Promise<SeenProof | { error: string }> {
  const proof = request.headers.get('dpop');
  if (!proof) return { error: 'no proof' };
  try {
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: ['ES256', 'EdDSA'],
    });
    const jwk = protectedHeader.jwk as JWK;
    const record: SeenProof = {
      server,
      htm: payload['htm'] as string,
      htu: payload['htu'] as string,
      jti: payload.jti as string,
      iat: payload.iat as number,
      ...(payload['nonce'] === undefined ? {} : { nonce: payload['nonce'] as string }),
      ...(payload['ath'] === undefined ? {} : { ath: payload['ath'] as string }),
      jkt: await calculateJwkThumbprint(jwk),
      jwk,
      url: request.url,
    };
    seen.push(record);
    return record;
  } catch (error) {
    return { error: (error as Error).message };
  }
}

const server = setupServer(
  http.post(TOKEN, async ({ request }) => {
    const proof = await verifyProof('as', request);
    if ('error' in proof)
      return HttpResponse.json({ error: 'invalid_dpop_proof' }, { status: 400 });
    if (required.as !== undefined && proof.nonce !== required.as) {
      return HttpResponse.json(
        { error: 'use_dpop_nonce', error_description: 'Authorization server requires nonce' },
        { status: 400, headers: { 'DPoP-Nonce': required.as } },
      );
    }
    issued++;
    const token = `${SENTINEL.accessToken}-${issued}`;
    bound.set(token, proof.jkt);
    return HttpResponse.json({ access_token: token, token_type: tokenType, expires_in: 300 });
  }),
  http.all(`${API}/*`, async ({ request }) => {
    rsRequests.push({
      url: request.url,
      authorization: request.headers.get('authorization'),
      dpop: request.headers.get('dpop'),
    });
    const path = new URL(request.url).pathname;
    const [scheme, token] = (request.headers.get('authorization') ?? '').split(' ');
    if (scheme === 'Bearer' && token) return HttpResponse.json({ bearer: true });
    const proof = await verifyProof('rs', request);
    const challenge = (error: string, extra: Record<string, string> = {}) =>
      new HttpResponse(null, {
        status: 401,
        headers: { 'WWW-Authenticate': `DPoP error="${error}", algs="ES256 EdDSA"`, ...extra },
      });
    if ('error' in proof || scheme !== 'DPoP' || token === undefined)
      return challenge('invalid_token');
    if (proof.ath !== (await accessTokenHash(token))) return challenge('invalid_dpop_proof');
    if (bound.get(token) !== proof.jkt) return challenge('invalid_token');
    if (required.rs !== undefined && proof.nonce !== required.rs) {
      return challenge('use_dpop_nonce', { 'DPoP-Nonce': required.rs });
    }
    if (path === '/hop') return HttpResponse.redirect(`${API}/landing?x=1`, 302);
    if (path === '/away') return HttpResponse.redirect(`${OTHER}/landing`, 302);
    if (path === '/flaky' && rsRequests.filter((r) => r.url.endsWith('/flaky')).length < 3) {
      return new HttpResponse(null, { status: 503 });
    }
    return HttpResponse.json({ ok: true, jkt: proof.jkt });
  }),
  http.all(`${OTHER}/*`, ({ request }) => {
    rsRequests.push({
      url: request.url,
      authorization: request.headers.get('authorization'),
      dpop: request.headers.get('dpop'),
    });
    return HttpResponse.json({ other: true });
  }),
);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

const wardens: Warden[] = [];
afterEach(async () => {
  await Promise.all(wardens.splice(0).map((w) => w.close()));
  server.resetHandlers();
  seen.length = 0;
  rsRequests.length = 0;
  delete required.as;
  delete required.rs;
  tokenType = 'DPoP';
  bound.clear();
});

function setup(options: { dpop?: unknown; store?: ReturnType<typeof memoryStore> } = {}) {
  const warden = createWarden({ ...(options.store ? { store: options.store } : {}) });
  wardens.push(warden);
  const credential = warden.register('api', {
    source: clientCredentials({
      tokenEndpoint: TOKEN,
      clientId: 'app',
      clientSecret: SENTINEL.clientSecret,
    }),
    origins: [API],
    dpop: (options.dpop ?? true) as never,
  });
  return { warden, credential };
}

describe('DPoP-bound credentials', () => {
  it('proves the key on the token request and on every API request', async () => {
    const { credential } = setup();
    const res = await credential.fetch(`${API}/v1/items?page=2#frag`, {
      method: 'POST',
      body: '{}',
    });
    expect(res.status).toBe(200);
    const [tokenProof, apiProof] = seen;
    expect(tokenProof).toMatchObject({ server: 'as', htm: 'POST', htu: TOKEN });
    expect(tokenProof?.ath).toBeUndefined(); // ath only on resource requests
    expect(apiProof).toMatchObject({ server: 'rs', htm: 'POST', htu: `${API}/v1/items` });
    const token = (await credential.getToken()).reveal();
    expect(apiProof?.ath).toBe(await accessTokenHash(token));
    expect(rsRequests[0]?.authorization).toBe(`DPoP ${token}`);
    // One key, public members only, and its thumbprint in the status.
    expect(tokenProof?.jkt).toBe(apiProof?.jkt);
    expect(Object.keys(apiProof?.jwk ?? {}).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    expect(credential.status().dpop).toEqual({ algorithm: 'ES256', thumbprint: apiProof?.jkt });
    // iat on the (same) clock, jti of at least 96 bits.
    expect(Math.abs((apiProof?.iat ?? 0) - Date.now() / 1000)).toBeLessThan(5);
    expect(Buffer.from(apiProof?.jti ?? '', 'base64url').length).toBeGreaterThanOrEqual(12);
  });

  it('signs a fresh proof for every request, retry and redirect hop', async () => {
    const { credential } = setup();
    for (let i = 0; i < 5; i++) await credential.fetch(`${API}/v1/ping`);
    // ky's own retries (503) go through credential.fetch: each attempt gets its own proof.
    const api = credential.ky({ prefix: `${API}/`, retry: { limit: 3, delay: () => 1 } });
    expect(await api.get('flaky').json()).toMatchObject({ ok: true });
    // A same-origin redirect: the second hop's proof names the new URL.
    expect((await credential.fetch(`${API}/hop`)).status).toBe(200);
    const rs = seen.filter((p) => p.server === 'rs');
    expect(new Set(rs.map((p) => p.jti)).size).toBe(rs.length);
    expect(rs.filter((p) => p.htu === `${API}/flaky`)).toHaveLength(3);
    expect(rs.at(-2)?.htu).toBe(`${API}/hop`);
    expect(rs.at(-1)?.htu).toBe(`${API}/landing`);
    // Never a proof that the server did not see: the client produced exactly these.
    expect(rsRequests.every((r) => r.dpop !== null)).toBe(true);
  });

  it('strips the proof with the token when a redirect leaves the origin', async () => {
    const { credential, warden } = setup();
    const blocked: string[] = [];
    warden.on('blocked', (e) => blocked.push(e.reason));
    const res = await credential.fetch(`${API}/away`);
    expect(await res.json()).toEqual({ other: true });
    const landing = rsRequests.find((r) => r.url.startsWith(OTHER));
    expect(landing).toEqual({ url: `${OTHER}/landing`, authorization: null, dpop: null });
    expect(blocked).toEqual(['redirect']);
  });

  it('retries once with the nonce an authorization server asks for, then keeps using it', async () => {
    required.as = 'as-nonce-1';
    const { credential } = setup();
    expect((await credential.fetch(`${API}/v1/a`)).status).toBe(200);
    const asProofs = seen.filter((p) => p.server === 'as');
    expect(asProofs.map((p) => p.nonce)).toEqual([undefined, 'as-nonce-1']);
    expect(asProofs[0]?.jti).not.toBe(asProofs[1]?.jti);
    // The next token request carries the nonce at once; resource proofs never carry it.
    await credential.getToken({ forceRefresh: true });
    expect(seen.filter((p) => p.server === 'as').at(-1)?.nonce).toBe('as-nonce-1');
    expect(seen.filter((p) => p.server === 'rs').every((p) => p.nonce === undefined)).toBe(true);
  });

  it('does not retry a nonce challenge twice', async () => {
    const { credential } = setup();
    let n = 0;
    server.use(
      http.post(TOKEN, async ({ request }) => {
        await verifyProof('as', request);
        n++;
        return HttpResponse.json(
          { error: 'use_dpop_nonce' },
          { status: 400, headers: { 'DPoP-Nonce': `nonce-${n}` } },
        );
      }),
    );
    await expect(credential.getToken()).rejects.toMatchObject({
      code: 'ERR_OAUTH_ERROR',
      error: 'use_dpop_nonce',
    });
    expect(n).toBe(2);
  });

  it('retries once with the nonce a resource server asks for, per origin', async () => {
    required.rs = 'rs-nonce-1';
    const { credential } = setup();
    expect((await credential.fetch(`${API}/v1/a`)).status).toBe(200);
    const rs = seen.filter((p) => p.server === 'rs');
    expect(rs.map((p) => p.nonce)).toEqual([undefined, 'rs-nonce-1']);
    expect((await credential.fetch(`${API}/v1/b`)).status).toBe(200);
    expect(seen.filter((p) => p.server === 'rs').at(-1)?.nonce).toBe('rs-nonce-1');
    // No refresh for a nonce challenge, and the AS never saw the resource nonce.
    expect(seen.filter((p) => p.server === 'as')).toHaveLength(1);
    expect(seen.filter((p) => p.server === 'as')[0]?.nonce).toBeUndefined();
    // A server that keeps asking gets one retry per request, then its 401.
    required.rs = 'rs-nonce-2';
    const count = rsRequests.length;
    expect((await credential.fetch(`${API}/v1/c`)).status).toBe(200);
    expect(rsRequests.length - count).toBe(2);
    let challenged = 0;
    server.use(
      http.all(`${API}/*`, () => {
        challenged++;
        return new HttpResponse(null, {
          status: 401,
          headers: {
            'WWW-Authenticate': 'DPoP error="use_dpop_nonce"',
            'DPoP-Nonce': `n-${challenged}`,
          },
        });
      }),
    );
    expect((await credential.fetch(`${API}/v1/d`)).status).toBe(401);
    expect(challenged).toBe(2);
  });

  it('takes a 401 with a new nonce and no readable challenge for a nonce challenge', async () => {
    const { credential } = setup();
    expect((await credential.fetch(`${API}/v1/a`)).status).toBe(200);
    const asBefore = seen.filter((p) => p.server === 'as').length;
    let calls = 0;
    server.use(
      http.all(`${API}/*`, async ({ request }) => {
        calls++;
        const proof = await verifyProof('rs', request);
        if (!('error' in proof) && proof.nonce === 'hidden-nonce')
          return HttpResponse.json({ ok: 1 });
        // As a browser sees it when CORS exposes DPoP-Nonce but not WWW-Authenticate.
        return new HttpResponse(null, { status: 401, headers: { 'DPoP-Nonce': 'hidden-nonce' } });
      }),
    );
    expect((await credential.fetch(`${API}/v1/b`)).status).toBe(200);
    expect(calls).toBe(2);
    // The token was kept: no token request.
    expect(seen.filter((p) => p.server === 'as')).toHaveLength(asBefore);
  });

  it('refreshes, not retries, when a readable challenge says the token is invalid', async () => {
    const { credential } = setup();
    expect((await credential.fetch(`${API}/v1/a`)).status).toBe(200);
    let calls = 0;
    server.use(
      http.all(
        `${API}/*`,
        () => {
          calls++;
          return new HttpResponse(null, {
            status: 401,
            headers: {
              'WWW-Authenticate': 'DPoP error="invalid_token"',
              'DPoP-Nonce': `n-${calls}`,
            },
          });
        },
        { once: true },
      ),
    );
    expect((await credential.fetch(`${API}/v1/b`)).status).toBe(200);
    expect(calls).toBe(1);
    expect(seen.filter((p) => p.server === 'as')).toHaveLength(2); // the initial token and a refresh
  });

  it('refuses a Bearer answer to a DPoP request, unless the downgrade is allowed', async () => {
    tokenType = 'Bearer';
    const strict = setup();
    await expect(strict.credential.fetch(`${API}/v1/a`)).rejects.toMatchObject({
      code: 'ERR_INVALID_RESPONSE',
    });
    expect(rsRequests).toEqual([]);
    const lax = setup({ dpop: { allowBearer: true } });
    const res = await lax.credential.fetch(`${API}/v1/a`);
    expect(await res.json()).toEqual({ bearer: true });
    expect(rsRequests.at(-1)?.dpop).toBeNull();
    expect(rsRequests.at(-1)?.authorization).toMatch(/^Bearer /);
  });

  it('uses EdDSA when asked, and rejects unknown algorithms', async () => {
    const { credential } = setup({ dpop: { algorithm: 'EdDSA' } });
    expect((await credential.fetch(`${API}/v1/a`)).status).toBe(200);
    const proof = rsRequests.at(-1)?.dpop ?? '';
    expect(decodeProtectedHeader(proof)).toMatchObject({ alg: 'EdDSA', typ: 'dpop+jwt' });
    expect(credential.status().dpop?.algorithm).toBe('EdDSA');
    expect(() => setup({ dpop: { algorithm: 'RS256' } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => setup({ dpop: 'yes' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });

  it('shares the key through the store, and a non-extractable one in memory', async () => {
    const store = memoryStore();
    const first = setup({ store });
    await first.credential.fetch(`${API}/v1/a`);
    const record = await store.get('api');
    expect(record?.dpopKey?.extractable).toBe(false);
    expect(record?.dpopKey?.pair.privateKey.extractable).toBe(false);
    // Another warden on the same store takes the token and signs with the same key.
    const second = setup({ store });
    expect((await second.credential.fetch(`${API}/v1/b`)).status).toBe(200);
    const rs = seen.filter((p) => p.server === 'rs');
    expect(rs[1]?.jkt).toBe(rs[0]?.jkt);
    expect(seen.filter((p) => p.server === 'as')).toHaveLength(1);
    // After a sign-out the next token is bound to a new key.
    await first.credential.forget();
    await first.credential.fetch(`${API}/v1/c`);
    expect(seen.filter((p) => p.server === 'rs').at(-1)?.jkt).not.toBe(rs[0]?.jkt);
  });

  it('never puts a token, a private key member or a secret in proofs, status or errors', async () => {
    const { credential } = setup();
    await credential.fetch(`${API}/v1/a`);
    const proofs = rsRequests.map((r) => r.dpop);
    for (const proof of proofs) {
      const header = decodeProtectedHeader(proof ?? '');
      expect(header.jwk).not.toHaveProperty('d');
    }
    const token = (await credential.getToken()).reveal();
    expect(
      findLeaks(
        [proofs, credential.status(), seen.map((p) => p.jwk)],
        [token, SENTINEL.clientSecret],
      ),
    ).toEqual([]);
    // The inventory and the metrics name the key by its thumbprint, never the key.
    const warden = wardens[0] as Warden;
    const [entry] = await warden.inventory();
    const thumbprint = credential.status().dpop?.thumbprint;
    expect(entry?.dpop).toEqual({ algorithm: 'ES256', thumbprint });
    expect(warden.metrics().credentials.api?.dpop).toEqual({ algorithm: 'ES256', thumbprint });
    expect(JSON.stringify([entry, warden.metrics()])).not.toContain('"d"');
  });
});
