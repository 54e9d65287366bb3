// indexedDbStore in real Chromium, against the real oidc-provider fixture: what IndexedDB holds
// after a token is stored (nothing readable), the key (not extractable), reloads and browser
// restarts (no token request), a flipped byte (tamper, one fresh token) and connections that
// are closed or upgraded under the store. The harness is test/browser/harness.ts.
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserFixture,
  type BrowserSession,
  startBrowserFixture,
} from '../browser/harness.js';
import type { PageSetup } from '../browser/page.js';
import { type OidcServer, startOidcServer } from '../support/oidc-server.js';
import { findLeaks } from '../support/sentinel.js';

const CLIENT = 'browser-client';

let op: OidcServer;
let fixture: BrowserFixture;
let browser: BrowserSession;
/** The refresh token the app was first configured with; rotated out by the first refresh. */
let initial: string;

beforeAll(async () => {
  fixture = await startBrowserFixture();
  op = await startOidcServer({ browserClients: [{ clientId: CLIENT, origin: fixture.origin }] });
  browser = await fixture.launch();
}, 60_000);

afterAll(async () => {
  await fixture?.close();
  await op?.close();
});

function config(refreshToken: string): PageSetup {
  return { issuer: op.issuer, clientId: CLIENT, refreshToken, resource: op.resource.origin };
}

const setup = (refreshToken: string) =>
  browser.page.evaluate((c) => window.tw.setup(c), config(refreshToken));
const call = (path = '/me') => browser.page.evaluate((p) => window.tw.call(p), path);
const events = () => browser.page.evaluate(() => window.tw.events());

/** Every token the fixture issued to, or received from, the browser client. */
function issuedSecrets(): string[] {
  const secrets = new Set<string>();
  for (const r of op.tokenRequests) {
    if (r.clientId !== CLIENT) continue;
    for (const value of [r.issuedAccessToken, r.issuedRefreshToken, r.sentRefreshToken]) {
      if (value) secrets.add(value);
    }
  }
  return [...secrets];
}

/** Token-endpoint requests of the browser client from index `from` on. */
const tokenRequestsSince = (from: number) =>
  op.tokenRequests.slice(from).filter((r) => r.clientId === CLIENT);

/** The bearer tokens the resource server received for GET /me, in order. */
const bearers = () =>
  op.resource.requests
    .filter((r) => r.method === 'GET' && r.url === '/me')
    .map((r) => String(r.headers.authorization ?? ''));

describe('indexedDbStore in Chromium', () => {
  it('stores only sealed records: no database of the origin holds a token in any encoding', async () => {
    const minted = await op.mintRefreshToken({ clientId: CLIENT });
    initial = minted.refreshToken;
    const from = op.tokenRequests.length;
    await setup(initial);
    expect(await call()).toEqual({ status: 200 });
    const refreshes = tokenRequestsSince(from);
    expect(refreshes.map((r) => [r.grantType, r.status])).toEqual([['refresh_token', 200]]);

    const { names, databases } = await browser.page.evaluate(() => window.tw.dump());
    expect(names).toEqual(['tokenwarden', 'tokenwarden-keys']);
    // The dump is not vacuous: it holds the sealed record and the key.
    const records = databases.find((db) => db.name === 'tokenwarden')?.stores;
    expect(records?.map((s) => s.name)).toEqual(['records']);
    const entry = records?.[0]?.entries[0];
    expect(entry?.key).toBe('api');
    // { v: version, s: sealed record }
    const sealed = String((entry?.value as { s?: unknown } | undefined)?.s);
    expect(entry?.value).toEqual({ v: expect.any(Number), s: sealed });
    expect(sealed.split('.')).toHaveLength(5);
    const header = decodeProtectedHeader(sealed);
    expect(header).toMatchObject({ alg: 'dir', enc: 'A256GCM', tw_slot: 'api' });
    const keyStores = databases.find((db) => db.name === 'tokenwarden-keys')?.stores;
    expect(JSON.stringify(keyStores)).toContain(
      '"CryptoKey":{"type":"secret","extractable":false,"algorithm":{"name":"AES-GCM","length":256}',
    );

    const secrets = issuedSecrets();
    expect(secrets.length).toBeGreaterThanOrEqual(4); // minted pair + refreshed pair
    expect(findLeaks([databases, JSON.stringify(databases)], secrets)).toEqual([]);
  });

  it('keeps its key non-extractable: exportKey rejects, yet the key opens the record', async () => {
    const report = await browser.page.evaluate(() => window.tw.keyReport());
    expect(report.keys).toHaveLength(1);
    expect(report.keys[0]).toEqual({
      kid: report.current,
      extractable: false,
      algorithm: { name: 'AES-GCM', length: 256 },
      usages: ['encrypt', 'decrypt'],
      exportRaw: 'InvalidAccessError',
      exportJwk: 'InvalidAccessError',
      opensRecord: true,
    });
  });

  it('reuses the stored token after a reload, without a token request', async () => {
    const from = op.tokenRequests.length;
    const before = bearers();
    await browser.reload();
    // The app still passes its original, rotated-out refresh token: the stored set wins.
    await setup(initial);
    expect(await call()).toEqual({ status: 200 });
    expect(tokenRequestsSince(from)).toEqual([]);
    expect(bearers().at(-1)).toBe(before.at(-1));
    expect((await events()).map((e) => e.event)).toEqual([]);
  });

  it('discards a record with a flipped byte: tamper event, one fresh token, API call succeeds', async () => {
    await browser.reload();
    await browser.page.evaluate(() => window.tw.flipRecord('api'));
    const stale = bearers().at(-1);
    // The stored (and now lost) set held the only valid refresh token: the app signs in again.
    const signIn = await op.mintRefreshToken({ clientId: CLIENT });
    const from = op.tokenRequests.length;
    const seen = op.resource.requests.length;
    await setup(signIn.refreshToken);
    expect(await call()).toEqual({ status: 200 });

    expect((await events()).map((e) => [e.event, e.payload])).toEqual([
      ['tamper', { id: 'api', store: 'indexeddb' }],
      ['refresh', expect.objectContaining({ id: 'api' })],
    ]);
    const requests = tokenRequestsSince(from);
    expect(requests.map((r) => [r.grantType, r.status])).toEqual([['refresh_token', 200]]);
    expect(requests[0]?.sentRefreshToken).toBe(signIn.refreshToken);
    // No request carried the token of the tampered record.
    const after = op.resource.requests.slice(seen).map((r) => r.headers.authorization);
    expect(after).not.toContain(stale);
    expect(after.at(-1)).toBe(`Bearer ${requests[0]?.issuedAccessToken}`);
  });

  it('survives connections closed under it and upgrades by another tab', async () => {
    const closed = await browser.page.evaluate(() => window.tw.closeConnections());
    expect(closed).toBe(2); // records and keys
    const from = op.tokenRequests.length;
    // A read and a write on connections the page closed without telling the store.
    expect(await browser.page.evaluate(() => window.tw.storeHas('api'))).toBe(true);
    await browser.page.evaluate(() => window.tw.forceRefresh());
    const forced = tokenRequestsSince(from);
    expect(forced.map((r) => [r.grantType, r.status])).toEqual([['refresh_token', 200]]);

    // Another tab upgrading each database is not blocked: the store gives way, then reopens.
    for (const name of ['tokenwarden', 'tokenwarden-keys']) {
      expect(await browser.page.evaluate((n) => window.tw.upgrade(n), name)).toBe(2);
    }
    expect(await browser.page.evaluate(() => window.tw.storeHas('api'))).toBe(true);
    expect(await call()).toEqual({ status: 200 });

    // The write after the closed connection landed: a reload uses the forced token.
    await browser.reload();
    await setup(initial);
    expect(await call()).toEqual({ status: 200 });
    expect(tokenRequestsSince(from)).toHaveLength(1);
    expect(bearers().at(-1)).toBe(`Bearer ${forced[0]?.issuedAccessToken}`);
  });

  it('reuses the stored token after a browser restart', async () => {
    const from = op.tokenRequests.length;
    const last = bearers().at(-1);
    await browser.close();
    browser = await fixture.launch();
    await setup(initial);
    expect(await call()).toEqual({ status: 200 });
    expect(tokenRequestsSince(from)).toEqual([]);
    expect(bearers().at(-1)).toBe(last);
  });

  it('leaked no token into what the page logged, emitted or printed', async () => {
    const observed = await browser.page.evaluate(async () => ({
      events: window.tw.events(),
      logs: window.tw.logs(),
      dump: await window.tw.dump(),
    }));
    const secrets = issuedSecrets();
    expect(findLeaks([observed, browser.console], secrets)).toEqual([]);
    expect(browser.console.filter((line) => line.startsWith('pageerror'))).toEqual([]);
    await browser.page.evaluate(() => window.tw.close());
  });
});
