// DPoP (RFC 9449) end to end: tokenwarden against a real oidc-provider with DPoP on (nonces
// required where a test asks), and a loopback resource server that verifies every proof with
// jose (signature, typ, htm, htu, ath, iat window, jti replay, its own nonce) and that the token
// is bound to the proof's key (cnf.jkt, by RFC 7662 introspection). The client must never
// produce a proof the server refuses; the test itself plays the thief.
import {
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  SignJWT,
} from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Credential,
  clientCredentials,
  type DeviceCodePrompt,
  type DpopOptions,
  deviceCode,
  type LogRecord,
  memoryStore,
  type RefreshEvent,
  refreshToken,
  type TokenSource,
  type TokenStore,
  type Warden,
} from '../../src/index.js';
import { approveDevice } from '../support/device-approval.js';
import {
  type DpopResourceServer,
  type DpopVerdict,
  startDpopResource,
} from '../support/dpop-resource.js';
import { collect, useOidcServer, useWarden } from '../support/harness.js';
import { DEVICE_CLIENT_ID, type OidcServer, type RecordedRequest } from '../support/oidc-server.js';
import { findLeaks } from '../support/sentinel.js';

const server = useOidcServer({ devInteractions: true });
let rs: DpopResourceServer;
beforeAll(async () => {
  rs = await startDpopResource({ introspect: (token) => server().introspect(token) });
});
afterAll(async () => {
  await rs?.close();
});
afterEach(() => {
  server().setTtl({ accessToken: 300 });
  server().setDpopNonceRequired(false);
  server().setDpopIgnored(false);
  rs.setNonceRequired(false);
});
// Registered after the hook above: after-hooks run as a stack, so the warden closes first.
const newWarden = useWarden();

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

interface Setup {
  readonly warden: Warden;
  readonly cred: Credential;
  readonly store: TokenStore;
  readonly logs: LogRecord[];
  readonly refreshes: RefreshEvent[];
  readonly observed: unknown[];
}

/** A warden with a memory store and a logger, and one DPoP-bound credential for both servers. */
function setup(id: string, source: TokenSource, dpop: boolean | DpopOptions = true): Setup {
  const op = server();
  const logs: LogRecord[] = [];
  const store = memoryStore();
  const warden = newWarden({ store, logger: (record) => logs.push(record) });
  const refreshes = collect(warden, 'refresh');
  const observed: unknown[] = [
    logs,
    refreshes,
    collect(warden, 'refresh-error'),
    collect(warden, 'reauth-required'),
    collect(warden, 'blocked'),
    collect(warden, 'anomaly'),
  ];
  const cred = warden.register(id, {
    source,
    origins: [rs.origin, op.resource.origin],
    dpop,
    maxForcedRefreshesPerMinute: 100,
  });
  return { warden, cred, store, logs, refreshes, observed };
}

function dpopClientCredentials(op: OidcServer): TokenSource {
  return clientCredentials({
    issuer: op.issuer,
    clientId: op.clients.dpop.clientId,
    clientSecret: op.clients.dpop.clientSecret,
  });
}

/** The token-endpoint requests received since `from`, with the DPoP proof each carried. */
function tokenProofs(op: OidcServer, from: number): { request: RecordedRequest; proof: string }[] {
  return op.requests
    .slice(from)
    .filter((r) => r.method === 'POST' && r.url === '/token')
    .map((request) => ({ request, proof: String(request.headers['dpop'] ?? '') }));
}

/**
 * The proofs sent to the authorization server are well-formed RFC 9449 §4.2 proofs of `jkt`'s
 * key: `typ`, ES256, a public JWK only, a fresh jti each, htm POST, htu the token endpoint,
 * no `ath` (that is for resource requests).
 */
async function expectTokenProofs(
  op: OidcServer,
  from: number,
  jkt: string,
  alg: 'ES256' | 'EdDSA' = 'ES256',
): Promise<string[]> {
  const sent = tokenProofs(op, from);
  expect(sent.length).toBeGreaterThan(0);
  const jtis = new Set<string>();
  for (const { proof } of sent) {
    expect(proof).not.toBe('');
    const header = decodeProtectedHeader(proof);
    expect(header).toMatchObject({ typ: 'dpop+jwt', alg });
    expect(Object.keys(header.jwk ?? {}).sort()).toEqual(
      alg === 'ES256' ? ['crv', 'kty', 'x', 'y'] : ['crv', 'kty', 'x'],
    );
    expect(await calculateJwkThumbprint(header.jwk ?? {}, 'sha256')).toBe(jkt);
    const claims = decodeJwt(proof);
    expect(claims).toMatchObject({ htm: 'POST', htu: op.tokenEndpoint });
    expect(claims['ath']).toBeUndefined();
    expect(typeof claims.jti).toBe('string');
    expect(jtis.has(claims.jti as string)).toBe(false);
    jtis.add(claims.jti as string);
  }
  return sent.map((s) => s.proof);
}

/**
 * The resource server accepted every request in the end: each answer was 200, or a nonce
 * challenge answered right away by a retry of the same request that got 200. Every proof had a
 * fresh jti, htu the URL without query, `ath` and the credential's key, which is the key the
 * token is bound to.
 */
function expectAcceptedTraffic(records: readonly DpopVerdict[], jkt: string): void {
  expect(records.length).toBeGreaterThan(0);
  records.forEach((record, index) => {
    if (record.reason === 'use-dpop-nonce') {
      const next = records[index + 1];
      expect(next).toMatchObject({ method: record.method, url: record.url, reason: 'ok' });
    } else {
      expect(record, `${record.method} ${record.url}: ${record.reason}`).toMatchObject({
        reason: 'ok',
        tokenJkt: jkt,
      });
      const redirect = new URL(record.url, rs.origin).pathname === '/redirect';
      expect(record.status).toBe(redirect ? 307 : 200);
    }
    expect(record.scheme).toBe('dpop');
    expect(record.proofJkt).toBe(jkt);
    const path = new URL(record.url, rs.origin).pathname;
    expect(record.claims?.htu).toBe(`${rs.origin}${path}`);
    expect(String(record.claims?.htu)).not.toContain('?');
    expect(record.claims?.htm).toBe(record.method);
    expect(typeof record.claims?.ath).toBe('string');
  });
  const jtis = records.map((r) => r.claims?.jti);
  expect(new Set(jtis).size).toBe(jtis.length);
}

/** Sends a request to the resource server as the test (not through tokenwarden). */
async function send(
  path: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ status: number; verdict: DpopVerdict | undefined }> {
  const before = rs.requests.length;
  const res = await fetch(`${rs.origin}${path}`, { method, headers });
  await res.arrayBuffer();
  expect(rs.requests.length).toBe(before + 1);
  return { status: res.status, verdict: rs.requests.at(-1) };
}

/** A proof the thief signs with a key of their own, otherwise perfect for `path`. */
async function thiefProof(path: string, token: string, nonce: string): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const { x, y } = await exportJWK(publicKey);
  const ath = Buffer.from(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)),
  ).toString('base64url');
  return new SignJWT({
    jti: crypto.randomUUID(),
    htm: 'GET',
    htu: `${rs.origin}${path}`,
    iat: Math.floor(Date.now() / 1000),
    ath,
    nonce,
  })
    .setProtectedHeader({
      typ: 'dpop+jwt',
      alg: 'ES256',
      jwk: { kty: 'EC', crv: 'P-256', x: x as string, y: y as string },
    })
    .sign(privateKey);
}

/** A stolen token's uses the resource server must all refuse, each for its reason. */
async function expectStolenTokenRefused(token: string, proof: string, nonce: string) {
  // The token alone, as DPoP or as Bearer.
  expect(await send('/v1/items', { authorization: `DPoP ${token}` })).toMatchObject({
    status: 401,
    verdict: { reason: 'no-proof' },
  });
  expect(await send('/v1/items', { authorization: `Bearer ${token}` })).toMatchObject({
    status: 401,
    verdict: { reason: 'not-dpop-scheme' },
  });
  // With a proof of another key.
  expect(
    await send('/v1/items', {
      authorization: `DPoP ${token}`,
      dpop: await thiefProof('/v1/items', token, nonce),
    }),
  ).toMatchObject({ status: 401, verdict: { reason: 'jkt-mismatch' } });
  // With a proof the client sent (captured on the wire): once is all it was good for.
  const { htu, htm } = decodeJwt(proof) as { htu: string; htm: string };
  const path = new URL(htu).pathname;
  expect(await send(path, { authorization: `DPoP ${token}`, dpop: proof }, htm)).toMatchObject({
    status: 401,
    verdict: { reason: 'jti-replay' },
  });
  // ... and it names its URL: another one refuses it.
  expect(
    await send(`${path}/elsewhere`, { authorization: `DPoP ${token}`, dpop: proof }, htm),
  ).toMatchObject({ status: 401, verdict: { reason: 'htu-mismatch' } });
  expect(
    await send(
      path,
      { authorization: `DPoP ${token}`, dpop: proof },
      htm === 'GET' ? 'DELETE' : 'GET',
    ),
  ).toMatchObject({ status: 401, verdict: { reason: 'htm-mismatch' } });
}

/** Every token a token request of `clientId` issued since `from`. */
function issuedTokens(op: OidcServer, from: number, clientId: string): string[] {
  return op.tokenRequests
    .slice(from)
    .filter((r) => r.clientId === clientId)
    .flatMap((r) => [r.issuedAccessToken, r.issuedRefreshToken, r.sentRefreshToken])
    .filter((t): t is string => t !== undefined);
}

describe('DPoP against oidc-provider and a proof-verifying resource server', () => {
  it('client_credentials: the whole lifecycle is DPoP-bound, with nonces required by both servers', async () => {
    const op = server();
    op.setDpopNonceRequired(true);
    rs.setNonceRequired(true);
    const asFrom = op.requests.length;
    const tokensFrom = op.tokenRequests.length;
    const rsFrom = rs.requests.length;
    const { warden, cred, observed } = setup('cc', dpopClientCredentials(op));

    const calls: [string, RequestInit?][] = [
      ['/v1/items?page=1'],
      ['/v1/items', { method: 'POST', body: '{"name":"a"}' }],
      ['/v1/items/7?fields=a,b#top', { method: 'DELETE' }],
    ];
    const accessTokens = new Set<string>();
    for (let round = 0; round < 3; round++) {
      if (round > 0) accessTokens.add((await cred.getToken({ forceRefresh: true })).reveal());
      // A new resource-server nonce in the middle of the life: one challenge, one retry.
      if (round === 2) rs.rotateNonce();
      for (const [path, init] of calls) {
        const res = await cred.fetch(`${rs.origin}${path}`, init);
        expect(res.status, `${init?.method ?? 'GET'} ${path}`).toBe(200);
        expect(await res.json()).toMatchObject({ ok: true, clientId: op.clients.dpop.clientId });
      }
      accessTokens.add((await cred.getToken()).reveal());
    }
    expect(accessTokens.size).toBe(3);

    const jkt = cred.status().dpop?.thumbprint as string;
    expect(cred.status().dpop).toEqual({ algorithm: 'ES256', thumbprint: jkt });
    expect(jkt).toMatch(/^[\w-]{43}$/);

    // The authorization server: a nonce challenge first (one retry with a fresh proof), then
    // every issued token bound to the credential's key.
    const tokenRecords = op.tokenRequests.slice(tokensFrom);
    expect(tokenRecords[0]).toMatchObject({ status: 400, error: 'use_dpop_nonce' });
    tokenRecords.forEach((record, index) => {
      if (record.status !== 200) {
        expect(record.error).toBe('use_dpop_nonce');
        expect(tokenRecords[index + 1]?.status).toBe(200);
      }
    });
    expect(tokenRecords.filter((r) => r.status === 200)).toHaveLength(3);
    const proofs = await expectTokenProofs(op, asFrom, jkt);
    expect(decodeJwt(proofs[0] as string)['nonce']).toBeUndefined();
    expect(proofs.slice(1).every((p) => typeof decodeJwt(p)['nonce'] === 'string')).toBe(true);
    for (const token of accessTokens) {
      expect(await op.findAccessToken(token)).toMatchObject({ jkt });
      expect(await op.introspect(token)).toMatchObject({
        active: true,
        token_type: 'DPoP',
        cnf: { jkt },
      });
    }

    // The resource server: 9 requests accepted, after exactly two nonce challenges.
    const records = rs.requests.slice(rsFrom);
    expectAcceptedTraffic(records, jkt);
    expect(records.filter((r) => r.reason === 'use-dpop-nonce')).toHaveLength(2);
    expect(records.filter((r) => r.reason === 'ok')).toHaveLength(9);
    expect(records.filter((r) => r.method === 'POST').every((r) => r.url === '/v1/items')).toBe(
      true,
    );

    // What the credential shows is the key's thumbprint, which the server bound the tokens to.
    expect(warden.metrics().credentials['cc']?.dpop).toEqual({
      algorithm: 'ES256',
      thumbprint: jkt,
    });
    const entry = (await warden.inventory()).find((e) => e.id === 'cc');
    expect(entry?.dpop).toEqual({ algorithm: 'ES256', thumbprint: jkt });

    // The thief, with the latest token and a proof seen on the wire.
    const token = (await cred.getToken()).reveal();
    const lastProof = records.at(-1)?.proof as string;
    await expectStolenTokenRefused(token, lastProof, rs.nonce);
    // Which left the credential's own requests unharmed.
    expect((await cred.fetch(`${rs.origin}/v1/items`)).status).toBe(200);

    const secrets = [
      op.clients.dpop.clientSecret,
      ...issuedTokens(op, tokensFrom, op.clients.dpop.clientId),
      ...proofs,
      ...records.flatMap((r) => r.proof ?? []),
    ];
    expect(
      findLeaks(
        [...observed, cred, cred.status(), warden.metrics(), await warden.inventory()],
        secrets,
      ),
    ).toEqual([]);
  });

  it('refresh_token: rotations, a revoked token recovered and an expiry refresh stay DPoP-bound', async () => {
    const op = server();
    op.setDpopNonceRequired(true);
    rs.setNonceRequired(true);
    // The dpop client's tokens must be DPoP-bound: a refresh without a proof would fail.
    const minted = await op.mintRefreshToken({ client: 'dpop' });
    const asFrom = op.requests.length;
    const tokensFrom = op.tokenRequests.length;
    const rsFrom = rs.requests.length;
    const { cred, store, refreshes, observed } = setup(
      'rt',
      refreshToken({
        issuer: op.issuer,
        clientId: op.clients.dpop.clientId,
        clientSecret: op.clients.dpop.clientSecret,
        refreshToken: minted.refreshToken,
      }),
    );

    for (let i = 0; i < 4; i++) {
      if (i > 0) await cred.getToken({ forceRefresh: true });
      const res = await cred.fetch(`${rs.origin}/v1/me?round=${i}`);
      expect(res.status).toBe(200);
    }
    // Revoked at the server: the resource server answers invalid_token, tokenwarden refreshes
    // once (with a fresh proof) and retries (with a fresh proof).
    const revoked = (await cred.getToken()).reveal();
    expect(await op.revokeAccessToken(revoked)).toBe(true);
    const res = await cred.fetch(`${rs.origin}/v1/me`, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(200);
    expect((await cred.getToken()).reveal()).not.toBe(revoked);
    // Expiry: a 2-second token is refreshed before the request that would have sent it stale.
    op.setTtl({ accessToken: 2 });
    const shortLived = (await cred.getToken({ forceRefresh: true })).reveal();
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    expect((await cred.fetch(`${rs.origin}/v1/me?after=expiry`)).status).toBe(200);
    expect((await cred.getToken()).reveal()).not.toBe(shortLived);

    const jkt = cred.status().dpop?.thumbprint as string;
    const chain = op.tokenRequests
      .slice(tokensFrom)
      .filter((r) => r.grantType === 'refresh_token' && r.status === 200);
    // 1 initial + 3 forced + 1 after the revocation + 1 forced + 1 on expiry, each redeeming
    // the previous answer's refresh token.
    expect(chain).toHaveLength(7);
    let expected = minted.refreshToken;
    for (const record of chain) {
      expect(record.sentRefreshToken).toBe(expected);
      expect(record.issuedRefreshToken).not.toBe(expected);
      expected = record.issuedRefreshToken as string;
      if (record !== chain.at(-1)) continue;
      expect(await op.findAccessToken(record.issuedAccessToken as string)).toMatchObject({ jkt });
    }
    expect(op.tokenCounts('refresh_token').errors['invalid_grant'] ?? 0).toBe(0);
    expect(refreshes).toHaveLength(7);
    // The expired token made the request wait for a new one ('initial' again).
    expect(refreshes.at(-1)?.reason).toBe('initial');
    expect(refreshes.slice(1).every((e) => e.rotated)).toBe(true);
    const proofs = await expectTokenProofs(op, asFrom, jkt);

    const records = rs.requests.slice(rsFrom);
    const revokedAt = records.findIndex((r) => r.reason === 'inactive-token');
    expect(revokedAt).toBeGreaterThan(0);
    expect(records.filter((r) => r.reason === 'inactive-token')).toHaveLength(1);
    expect(records[revokedAt]?.token).toBe(revoked);
    expect(records[revokedAt + 1]).toMatchObject({ method: 'PUT', reason: 'ok' });
    expectAcceptedTraffic(
      records.filter((_, index) => index !== revokedAt),
      jkt,
    );

    // The token as a thief would find it in the store.
    const stored = await store.get('rt');
    const token = stored?.tokens.revealAccessToken() as string;
    expect(token).toBe((await cred.getToken()).reveal());
    expect(stored?.dpopKey?.thumbprint).toBe(jkt);
    await expectStolenTokenRefused(token, records.at(-1)?.proof as string, rs.nonce);

    const secrets = [
      op.clients.dpop.clientSecret,
      minted.refreshToken,
      minted.accessToken,
      ...issuedTokens(op, tokensFrom, op.clients.dpop.clientId),
      ...proofs,
      ...records.flatMap((r) => r.proof ?? []),
    ];
    expect(findLeaks([...observed, cred, cred.status()], secrets)).toEqual([]);
  });
});

/** Redeems a refresh token at the token endpoint as the test, with `proof` if given. */
async function redeemAsThief(
  op: OidcServer,
  token: string,
  proof: string | undefined,
): Promise<{ status: number; error: unknown }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (proof !== undefined) headers['dpop'] = proof;
  const res = await fetch(op.tokenEndpoint, {
    method: 'POST',
    headers,
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: token,
      client_id: DEVICE_CLIENT_ID,
    }),
  });
  const json = (await res.json()) as Record<string, unknown>;
  return { status: res.status, error: json['error'] };
}

describe('DPoP on every hop and through every client', () => {
  it('follows a same-origin redirect with a fresh proof for the new URL, and sends nothing DPoP to another origin', async () => {
    const op = server();
    rs.setNonceRequired(true);
    const { cred } = setup('hops', dpopClientCredentials(op));
    const rsFrom = rs.requests.length;
    const landing = encodeURIComponent('/v1/landing?x=1');
    const res = await cred.fetch(`${rs.origin}/redirect?to=${landing}`, {
      method: 'POST',
      body: 'payload',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: '/v1/landing?x=1', body: 'payload' });
    const records = rs.requests.slice(rsFrom);
    expect(records.map((r) => `${r.method} ${r.url} ${r.reason}`)).toEqual([
      `POST /redirect?to=${landing} use-dpop-nonce`,
      `POST /redirect?to=${landing} ok`,
      'POST /v1/landing?x=1 ok',
    ]);
    const jkt = cred.status().dpop?.thumbprint as string;
    expectAcceptedTraffic(records, jkt);

    // To another origin (allowed for this credential, but not the request's own): no token,
    // no proof.
    const opFrom = op.resource.requests.length;
    const away = encodeURIComponent(`${op.resource.origin}/v1/me`);
    const elsewhere = await cred.fetch(`${rs.origin}/redirect?to=${away}`);
    expect(elsewhere.status).toBe(401);
    const arrived = op.resource.requests.slice(opFrom);
    expect(arrived).toHaveLength(1);
    expect(arrived[0]?.headers.authorization).toBeUndefined();
    expect(arrived[0]?.headers['dpop']).toBeUndefined();
  });

  it('signs with an EdDSA key against both servers', async () => {
    const op = server();
    op.setDpopNonceRequired(true);
    rs.setNonceRequired(true);
    const asFrom = op.requests.length;
    const rsFrom = rs.requests.length;
    const { cred } = setup('eddsa', dpopClientCredentials(op), { algorithm: 'EdDSA' });
    expect((await cred.fetch(`${rs.origin}/v1/items`)).status).toBe(200);
    const jkt = cred.status().dpop?.thumbprint as string;
    expect(cred.status().dpop?.algorithm).toBe('EdDSA');
    await expectTokenProofs(op, asFrom, jkt, 'EdDSA');
    const records = rs.requests.slice(rsFrom);
    expectAcceptedTraffic(records, jkt);
    expect(records.every((r) => decodeProtectedHeader(r.proof as string).alg === 'EdDSA')).toBe(
      true,
    );
    expect(await op.findAccessToken((await cred.getToken()).reveal())).toMatchObject({ jkt });
  });

  it('works through the ky client', async () => {
    const op = server();
    rs.setNonceRequired(true);
    const rsFrom = rs.requests.length;
    const { cred } = setup('ky', dpopClientCredentials(op));
    const api = cred.ky({ prefix: `${rs.origin}/v1/` });
    expect(await api.get('items', { searchParams: { q: 'a b' } }).json()).toMatchObject({
      ok: true,
      path: '/v1/items?q=a+b',
    });
    expect(await api.post('items', { json: { name: 'x' } }).json()).toMatchObject({ ok: true });
    expectAcceptedTraffic(rs.requests.slice(rsFrom), cred.status().dpop?.thumbprint as string);
  });

  it('revokes a DPoP-bound credential at the server: its token is then refused', async () => {
    const op = server();
    const { cred } = setup('revoked', dpopClientCredentials(op));
    expect((await cred.fetch(`${rs.origin}/v1/items`)).status).toBe(200);
    const token = (await cred.getToken()).reveal();
    const first = cred.status().dpop?.thumbprint as string;
    expect(await op.findAccessToken(token)).toMatchObject({ jkt: first });
    const result = await cred.revoke();
    expect(result).toMatchObject({ outcome: 'revoked', revokedAtServer: true });
    expect(await op.findAccessToken(token)).toBeUndefined();
    expect(await op.introspect(token)).toMatchObject({ active: false });
    expect(cred.status().dpop).toBeUndefined();

    // Used again, it gets a new token bound to a new key.
    const before = (await op.introspect(token)) as { cnf?: { jkt?: string } };
    expect(before.cnf).toBeUndefined();
    expect((await cred.fetch(`${rs.origin}/v1/items`)).status).toBe(200);
    const next = (await cred.getToken()).reveal();
    const jkt = cred.status().dpop?.thumbprint as string;
    expect(jkt).not.toBe(first);
    expect(await op.findAccessToken(next)).toMatchObject({ jkt });
    expect(rs.requests.at(-1)).toMatchObject({ reason: 'ok', tokenJkt: jkt, proofJkt: jkt });
  });

  it('private_key_jwt: the nonce retry carries a fresh client assertion and a fresh proof', async () => {
    const op = server();
    op.setDpopNonceRequired(true);
    const asFrom = op.requests.length;
    const tokensFrom = op.tokenRequests.length;
    const { cred } = setup(
      'jwt',
      clientCredentials({
        issuer: op.issuer,
        clientId: op.clients.jwt.clientId,
        clientAuth: 'private_key_jwt',
        privateKey: op.clients.jwt.privateKey,
      }),
    );
    expect((await cred.fetch(`${rs.origin}/v1/items`)).status).toBe(200);
    expect(op.tokenRequests.slice(tokensFrom).map((r) => r.error ?? r.status)).toEqual([
      'use_dpop_nonce',
      200,
    ]);
    const sent = tokenProofs(op, asFrom);
    const assertions = sent.map(
      ({ request }) => new URLSearchParams(request.body).get('client_assertion') as string,
    );
    expect(new Set(assertions.map((a) => decodeJwt(a).jti)).size).toBe(2);
    await expectTokenProofs(op, asFrom, cred.status().dpop?.thumbprint as string);
  });

  it('the authorization server refuses a replayed token-request proof', async () => {
    const op = server();
    const asFrom = op.requests.length;
    const { cred } = setup('as-replay', dpopClientCredentials(op));
    await cred.getToken();
    const proof = tokenProofs(op, asFrom).at(-1)?.proof as string;
    const secret = encodeURIComponent(op.clients.dpop.clientSecret).replace(/%20/g, '+');
    const basic = Buffer.from(`${op.clients.dpop.clientId}:${secret}`).toString('base64');
    const request = async (dpop: string) => {
      const res = await fetch(op.tokenEndpoint, {
        method: 'POST',
        headers: { dpop, accept: 'application/json', authorization: `Basic ${basic}` },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
      const json = (await res.json()) as Record<string, unknown>;
      return { status: res.status, error: json['error'], tokenType: json['token_type'] };
    };
    expect(await request(proof)).toMatchObject({ status: 400, error: 'invalid_grant' });
    // The same request with a fresh proof (of another key) succeeds: the replay was the fault.
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const { x, y } = await exportJWK(publicKey);
    const fresh = await new SignJWT({
      jti: crypto.randomUUID(),
      htm: 'POST',
      htu: op.tokenEndpoint,
      iat: Math.floor(Date.now() / 1000),
    })
      .setProtectedHeader({
        typ: 'dpop+jwt',
        alg: 'ES256',
        jwk: { kty: 'EC', crv: 'P-256', x: x as string, y: y as string },
      })
      .sign(privateKey);
    expect(await request(fresh)).toMatchObject({ status: 200, tokenType: 'DPoP' });
  });
});

describe('DPoP nonces of the resource server under concurrency', () => {
  // Requests sent together with the old nonce are all challenged; the first stores the new
  // nonce, and each must still get its one retry (judged by the nonce its own proof carried).
  it('parallel requests all challenged for a new nonce are each retried once and succeed', async () => {
    const op = server();
    rs.setNonceRequired(true);
    const { cred } = setup('parallel', dpopClientCredentials(op));
    expect((await cred.fetch(`${rs.origin}/v1/warm-up`)).status).toBe(200);
    rs.rotateNonce();
    const rsFrom = rs.requests.length;
    // All six are judged (and challenged) before any answer reaches the client.
    rs.gather(6);
    const responses = await Promise.all(
      Array.from({ length: 6 }, (_, i) => cred.fetch(`${rs.origin}/v1/items/${i}`)),
    );
    const records = rs.requests.slice(rsFrom);
    const summary = records.map((r) => `${r.url} ${r.reason}`);
    expect(
      responses.map((r) => r.status),
      summary.join('\n'),
    ).toEqual([200, 200, 200, 200, 200, 200]);
    // Interleaved, so judged per URL: one challenge, then one accepted retry, each.
    for (let i = 0; i < 6; i++) {
      const mine = records.filter((r) => r.url === `/v1/items/${i}`).map((r) => r.reason);
      expect(mine, `/v1/items/${i}`).toEqual(['use-dpop-nonce', 'ok']);
    }
  });
});

describe('DPoP for a public client: the refresh token is bound too', () => {
  it('device flow: tokens bound to the key through sign-in and rotations; a stolen refresh token is useless without it', async () => {
    const op = server();
    op.setDpopNonceRequired(true);
    rs.setNonceRequired(true);
    const asFrom = op.requests.length;
    const tokensFrom = op.tokenRequests.length;
    const rsFrom = rs.requests.length;
    const prompts: DeviceCodePrompt[] = [];
    const { cred, store, refreshes, observed } = setup(
      'device',
      deviceCode({
        issuer: op.issuer,
        clientId: DEVICE_CLIENT_ID,
        scope: 'openid offline_access',
        // The user approves before the first poll (which waits the 5 s interval).
        onPrompt: async (prompt) => {
          prompts.push(prompt);
          await approveDevice(prompt, { login: 'dpop-user' });
        },
      }),
    );

    expect((await cred.fetch(`${rs.origin}/v1/me`)).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      await cred.getToken({ forceRefresh: true });
      expect((await cred.fetch(`${rs.origin}/v1/me?i=${i}`)).status).toBe(200);
    }
    const jkt = cred.status().dpop?.thumbprint as string;
    const records = op.tokenRequests.slice(tokensFrom);
    const signIn = records.filter((r) => r.grantType === DEVICE_GRANT && r.status === 200);
    const chain = records.filter((r) => r.grantType === 'refresh_token' && r.status === 200);
    expect(signIn).toHaveLength(1);
    expect(chain).toHaveLength(2);
    expect(chain[0]?.sentRefreshToken).toBe(signIn[0]?.issuedRefreshToken);
    expect(chain[1]?.sentRefreshToken).toBe(chain[0]?.issuedRefreshToken);
    expect(records.every((r) => r.status === 200 || r.error === 'use_dpop_nonce')).toBe(true);
    expect(refreshes.map((e) => e.rotated)).toEqual([false, true, true]);
    const proofs = await expectTokenProofs(op, asFrom, jkt);
    const accessTokens = [...signIn, ...chain].map((r) => r.issuedAccessToken as string);
    for (const token of accessTokens) {
      expect(await op.findAccessToken(token)).toMatchObject({ jkt, clientId: DEVICE_CLIENT_ID });
    }
    const rsRecords = rs.requests.slice(rsFrom);
    expectAcceptedTraffic(rsRecords, jkt);

    // Stolen from the store: the refresh token needs a proof of the credential's key.
    const stored = await store.get('device');
    const stolen = stored?.tokens.revealRefreshToken() as string;
    expect(stolen).toBe(chain[1]?.issuedRefreshToken);
    expect(await redeemAsThief(op, stolen, undefined)).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const { x, y } = await exportJWK(publicKey);
    const thiefJwt = (nonce: string | undefined) =>
      new SignJWT({
        jti: crypto.randomUUID(),
        htm: 'POST',
        htu: op.tokenEndpoint,
        iat: Math.floor(Date.now() / 1000),
        ...(nonce === undefined ? {} : { nonce }),
      })
        .setProtectedHeader({
          typ: 'dpop+jwt',
          alg: 'ES256',
          jwk: { kty: 'EC', crv: 'P-256', x: x as string, y: y as string },
        })
        .sign(privateKey);
    // The thief learns the server's nonce the way any client does, then tries their own key.
    const nonce = await fetch(op.tokenEndpoint, {
      method: 'POST',
      headers: { dpop: await thiefJwt(undefined) },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: stolen,
        client_id: DEVICE_CLIENT_ID,
      }),
    }).then(async (res) => {
      await res.arrayBuffer();
      return res.headers.get('dpop-nonce') ?? undefined;
    });
    expect(nonce).toBeTruthy();
    expect(await redeemAsThief(op, stolen, await thiefJwt(nonce))).toEqual({
      status: 400,
      error: 'invalid_grant',
    });
    // A proof the credential sent to the token endpoint, replayed: refused too.
    expect(await redeemAsThief(op, stolen, proofs.at(-1))).toMatchObject({ status: 400 });
    // The failed thefts consumed nothing: the credential rotates on.
    await cred.getToken({ forceRefresh: true });
    const last = op.tokenRequests
      .filter((r) => r.grantType === 'refresh_token' && r.status === 200)
      .at(-1);
    expect(last?.sentRefreshToken).toBe(stolen);
    expect((await cred.fetch(`${rs.origin}/v1/me`)).status).toBe(200);

    // And the stolen access token is refused by the resource server.
    const token = (await cred.getToken()).reveal();
    await expectStolenTokenRefused(token, rs.requests.at(-1)?.proof as string, rs.nonce);

    expect(prompts).toHaveLength(1);
    const secrets = [
      ...issuedTokens(op, tokensFrom, DEVICE_CLIENT_ID),
      ...proofs,
      ...rs.requests.slice(rsFrom).flatMap((r) => r.proof ?? []),
    ];
    expect(findLeaks([...observed, cred, cred.status()], secrets)).toEqual([]);
  }, 30_000);
});

describe('DPoP where the authorization server does not bind', () => {
  it('fails a DPoP-bound credential with ERR_INVALID_RESPONSE on a Bearer answer, unless allowBearer', async () => {
    const op = server();
    op.setDpopIgnored(true);
    const basic = () =>
      clientCredentials({
        issuer: op.issuer,
        clientId: op.clients.basic.clientId,
        clientSecret: op.clients.basic.clientSecret,
      });
    const tokensFrom = op.tokenRequests.length;
    const strict = setup('strict', basic());
    const error = await strict.cred.getToken().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: 'TokenWardenError', code: 'ERR_INVALID_RESPONSE' });
    const refused = await strict.cred
      .fetch(`${rs.origin}/v1/items`)
      .catch((caught: unknown) => caught);
    expect(refused).toMatchObject({ code: 'ERR_INVALID_RESPONSE' });
    // The server did answer 200 with a Bearer token, which was not used.
    const answered = op.tokenRequests.slice(tokensFrom);
    expect(answered.length).toBeGreaterThan(0);
    expect(answered.every((r) => r.status === 200)).toBe(true);
    const bearer = answered.map((r) => r.issuedAccessToken as string);
    expect(await op.findAccessToken(bearer[0] as string)).toMatchObject({ jkt: undefined });
    expect(rs.requests.some((r) => bearer.includes(r.token as string))).toBe(false);
    expect(
      op.resource.requests.some((r) => bearer.some((t) => r.headers.authorization?.includes(t))),
    ).toBe(false);

    const lax = setup('lax', basic(), { allowBearer: true });
    const res = await lax.cred.fetch(`${op.resource.origin}/v1/me`);
    expect(res.status).toBe(200);
    const sent = op.resource.requests.at(-1);
    expect(sent?.headers.authorization).toMatch(/^Bearer /);
    expect(sent?.headers['dpop']).toBeUndefined();

    const secrets = [
      op.clients.basic.clientSecret,
      ...issuedTokens(op, tokensFrom, op.clients.basic.clientId),
    ];
    expect(findLeaks([...strict.observed, ...lax.observed, error, refused], secrets)).toEqual([]);
  });
});
