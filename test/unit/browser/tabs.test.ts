// Several wardens, each on its own indexedDbStore over one database, stand for the tabs of one
// origin (fake-indexeddb, Node's BroadcastChannel; Web Locks from a fake LockManager, or missing
// so that the lease lock in IndexedDB is used). The token endpoint rotates refresh tokens and
// revokes the grant on reuse, like a real server. Real Chromium and a real server:
// test/integration/browser-tabs.test.ts.
import 'fake-indexeddb/auto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { indexedDbStore } from '../../../src/browser/index.js';
import {
  type Credential,
  createWarden,
  type RefreshEvent,
  refreshToken,
  type Warden,
} from '../../../src/index.js';
import type { TokenStore } from '../../../src/stores/types.js';
import { rotatingServer } from '../../support/rotating-server.js';
import { freshIndexedDb, rawGet } from './idb.js';
import { fakeLocks, stubNavigatorLocks } from './locks.js';

const AUTH = 'https://auth.example.test';
const API = 'https://api.example.test';

const server = rotatingServer(AUTH, API, { delayMs: 15 });

beforeAll(() => server.msw.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.msw.close());

let wardens: Warden[] = [];
beforeEach(() => {
  server.reset();
  freshIndexedDb();
});
afterEach(async () => {
  await Promise.all(wardens.map((warden) => warden.close()));
  wardens = [];
  vi.unstubAllGlobals();
});

/** `size` tabs: each a warden on its own indexedDbStore, with the same credential. */
function openTabs(size: number) {
  const refreshes: RefreshEvent[][] = [];
  const stores: TokenStore[] = [];
  const credentials: Credential[] = Array.from({ length: size }, (_, i) => {
    const store = indexedDbStore();
    stores.push(store);
    const warden = createWarden({ store });
    wardens.push(warden);
    refreshes[i] = [];
    warden.on('refresh', (event) => refreshes[i]?.push(event));
    return warden.register('user', {
      source: refreshToken({
        tokenEndpoint: `${AUTH}/token`,
        clientId: 'spa',
        refreshToken: 'rt-0',
      }),
      origins: [API],
    });
  });
  return { credentials, refreshes, stores };
}

const settle = (ms = 50) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([
  ['Web Locks', true],
  ['the lease lock (no Web Locks)', false],
])('tabs sharing a credential, with %s', (_, withWebLocks) => {
  beforeEach(() => stubNavigatorLocks(withWebLocks ? fakeLocks().manager : undefined));

  it('redeem each refresh token once, however many tabs want a new token at once', async () => {
    const { credentials, refreshes } = openTabs(5);
    await Promise.all(credentials.map((c) => c.getToken()));
    expect(server.redeemed).toEqual(['rt-0']);
    for (let round = 1; round <= 5; round++) {
      // Every tab saw the same token rejected (a 401) and asks for a new one at the same time.
      await settle(20);
      await Promise.all(credentials.map((c) => c.getToken({ forceRefresh: true })));
      expect(server.redeemed).toHaveLength(round + 1);
      const tokens = await Promise.all(credentials.map(async (c) => (await c.getToken()).reveal()));
      expect(new Set(tokens)).toEqual(new Set([`at-${round + 1}`]));
    }
    expect(server.redeemed).toEqual(['rt-0', 'rt-1', 'rt-2', 'rt-3', 'rt-4', 'rt-5']);
    expect(server.invalidGrants).toEqual([]);
    // Each round: one tab refreshed, the four others took its token over.
    const byReason = refreshes.flat().reduce<Record<string, number>>((counts, e) => {
      counts[e.reason] = (counts[e.reason] ?? 0) + 1;
      return counts;
    }, {});
    expect(byReason).toEqual({ initial: 1, forced: 5, shared: 24 });
  });

  it('take over a token announced while they waited for the lock, without a second request', async () => {
    const { credentials, stores, refreshes } = openTabs(2);
    const [a, b] = credentials as [Credential, Credential];
    await a.getToken();
    await b.getToken();
    // Both want a new token while another holder keeps the lock: the first to get the lock
    // redeems and announces, the other hears of it while it still waits.
    const held = await stores[0]!.lock!('user', { ttlMs: 5_000 });
    const waits = [a, b].map((c) => c.getToken({ forceRefresh: true }));
    await settle();
    await held.release();
    const tokens = await Promise.all(waits);
    expect(tokens.map((t) => t.reveal())).toEqual(['at-2', 'at-2']);
    expect(server.redeemed).toEqual(['rt-0', 'rt-1']);
    // One of them refreshed ('forced'), the other took it over ('shared').
    expect(
      refreshes
        .flat()
        .map((e) => e.reason)
        .sort(),
    ).toEqual(['forced', 'initial', 'shared']);
  });

  it('sign out everywhere when one tab forgets, without another token request', async () => {
    const { credentials } = openTabs(5);
    await Promise.all(credentials.map((c) => c.getToken()));
    const reauth: string[] = [];
    for (const warden of wardens) warden.on('reauth-required', ({ error }) => reauth.push(error));
    await credentials[0]!.forget();
    await settle();
    expect(credentials.map((c) => c.status().state)).toEqual(Array(5).fill('reauth-required'));
    expect(reauth).toEqual(Array(5).fill('signed_out'));
    expect(await rawGet('tokenwarden', 'records', 'user')).toBeUndefined();
    for (const credential of credentials) {
      await expect(credential.fetch(`${API}/x`)).rejects.toMatchObject({
        code: 'ERR_REAUTH_REQUIRED',
      });
    }
    expect(server.redeemed).toEqual(['rt-0']);
  });

  it('do not redeem the refresh token for a tab signed out while it waited for the lock', async () => {
    const { credentials, stores } = openTabs(2);
    const [a, b] = credentials as [Credential, Credential];
    await a.getToken();
    await b.getToken();
    const held = await stores[0]!.lock!('user', { ttlMs: 5_000 });
    const bWaits = b.getToken({ forceRefresh: true }).catch((error: unknown) => error);
    await settle();
    await a.forget();
    await settle();
    await held.release();
    expect(await bWaits).toMatchObject({ code: 'ERR_REAUTH_REQUIRED' });
    expect(server.redeemed).toEqual(['rt-0']);
    expect(await rawGet('tokenwarden', 'records', 'user')).toBeUndefined();
  });
});
