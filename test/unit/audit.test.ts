// warden.inventory() and warden.audit(): registered credentials and orphaned records, each audit
// kind on its scenario, acting on findings with revoke: true, and no token in any output.
import { createHash } from 'node:crypto';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuditFinding,
  apiKey,
  clientCredentials,
  createWarden,
  customSource,
  InvalidArgumentError,
  type RecordMeta,
  refreshToken,
  sealedStore,
  TokenSet,
  type TokenStore,
  type Warden,
} from '../../src/index.js';
import { type MapBackend, mapBackend } from '../support/map-backend.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const KEY = new Uint8Array(32).fill(7);
const AUTH = 'https://auth.example.test';
const TOKEN = `${AUTH}/oauth/token`;
const REVOKE = `${AUTH}/oauth/revoke`;
const API = 'https://api.example.test';
const DAY = 86_400_000;
const SECRETS = Object.values(SENTINEL);

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

let warden: Warden | undefined;
let backend: MapBackend;
let store: TokenStore;
beforeEach(() => {
  backend = mapBackend();
  store = sealedStore(backend, KEY);
});
afterEach(async () => {
  await warden?.close();
  warden = undefined;
});

function sha16(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

/** Stores a record as if written by an earlier process. */
async function seed(
  id: string,
  token: string,
  times: { issuedAt: number; expiresAt: number; scope?: string[]; refreshToken?: string },
  meta: Partial<RecordMeta> = {},
): Promise<void> {
  await store.set(id, {
    tokens: new TokenSet({ accessToken: token, ...times }),
    meta: {
      createdAt: times.issuedAt,
      refreshedAt: times.issuedAt,
      uses: 0,
      refreshes: 1,
      ...meta,
    },
  });
}

/** A source that must never be asked: the seeded record is still valid. */
function idle() {
  return customSource(async () => {
    throw new Error('the seeded token should have been used');
  });
}

function pairs(findings: AuditFinding[]): string[] {
  return findings.map((f) => `${f.id}:${f.kind}`).sort();
}

describe('warden.inventory()', () => {
  it('lists registered credentials and orphaned records with metadata and a fingerprint, never a token', async () => {
    server.use(
      http.post(TOKEN, () =>
        HttpResponse.json({
          access_token: SENTINEL.accessToken,
          token_type: 'Bearer',
          expires_in: 3600,
          scope: 'invoices:read',
        }),
      ),
      http.get(`${API}/*`, () => HttpResponse.json({ ok: true })),
    );
    const now = Date.now();
    await seed(
      'left-behind',
      SENTINEL.apiKey,
      { issuedAt: now - 10 * DAY, expiresAt: now + DAY, refreshToken: SENTINEL.refreshToken },
      { createdAt: now - 20 * DAY, lastUsedAt: now - 5 * DAY, uses: 42, refreshes: 3 },
    );
    warden = createWarden({ store });
    const billing = warden.register('billing', {
      source: clientCredentials({
        tokenEndpoint: TOKEN,
        clientId: 'svc',
        clientSecret: SENTINEL.clientSecret,
        scope: ['invoices:read'],
      }),
      origins: [API],
    });
    expect((await billing.fetch(`${API}/ping`)).status).toBe(200);

    const inventory = await warden.inventory();
    expect(inventory.map((e) => e.id)).toEqual(['billing', 'left-behind']);
    const [mine, orphan] = inventory;
    expect(mine).toMatchObject({
      id: 'billing',
      registered: true,
      state: 'valid',
      sourceKind: 'client_credentials',
      clientId: 'svc',
      requestedScope: ['invoices:read'],
      grantedScope: ['invoices:read'],
      uses: 1,
      refreshes: 1,
      hasRefreshToken: false,
      fingerprint: sha16(SENTINEL.accessToken),
    });
    expect(mine?.issuedAt).toBeGreaterThanOrEqual(now);
    expect(mine?.expiresAt).toBeGreaterThan(now);
    expect(mine?.lastUsedAt).toBeGreaterThanOrEqual(now);
    expect(orphan).toEqual({
      id: 'left-behind',
      registered: false,
      state: 'orphaned',
      issuedAt: now - 10 * DAY,
      expiresAt: now + DAY,
      createdAt: now - 20 * DAY,
      lastRefreshedAt: now - 10 * DAY,
      lastUsedAt: now - 5 * DAY,
      uses: 42,
      refreshes: 3,
      hasRefreshToken: true,
      fingerprint: sha16(SENTINEL.apiKey),
    });
    expect(mine?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(findLeaks([inventory], SECRETS)).toEqual([]);
  });

  it('lists a tampered record as unreadable instead of failing', async () => {
    const now = Date.now();
    await seed('good', 'tok-good-123', { issuedAt: now, expiresAt: now + DAY });
    backend.records.set('broken', 'not.a.sealed.record.at-all');
    warden = createWarden({ store });
    const tampered: string[] = [];
    warden.on('tamper', ({ id }) => tampered.push(id));
    const inventory = await warden.inventory();
    const byId = Object.fromEntries(inventory.map((e) => [e.id, e]));
    expect(byId.good?.state).toBe('orphaned');
    expect(byId.broken).toEqual({
      id: 'broken',
      registered: false,
      state: 'unreadable',
      hasRefreshToken: false,
    });
    expect(tampered).toEqual(['broken']);
  });

  it('lists a record whose read throws as unreadable with the error code', async () => {
    const now = Date.now();
    await seed('svc', 'tok-svc-123', { issuedAt: now, expiresAt: now + DAY });
    await seed('other', 'tok-other-123', { issuedAt: now, expiresAt: now + DAY });
    const failing: TokenStore = {
      ...store,
      kind: 'failing',
      async get(id) {
        if (id === 'svc') {
          const { TokenWardenError } = await import('../../src/errors.js');
          throw new TokenWardenError('ERR_KEY_UNAVAILABLE', 'no key');
        }
        return store.get(id);
      },
    };
    warden = createWarden({ store: failing });
    warden.register('svc', { source: idle(), origins: [API] });
    const inventory = await warden.inventory();
    expect(inventory.map((e) => [e.id, e.state, e.error])).toEqual([
      ['svc', 'unreadable', 'ERR_KEY_UNAVAILABLE'],
      ['other', 'orphaned', undefined],
    ]);
  });
});

describe('warden.audit()', () => {
  it('reports each kind on its scenario and nothing for a healthy credential', async () => {
    server.use(
      http.post(TOKEN, () => HttpResponse.json({ error: 'invalid_grant' }, { status: 400 })),
    );
    const now = Date.now();
    const recent = { issuedAt: now - DAY, expiresAt: now + DAY };
    await seed('healthy', 'tok-healthy-1', recent, { lastUsedAt: now - DAY });
    await seed('idle', 'tok-idle-1', recent, {
      createdAt: now - 60 * DAY,
      lastUsedAt: now - 40 * DAY,
    });
    await seed('never-used', 'tok-never-1', recent, { createdAt: now - 40 * DAY });
    await seed(
      'old-key',
      SENTINEL.apiKey,
      { issuedAt: now - 100 * DAY, expiresAt: now + 365 * DAY },
      { lastUsedAt: now - DAY },
    );
    await seed(
      'wide',
      'tok-wide-1',
      { ...recent, scope: ['reports:read', 'admin'] },
      { lastUsedAt: now - DAY },
    );
    await seed(
      'soon',
      'tok-soon-1',
      { issuedAt: now - 60 * DAY, expiresAt: now + 3 * DAY },
      { lastUsedAt: now - DAY },
    );
    await seed('stray', 'tok-stray-1', recent, { lastUsedAt: now - DAY });
    warden = createWarden({ store });
    for (const id of ['healthy', 'idle', 'never-used', 'soon']) {
      warden.register(id, { source: idle(), origins: [API] });
    }
    warden.register('old-key', { source: apiKey({ key: SENTINEL.apiKey }), origins: [API] });
    warden.register('wide', {
      source: clientCredentials({
        tokenEndpoint: TOKEN,
        clientId: 'svc',
        clientSecret: SENTINEL.clientSecret,
        scope: ['reports:read'],
      }),
      origins: [API],
    });
    const user = warden.register('user', {
      source: refreshToken({
        tokenEndpoint: TOKEN,
        clientId: 'spa',
        refreshToken: SENTINEL.refreshToken,
      }),
      origins: [API],
    });
    await expect(user.getToken()).rejects.toThrow();
    expect(user.status().state).toBe('reauth-required');

    const findings = await warden.audit({ now });
    expect(pairs(findings)).toEqual([
      'idle:unused',
      'never-used:unused',
      'old-key:over-age',
      'soon:expiring',
      'stray:orphaned',
      'user:reauth-required',
      'wide:over-scoped',
    ]);
    const get = (id: string) => findings.find((f) => f.id === id);
    expect(get('idle')).toMatchObject({
      idleMs: 40 * DAY,
      lastUsedAt: now - 40 * DAY,
      action: 'none',
    });
    expect(get('never-used')).toMatchObject({ idleMs: 40 * DAY, createdAt: now - 40 * DAY });
    expect(get('old-key')).toMatchObject({ ageMs: 100 * DAY, fingerprint: sha16(SENTINEL.apiKey) });
    expect(get('wide')).toMatchObject({
      requestedScope: ['reports:read'],
      grantedScope: ['reports:read', 'admin'],
      extraScope: ['admin'],
    });
    expect(get('soon')).toMatchObject({ expiresAt: now + 3 * DAY });
    expect(get('stray')).toMatchObject({ registered: false, state: 'orphaned' });
    expect(findLeaks([findings, await warden.inventory()], SECRETS)).toEqual([]);

    // Thresholds move the findings: nothing is idle for 60 days, over 120 days old or expiring in 12 hours.
    const relaxed = await warden.audit({
      now,
      idleFor: '61d',
      maxAge: '120d',
      expiringWithin: '12h',
    });
    expect(pairs(relaxed)).toEqual(['stray:orphaned', 'user:reauth-required', 'wide:over-scoped']);
    // And time: 50 days later the healthy credential is idle too.
    const later = await warden.audit({ now: new Date(now + 50 * DAY) });
    expect(pairs(later)).toContain('healthy:unused');
  });

  it('does not report short-lived access tokens as expiring', async () => {
    const now = Date.now();
    await seed(
      'svc',
      'tok-svc-1',
      { issuedAt: now - 60_000, expiresAt: now + 60_000 },
      { lastUsedAt: now },
    );
    warden = createWarden({ store });
    warden.register('svc', { source: idle(), origins: [API] });
    expect(await warden.audit({ now })).toEqual([]);
  });

  it('reports a credential registered long ago and never used as unused', async () => {
    warden = createWarden({ store });
    warden.register('fresh', { source: idle(), origins: [API] });
    expect(await warden.audit()).toEqual([]);
    const later = await warden.audit({ now: Date.now() + 31 * DAY });
    expect(pairs(later)).toEqual(['fresh:unused']);
  });

  it('rejects malformed thresholds', async () => {
    warden = createWarden({ store });
    await expect(warden.audit({ idleFor: 'soon' as never })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(warden.audit({ now: Number.NaN })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('with revoke: true, revokes unused credentials, deletes orphans and says what it did', async () => {
    const revoked: string[] = [];
    server.use(
      http.post(REVOKE, async ({ request }) => {
        revoked.push(new URLSearchParams(await request.text()).get('token') ?? '');
        return new HttpResponse(null, { status: 200 });
      }),
    );
    const now = Date.now();
    const recent = { issuedAt: now - DAY, expiresAt: now + DAY };
    await seed('orphan', SENTINEL.refreshToken, recent);
    await seed('idle-key', SENTINEL.apiKey, recent, {
      createdAt: now - 90 * DAY,
      lastUsedAt: now - 45 * DAY,
    });
    await seed('idle-oauth', SENTINEL.accessToken, recent, { lastUsedAt: now - 45 * DAY });
    await seed('busy', 'tok-busy-1', recent, { lastUsedAt: now - DAY });
    warden = createWarden({ store });
    const keyRevokes: number[] = [];
    warden.register('idle-key', {
      source: apiKey({ key: SENTINEL.apiKey, revoke: () => void keyRevokes.push(1) }),
      origins: [API],
    });
    warden.register('idle-oauth', {
      source: clientCredentials({
        tokenEndpoint: TOKEN,
        revocationEndpoint: REVOKE,
        clientId: 'svc',
        clientSecret: SENTINEL.clientSecret,
      }),
      origins: [API],
    });
    warden.register('busy', { source: idle(), origins: [API] });

    const findings = await warden.audit({ now, revoke: true });
    expect(findings.map((f) => [f.id, f.kind, f.action, f.revocation?.outcome])).toEqual([
      ['idle-key', 'unused', 'revoked', 'revoked'],
      ['idle-oauth', 'unused', 'revoked', 'revoked'],
      ['orphan', 'orphaned', 'deleted', undefined],
    ]);
    expect(keyRevokes).toEqual([1]);
    expect(revoked).toEqual([SENTINEL.accessToken]);
    expect([...backend.records.keys()]).toEqual(['busy']);
    expect(warden.get('idle-key')).toBeUndefined();
    expect(warden.get('idle-oauth')).toBeUndefined();
    expect(warden.credentials().map((c) => c.id)).toEqual(['busy']);
    expect(findLeaks([findings], SECRETS)).toEqual([]);
    expect(await warden.audit({ now, revoke: true })).toEqual([]);
  });

  it('with revoke: true, never rejects half-way when a revocation or delete fails', async () => {
    server.use(http.post(REVOKE, () => new HttpResponse('down', { status: 500 })));
    const now = Date.now();
    const recent = { issuedAt: now - DAY, expiresAt: now + DAY };
    await seed('orphan', 'tok-orphan-1', recent);
    await seed('idle', 'tok-idle-1', recent, { lastUsedAt: now - 45 * DAY });
    const flaky: TokenStore = {
      ...store,
      kind: 'flaky',
      async delete(id) {
        if (id === 'orphan') {
          const { TokenWardenError } = await import('../../src/errors.js');
          throw new TokenWardenError('ERR_STORE_UNAVAILABLE', 'backend down');
        }
        return store.delete(id);
      },
    };
    warden = createWarden({ store: flaky });
    warden.register('idle', {
      source: clientCredentials({
        tokenEndpoint: TOKEN,
        revocationEndpoint: REVOKE,
        clientId: 'svc',
        clientSecret: SENTINEL.clientSecret,
      }),
      origins: [API],
    });
    const findings = await warden.audit({ now, revoke: true, maxAttempts: 1 });
    expect(findings.map((f) => [f.id, f.action, f.error, f.revocation?.outcome])).toEqual([
      ['idle', 'revoked', undefined, 'failed'],
      ['orphan', 'none', 'ERR_STORE_UNAVAILABLE', undefined],
    ]);
    expect(findings[0]?.revocation?.wipedLocally).toBe(true);
    expect(backend.records.has('orphan')).toBe(true);
  });
});
