// DPoP in real Chromium (RFC 9449): a credential registered with `dpop: true` over
// indexedDbStore() gets a non-extractable key pair, kept as CryptoKeys in the key database; the
// tabs of a profile share it, it survives a reload and a browser restart, and a token read off the
// wire is refused without it. The page (test/browser/dpop-page.ts) takes its tokens from a custom
// source that hands out tokens the test minted; the resource server here, on 127.0.0.1 with CORS
// for the page, verifies every proof with jose (signature under the embedded key, typ, alg, htm,
// htu, ath, iat window, jti replay, an optional nonce) and binds each token to the key of the
// first valid proof it arrives with. Its CORS lets the page read `DPoP-Nonce` and
// `WWW-Authenticate`: without the latter the page cannot see a nonce challenge (the last test
// pins what happens then). The harness is test/browser/harness.ts.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  EmbeddedJWK,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { BrowserContext, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DpopWindow, GivenToken } from '../browser/dpop-page.js';
import {
  type BrowserFixture,
  type BrowserSession,
  type BrowserTab,
  inWindow,
  openTab,
  startBrowserFixture,
} from '../browser/harness.js';
import { runExclusively } from '../support/exclusive.js';
import { listenOnLoopback } from '../support/loopback.js';

runExclusively();

const DATABASE = 'dpop';
const ALGORITHMS = ['ES256', 'EdDSA'];
/** How far a proof's `iat` may be from the server's clock, seconds. */
const IAT_WINDOW = 60;

type Reason =
  | 'ok'
  | 'no-token'
  | 'unknown-token'
  | 'not-dpop-scheme'
  | 'no-proof'
  | 'several-proofs'
  | 'bad-proof'
  | 'htm-mismatch'
  | 'htu-mismatch'
  | 'iat-out-of-window'
  | 'jti-replay'
  | 'use-dpop-nonce'
  | 'ath-mismatch'
  | 'jkt-mismatch';

/** One request to the resource server (preflights apart) and its verdict. */
interface Verdict {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  status: number;
  reason: Reason;
  scheme?: string;
  /** The token presented. Test data: a secret. */
  token?: string;
  /** The DPoP header as sent. Test data: a proof. */
  proof?: string;
  /** The RFC 7638 thumbprint of the proof's key, when its signature verified. */
  jkt?: string;
  claims?: JWTPayload;
}

interface ResourceServer {
  /** `http://127.0.0.1:<port>`, set once listening. */
  origin: string;
  readonly verdicts: Verdict[];
  /** CORS preflights received. */
  readonly preflights: { method: string; headers: string | undefined }[];
  /** The key thumbprint each token is bound to. */
  readonly bindings: Map<string, string>;
  /** Tokens the test minted: only these are active. */
  readonly minted: Set<string>;
  nonceRequired: boolean;
  nonce: string;
  /** Whether CORS lets the page read `WWW-Authenticate` (else only `DPoP-Nonce`). */
  exposeChallenge: boolean;
  close(): Promise<void>;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'ascii').digest('base64url');

/** A DPoP resource server on 127.0.0.1, with CORS for `pageOrigin`. Every path is protected. */
async function startResource(pageOrigin: string): Promise<ResourceServer> {
  const seenJti = new Set<string>();
  const corsHeaders = () => ({
    'access-control-allow-origin': pageOrigin,
    // The page reads the nonce, and the challenge that asks for it (see `exposeChallenge`).
    'access-control-expose-headers': state.exposeChallenge
      ? 'dpop-nonce, www-authenticate'
      : 'dpop-nonce',
    vary: 'origin',
  });
  const state: ResourceServer = {
    origin: '',
    verdicts: [],
    preflights: [],
    bindings: new Map(),
    minted: new Set(),
    nonceRequired: false,
    nonce: randomBytes(16).toString('base64url'),
    exposeChallenge: true,
    close: async () => {},
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      state.preflights.push({
        method: String(req.headers['access-control-request-method']),
        headers: req.headers['access-control-request-headers'],
      });
      res.writeHead(204, {
        ...corsHeaders(),
        'access-control-allow-methods': 'GET, POST, PUT, DELETE',
        'access-control-allow-headers': 'authorization, dpop',
        'access-control-max-age': '0',
      });
      res.end();
      return;
    }
    const verdict: Verdict = { method, url: req.url ?? '/', status: 0, reason: 'ok' };
    state.verdicts.push(verdict);
    const answer = (status: number, reason: Reason, headers: Record<string, string> = {}) => {
      verdict.status = status;
      verdict.reason = reason;
      res.writeHead(status, { ...corsHeaders(), 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(status === 200 ? { ok: true, jkt: verdict.jkt } : { reason }));
    };
    const reject = (reason: Reason, error: 'invalid_token' | 'invalid_dpop_proof') =>
      answer(401, reason, {
        'www-authenticate': `DPoP algs="${ALGORITHMS.join(' ')}", error="${error}"`,
      });

    const match = /^(\S+) (\S+)$/.exec(req.headers.authorization ?? '');
    if (!match) return answer(401, 'no-token', { 'www-authenticate': 'DPoP' });
    const [, scheme, token] = match as unknown as [string, string, string];
    verdict.scheme = scheme.toLowerCase();
    verdict.token = token;
    if (verdict.scheme !== 'dpop') return reject('not-dpop-scheme', 'invalid_token');
    const raw = req.headers.dpop;
    if (raw === undefined) return reject('no-proof', 'invalid_dpop_proof');
    if (Array.isArray(raw) || raw.includes(',')) {
      return reject('several-proofs', 'invalid_dpop_proof');
    }
    verdict.proof = raw;
    let payload: JWTPayload;
    try {
      const verified = await jwtVerify(raw, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ALGORITHMS,
      });
      payload = verified.payload;
      verdict.jkt = await calculateJwkThumbprint(verified.protectedHeader.jwk as JWK, 'sha256');
    } catch {
      return reject('bad-proof', 'invalid_dpop_proof');
    }
    verdict.claims = payload;
    if (typeof payload.jti !== 'string' || payload.jti.length < 16) {
      return reject('bad-proof', 'invalid_dpop_proof');
    }
    const replayed = seenJti.has(payload.jti);
    seenJti.add(payload.jti);
    if (payload['htm'] !== method) return reject('htm-mismatch', 'invalid_dpop_proof');
    const path = new URL(verdict.url, state.origin).pathname;
    if (payload['htu'] !== `${state.origin}${path}`) {
      return reject('htu-mismatch', 'invalid_dpop_proof');
    }
    if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > IAT_WINDOW) {
      return reject('iat-out-of-window', 'invalid_dpop_proof');
    }
    if (replayed) return reject('jti-replay', 'invalid_dpop_proof');
    if (state.nonceRequired && payload['nonce'] !== state.nonce) {
      return answer(401, 'use-dpop-nonce', {
        'www-authenticate': `DPoP algs="${ALGORITHMS.join(' ')}", error="use_dpop_nonce"`,
        'dpop-nonce': state.nonce,
      });
    }
    if (payload['ath'] !== sha256(token)) return reject('ath-mismatch', 'invalid_dpop_proof');
    if (!state.minted.has(token)) return reject('unknown-token', 'invalid_token');
    // Bound to the key of the first valid proof the token arrives with, as `cnf.jkt` would be.
    const bound = state.bindings.get(token) ?? verdict.jkt;
    state.bindings.set(token, bound);
    if (bound !== verdict.jkt) return reject('jkt-mismatch', 'invalid_token');
    answer(200, 'ok');
  };

  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      handle(req, res).catch((error: unknown) => {
        res.writeHead(500, { ...corsHeaders(), 'content-type': 'text/plain' });
        res.end(String(error));
      });
    });
  });
  const listening = await listenOnLoopback(server);
  state.origin = listening.origin;
  state.close = listening.close;
  return state;
}

let fixture: BrowserFixture;
let resource: ResourceServer;
let browser: BrowserSession;
let tabA: BrowserTab;
let tabB: BrowserTab;
/** Every URL any page of any browser session requested. */
const requestedUrls: string[] = [];
/** Every token minted, by label. */
const tokens = new Map<string, string>();

function recordRequests(context: BrowserContext): void {
  context.on('request', (request: Request) => requestedUrls.push(request.url()));
}

function mint(label: string): GivenToken {
  const token = `tw-dpop-${label}-${randomBytes(24).toString('base64url')}`;
  tokens.set(label, token);
  resource.minted.add(token);
  return { label, token, expiresIn: 3_600 };
}

function token(label: string): string {
  const value = tokens.get(label);
  if (value === undefined) throw new Error(`no token ${label}`);
  return value;
}

type Api = DpopWindow['tw'];

/** Runs `fn` against `window.tw` in a tab. `fn` travels as source text and must only use its arguments. */
const inTab = <T, A>(tab: BrowserTab, fn: (tw: Api, arg: A) => T, arg: A) =>
  inWindow(tab.page, fn, arg);

const setup = (tab: BrowserTab, name = DATABASE, algorithm?: 'ES256' | 'EdDSA') =>
  inTab(tab, (tw, config) => tw.setup(config), {
    resource: resource.origin,
    name,
    ...(algorithm ? { algorithm } : {}),
  });
const call = (tab: BrowserTab, path = '/data?page=1') => inTab(tab, (tw, p) => tw.call(p), path);
const thumbprintOf = async (tab: BrowserTab) =>
  (await inTab(tab, (tw) => tw.status(), null)).dpop?.thumbprint;
const verdictsSince = (from: number) => resource.verdicts.slice(from);
/** The verdicts as `[status, reason, jkt]`, for one readable comparison. */
const summary = (verdicts: Verdict[]) => verdicts.map((v) => [v.status, v.reason, v.jkt]);

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A proof by `key`, well-formed in every other respect, as an attacker would sign one. */
async function attackerProof(
  privateKey: CryptoKey,
  jwk: JWK,
  accessToken: string,
  url: string,
): Promise<string> {
  const htu = new URL(url);
  return new SignJWT({
    jti: randomBytes(16).toString('base64url'),
    htm: 'GET',
    htu: `${htu.origin}${htu.pathname}`,
    iat: Math.floor(Date.now() / 1000),
    ath: sha256(accessToken),
    ...(resource.nonceRequired ? { nonce: resource.nonce } : {}),
  })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
    .sign(privateKey);
}

/** The CryptoKeys of a dump (rendered as `{ CryptoKey: facts }` by the page). */
function cryptoKeysIn(value: unknown): { type: string; extractable: boolean; usages: string[] }[] {
  if (Array.isArray(value)) return value.flatMap(cryptoKeysIn);
  if (typeof value !== 'object' || value === null) return [];
  const key = (value as { CryptoKey?: unknown }).CryptoKey;
  if (key !== undefined) return [key as { type: string; extractable: boolean; usages: string[] }];
  return Object.values(value).flatMap(cryptoKeysIn);
}

/** The first thumbprint the page's key had; later tests compare against it. */
let firstJkt = '';

beforeAll(async () => {
  fixture = await startBrowserFixture('dpop-page.ts');
  resource = await startResource(fixture.origin);
  browser = await fixture.launch();
  recordRequests(browser.context);
  tabA = browser;
}, 60_000);

afterAll(async () => {
  await fixture?.close();
  await resource?.close();
});

describe('DPoP in Chromium over indexedDbStore', () => {
  it('keeps a non-extractable key pair in IndexedDB, and that key signs the proofs', async () => {
    await setup(tabA);
    await inTab(tabA, (tw, given) => tw.giveTokens(given), [mint('t1')]);
    const from = resource.verdicts.length;
    expect(await call(tabA)).toMatchObject({ status: 200 });

    const status = await inTab(tabA, (tw) => tw.status(), null);
    expect(status.dpop).toEqual({ algorithm: 'ES256', thumbprint: expect.any(String) });
    const jkt = status.dpop?.thumbprint as string;
    firstJkt = jkt;
    // The key existed before the token was asked for: the source saw the same thumbprint.
    expect(await inTab(tabA, (tw) => tw.issued(), null)).toEqual([
      { label: 't1', thumbprint: jkt },
    ]);
    const seen = verdictsSince(from);
    expect(summary(seen)).toEqual([[200, 'ok', jkt]]);
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/data?page=1', token: token('t1') });
    // htu without the query, ath of the token, a fresh iat.
    expect(seen[0]?.claims).toMatchObject({
      htm: 'GET',
      htu: `${resource.origin}/data`,
      ath: sha256(token('t1')),
    });
    expect(resource.bindings.get(token('t1'))).toBe(jkt);
    // The browser asked before sending Authorization and DPoP to another origin.
    expect(resource.preflights.at(-1)).toEqual({ method: 'GET', headers: 'authorization,dpop' });

    const report = await inTab(tabA, (tw, id) => tw.keyReport(id), 'api');
    expect(report.entries).toEqual(['dpop:api', 'ring']);
    expect(report.stored).toEqual({
      isCryptoKeyPair: true,
      members: ['privateKey', 'publicKey'],
      privateKey: {
        type: 'private',
        extractable: false,
        algorithm: { name: 'ECDSA', namedCurve: 'P-256' },
        usages: ['sign'],
      },
      // WebCrypto always makes public keys extractable.
      publicKey: {
        type: 'public',
        extractable: true,
        algorithm: { name: 'ECDSA', namedCurve: 'P-256' },
        usages: ['verify'],
      },
      exportJwk: 'InvalidAccessError',
      exportPkcs8: 'InvalidAccessError',
      publicThumbprint: jkt,
      publicMembers: ['crv', 'ext', 'key_ops', 'kty', 'x', 'y'],
      signs: true,
    });

    // The sealed record names the key by its thumbprint only.
    expect(await inTab(tabA, (tw, id) => tw.sealedReport(id), 'api')).toEqual({
      dk: { a: 'ES256', t: jkt },
      hasPrivateMember: false,
    });
    // Nothing stored holds the token or a private JWK member, in any database of the origin.
    const dump = await inTab(tabA, (tw) => tw.dump(), null);
    expect(dump.map((db) => db.name)).toEqual([DATABASE, `${DATABASE}-keys`]);
    const raw = JSON.stringify(dump);
    expect(raw).toContain('"dpop:api"');
    expect(raw).not.toContain(token('t1'));
    expect(raw).not.toMatch(/"d"\s*:/);
    // Every private key stored anywhere is non-extractable.
    const keys = cryptoKeysIn(dump);
    expect(keys.filter((key) => key.type === 'private')).toEqual([
      expect.objectContaining({ extractable: false, usages: ['sign'] }),
    ]);
  }, 30_000);

  it('a second tab takes the stored token and key, and answers a nonce challenge once', async () => {
    tabB = await openTab(browser.context, fixture.origin);
    await setup(tabB);
    resource.nonceRequired = true;
    const from = resource.verdicts.length;
    expect(await call(tabB)).toMatchObject({ status: 200 });
    // No token from tab B's source: it took the stored record, and the key pair beside it.
    expect(await inTab(tabB, (tw) => tw.issued(), null)).toEqual([]);
    expect(await thumbprintOf(tabB)).toBe(firstJkt);
    const seen = verdictsSince(from);
    // One challenge, one retry with the server's nonce.
    expect(summary(seen)).toEqual([
      [401, 'use-dpop-nonce', firstJkt],
      [200, 'ok', firstJkt],
    ]);
    expect(seen.map((v) => v.token)).toEqual([token('t1'), token('t1')]);
    expect(seen[1]?.claims?.['nonce']).toBe(resource.nonce);
    expect(seen[0]?.claims?.['jti']).not.toBe(seen[1]?.claims?.['jti']);

    // Each tab learns the nonce on its own, once, and then goes straight through.
    const next = resource.verdicts.length;
    expect(await call(tabA)).toMatchObject({ status: 200 });
    expect(await call(tabA)).toMatchObject({ status: 200 });
    expect(await call(tabB)).toMatchObject({ status: 200 });
    expect(summary(verdictsSince(next))).toEqual([
      [401, 'use-dpop-nonce', firstJkt],
      [200, 'ok', firstJkt],
      [200, 'ok', firstJkt],
      [200, 'ok', firstJkt],
    ]);
    // A new nonce at the server: one more challenge, one more retry.
    resource.nonce = randomBytes(16).toString('base64url');
    const rotated = resource.verdicts.length;
    expect(await call(tabB)).toMatchObject({ status: 200 });
    expect(summary(verdictsSince(rotated))).toEqual([
      [401, 'use-dpop-nonce', firstJkt],
      [200, 'ok', firstJkt],
    ]);
    expect(await inTab(tabA, (tw) => tw.issued(), null)).toHaveLength(1);
  }, 30_000);

  it('a token read off the wire is refused without the key; the page goes on', async () => {
    const stolen = token('t1');
    const url = `${resource.origin}/data`;
    // The page's latest accepted proof, as captured on the wire.
    const captured = resource.verdicts.filter((v) => v.status === 200).at(-1)?.proof as string;
    const pageJwk = decodeProtectedHeader(captured).jwk as JWK;
    const attacker = await generateKeyPair('ES256');
    const attackerJwk = await exportJWK(attacker.publicKey);
    expect(await calculateJwkThumbprint(attackerJwk, 'sha256')).not.toBe(firstJkt);

    const attempts: [string, Record<string, string>][] = [
      ['no proof', { authorization: `DPoP ${stolen}` }],
      ['Bearer', { authorization: `Bearer ${stolen}` }],
      [
        'proof by a fresh attacker key',
        {
          authorization: `DPoP ${stolen}`,
          dpop: await attackerProof(attacker.privateKey, attackerJwk, stolen, url),
        },
      ],
      [
        "attacker's signature under the page's public key",
        {
          authorization: `DPoP ${stolen}`,
          dpop: await attackerProof(attacker.privateKey, pageJwk, stolen, url),
        },
      ],
      ['a captured proof replayed', { authorization: `DPoP ${stolen}`, dpop: captured }],
    ];
    const from = resource.verdicts.length;
    const statuses = [];
    for (const [what, headers] of attempts) {
      const response = await fetch(url, { headers });
      await response.arrayBuffer();
      statuses.push([what, response.status]);
    }
    expect(statuses).toEqual(attempts.map(([what]) => [what, 401]));
    expect(verdictsSince(from).map((v) => v.reason)).toEqual([
      'no-proof',
      'not-dpop-scheme',
      'jkt-mismatch',
      'bad-proof',
      'jti-replay',
    ]);
    // The binding did not move, and the page's own calls keep working.
    expect(resource.bindings.get(stolen)).toBe(firstJkt);
    const after = resource.verdicts.length;
    expect(await call(tabA)).toMatchObject({ status: 200 });
    expect(await call(tabB)).toMatchObject({ status: 200 });
    // (Tab A meets the nonce tab B learned last, after one challenge.)
    expect(summary(verdictsSince(after))).toEqual([
      [401, 'use-dpop-nonce', firstJkt],
      [200, 'ok', firstJkt],
      [200, 'ok', firstJkt],
    ]);
  }, 30_000);

  it('the same key signs after a reload and after a browser restart', async () => {
    await inTab(tabA, (tw) => tw.close(), null);
    await tabA.reload();
    await setup(tabA);
    let from = resource.verdicts.length;
    expect(await call(tabA)).toMatchObject({ status: 200 });
    expect(await inTab(tabA, (tw) => tw.issued(), null)).toEqual([]);
    expect(await thumbprintOf(tabA)).toBe(firstJkt);
    expect(summary(verdictsSince(from)).filter(([status]) => status === 200)).toEqual([
      [200, 'ok', firstJkt],
    ]);

    await browser.close();
    browser = await fixture.launch();
    recordRequests(browser.context);
    tabA = browser;
    await setup(tabA);
    from = resource.verdicts.length;
    expect(await call(tabA)).toMatchObject({ status: 200 });
    expect(await inTab(tabA, (tw) => tw.issued(), null)).toEqual([]);
    expect(await thumbprintOf(tabA)).toBe(firstJkt);
    // A fresh page learns the nonce again: one challenge, one retry, both with the same key.
    expect(summary(verdictsSince(from))).toEqual([
      [401, 'use-dpop-nonce', firstJkt],
      [200, 'ok', firstJkt],
    ]);
    expect(verdictsSince(from).map((v) => v.token)).toEqual([token('t1'), token('t1')]);
    const report = await inTab(tabA, (tw, id) => tw.keyReport(id), 'api');
    expect(report.stored).toMatchObject({
      privateKey: { extractable: false },
      exportJwk: 'InvalidAccessError',
      exportPkcs8: 'InvalidAccessError',
      publicThumbprint: firstJkt,
    });
  }, 60_000);

  it('forget() removes the key; the next token is bound to a new key, in every tab', async () => {
    tabB = await openTab(browser.context, fixture.origin);
    await setup(tabB);
    expect(await call(tabB)).toMatchObject({ status: 200 });
    expect(await thumbprintOf(tabB)).toBe(firstJkt);

    await inTab(tabA, (tw) => tw.forget(), null);
    const report = await inTab(tabA, (tw, id) => tw.keyReport(id), 'api');
    expect(report).toEqual({ entries: ['ring'] });
    expect(await inTab(tabA, (tw, id) => tw.sealedReport(id), 'api')).toBeUndefined();
    expect(await thumbprintOf(tabA)).toBeUndefined();
    // Tab B hears of the sign-out and drops the token and the key too.
    await waitFor('tab B to drop the key', async () => (await thumbprintOf(tabB)) === undefined);

    await inTab(tabA, (tw, given) => tw.giveTokens(given), [mint('t2')]);
    const from = resource.verdicts.length;
    expect(await call(tabA)).toMatchObject({ status: 200 });
    const newJkt = (await thumbprintOf(tabA)) as string;
    expect(newJkt).toEqual(expect.any(String));
    expect(newJkt).not.toBe(firstJkt);
    expect(await inTab(tabA, (tw) => tw.issued(), null)).toEqual([
      { label: 't2', thumbprint: newJkt },
    ]);
    expect(summary(verdictsSince(from)).filter(([status]) => status === 200)).toEqual([
      [200, 'ok', newJkt],
    ]);
    expect(resource.bindings.get(token('t2'))).toBe(newJkt);
    const stored = await inTab(tabA, (tw, id) => tw.keyReport(id), 'api');
    expect(stored.entries).toEqual(['dpop:api', 'ring']);
    expect(stored.stored).toMatchObject({
      privateKey: { extractable: false },
      exportJwk: 'InvalidAccessError',
      exportPkcs8: 'InvalidAccessError',
      publicThumbprint: newJkt,
    });

    // Tab B takes the new token and its new key over without asking its source.
    await waitFor('tab B to take the new key', async () => (await thumbprintOf(tabB)) === newJkt);
    const next = resource.verdicts.length;
    expect(await call(tabB)).toMatchObject({ status: 200 });
    expect(await inTab(tabB, (tw) => tw.issued(), null)).toEqual([]);
    expect(verdictsSince(next).map((v) => [v.status, v.token, v.jkt])).toEqual([
      [200, token('t2'), newJkt],
    ]);
    // The old token is still bound to the old key, which no tab holds any more.
    expect(resource.bindings.get(token('t1'))).toBe(firstJkt);
    const raw = JSON.stringify(await inTab(tabB, (tw) => tw.dump(), null));
    for (const value of tokens.values()) expect(raw).not.toContain(value);
    expect(raw).not.toMatch(/"d"\s*:/);
  }, 30_000);

  it('two tabs starting at once on an empty database ask for one token and share one key', async () => {
    const name = 'dpop-race';
    await Promise.all([setup(tabA, name), setup(tabB, name)]);
    await inTab(tabA, (tw, given) => tw.giveTokens(given), [mint('race-a')]);
    await inTab(tabB, (tw, given) => tw.giveTokens(given), [mint('race-b')]);
    const from = resource.verdicts.length;
    const results = await Promise.all([call(tabA), call(tabB)]);
    expect(results).toEqual([
      expect.objectContaining({ status: 200 }),
      expect.objectContaining({ status: 200 }),
    ]);
    const issued = [
      ...(await inTab(tabA, (tw) => tw.issued(), null)),
      ...(await inTab(tabB, (tw) => tw.issued(), null)),
    ];
    expect(issued).toHaveLength(1);
    const [jktA, jktB] = [await thumbprintOf(tabA), await thumbprintOf(tabB)];
    expect(jktA).toBe(jktB);
    expect(issued[0]?.thumbprint).toBe(jktA);
    const ok = verdictsSince(from).filter((v) => v.status === 200);
    expect(ok.map((v) => [v.token, v.jkt])).toEqual([
      [token(issued[0]?.label as string), jktA],
      [token(issued[0]?.label as string), jktA],
    ]);
    const report = await inTab(tabB, (tw, id) => tw.keyReport(id), 'api');
    expect(report.stored).toMatchObject({
      privateKey: { extractable: false },
      publicThumbprint: jktA,
    });
  }, 30_000);

  it('an EdDSA key is kept the same way', async () => {
    await setup(tabA, 'dpop-ed25519', 'EdDSA');
    await inTab(tabA, (tw, given) => tw.giveTokens(given), [mint('ed')]);
    const from = resource.verdicts.length;
    expect(await call(tabA)).toMatchObject({ status: 200 });
    const status = await inTab(tabA, (tw) => tw.status(), null);
    expect(status.dpop).toEqual({ algorithm: 'EdDSA', thumbprint: expect.any(String) });
    const jkt = status.dpop?.thumbprint;
    const ok = verdictsSince(from).filter((v) => v.status === 200);
    expect(ok.map((v) => [v.token, v.jkt])).toEqual([[token('ed'), jkt]]);
    expect(decodeProtectedHeader(ok[0]?.proof as string)).toMatchObject({
      alg: 'EdDSA',
      typ: 'dpop+jwt',
    });
    const report = await inTab(tabA, (tw, id) => tw.keyReport(id), 'api');
    expect(report.stored).toMatchObject({
      privateKey: { type: 'private', extractable: false, algorithm: { name: 'Ed25519' } },
      exportJwk: 'InvalidAccessError',
      exportPkcs8: 'InvalidAccessError',
      publicThumbprint: jkt,
      signs: true,
    });
    expect(await inTab(tabA, (tw, id) => tw.sealedReport(id), 'api')).toEqual({
      dk: { a: 'EdDSA', t: jkt },
      hasPrivateMember: false,
    });
  }, 30_000);

  it('no token or proof ever appeared in a URL the browser requested', async () => {
    const toResource = requestedUrls.filter((url) => url.startsWith(resource.origin));
    expect(toResource.length).toBeGreaterThan(10);
    const secrets = [
      ...tokens.values(),
      ...resource.verdicts.flatMap((v) => (v.proof ? [v.proof] : [])),
    ];
    for (const url of requestedUrls) {
      for (const secret of secrets) {
        expect(url).not.toContain(secret);
        expect(url).not.toContain(encodeURIComponent(secret));
        // A proof's signature part alone would be a leak as well.
        expect(url).not.toContain(secret.split('.').at(-1) as string);
      }
    }
    const errors = [...tabA.console, ...tabB.console].filter((line) =>
      line.startsWith('pageerror'),
    );
    expect(errors).toEqual([]);
  });

  // A resource server whose CORS exposes `DPoP-Nonce` but not `WWW-Authenticate`: the page sees
  // a 401 with a new nonce and no challenge. The transport takes it for the nonce challenge and
  // retries once with the learned nonce, keeping the token (no token request).
  it('retries once with a new nonce even when CORS hides WWW-Authenticate', async () => {
    resource.exposeChallenge = false;
    resource.nonce = randomBytes(16).toString('base64url');
    const from = resource.verdicts.length;
    const result = await call(tabA);
    const issued = await inTab(tabA, (tw) => tw.issued(), null);
    resource.exposeChallenge = true;
    expect(issued.map((issue) => issue.label)).toEqual(['ed']);
    expect(summary(verdictsSince(from)).map(([status, reason]) => [status, reason])).toEqual([
      [401, 'use-dpop-nonce'],
      [200, 'ok'],
    ]);
    expect(result).toMatchObject({ status: 200 });
  });
});
