// What indexedDbStore gives the warden for coordinating tabs, over fake-indexeddb and Node's
// BroadcastChannel: versioned records with compare-and-swap (and old unversioned records still
// read), announcements between store objects (two stores stand for two tabs), the Web Lock
// (against a fake LockManager, Node having none) and the lease lock in IndexedDB used where Web
// Locks are missing. Real Chromium: test/integration/browser-tabs.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { channelName } from '../../../src/browser/channel.js';
import { indexedDbStore } from '../../../src/browser/index.js';
import { isTokenWardenError } from '../../../src/errors.js';
import type { StoreChange, TokenStore } from '../../../src/stores/types.js';
import { findLeaks, SENTINEL } from '../../support/sentinel.js';
import { freshIndexedDb, rawGet, rawPut, sentinelRecord } from './idb.js';
import { fakeLocks, stubNavigatorLocks } from './locks.js';

const stores: TokenStore[] = [];
/** An indexedDbStore closed after the test; several of them stand for several tabs. */
function tab(name = 'tokenwarden'): ReturnType<typeof indexedDbStore> {
  const store = indexedDbStore({ name });
  stores.push(store);
  return store;
}

beforeEach(() => {
  freshIndexedDb();
  stubNavigatorLocks(undefined);
});
const unwatch: (() => void)[] = [];
afterEach(async () => {
  // A listener left behind would hear the next test's announcements, through a closed store.
  for (const stop of unwatch.splice(0)) stop();
  await Promise.all(stores.splice(0).map((store) => store.close?.()));
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isTokenWardenError(error) ? error.code : `not a TokenWardenError: ${String(error)}`;
}

/** Collects the changes a store announces to `watcher`. */
function changes(watcher: TokenStore, id: string): StoreChange[] {
  const seen: StoreChange[] = [];
  const stop = watcher.watch?.(id, (change) => seen.push(change));
  if (stop) unwatch.push(stop);
  return seen;
}

const until = async (check: () => boolean, ms = 2_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('versions', () => {
  it('stores { v, s } and grows the version with every write', async () => {
    const store = tab();
    const before = Date.now();
    const first = await store.set('billing', sentinelRecord());
    expect(first).toBeGreaterThanOrEqual(before * 1_000);
    const second = await store.set('billing', sentinelRecord(), {
      expectedVersion: first as number,
    });
    expect(second).toBe((first as number) + 1);
    expect((await store.get('billing'))?.version).toBe(second);
    const raw = (await rawGet('tokenwarden', 'records', 'billing')) as { v: number; s: string };
    expect(raw.v).toBe(second);
    expect(raw.s.split('.')).toHaveLength(5);
    expect(findLeaks([raw], [SENTINEL.accessToken, SENTINEL.refreshToken])).toEqual([]);
  });

  it('refuses a write whose expected version no longer holds, with ERR_STORE_CONFLICT', async () => {
    const [a, b] = [tab(), tab()];
    const version = await a.set('billing', sentinelRecord());
    await b.set('billing', sentinelRecord('tw-newer-access-token-0001'), {
      expectedVersion: version as number,
    });
    expect(
      await codeOf(a.set('billing', sentinelRecord(), { expectedVersion: version as number })),
    ).toBe('ERR_STORE_CONFLICT');
    expect(await codeOf(a.set('billing', sentinelRecord(), { expectedVersion: null }))).toBe(
      'ERR_STORE_CONFLICT',
    );
    expect((await a.get('billing'))?.tokens.revealAccessToken()).toBe('tw-newer-access-token-0001');
    // `null`: only where there is no record.
    expect(await a.set('other', sentinelRecord(), { expectedVersion: null })).toBeTypeOf('number');
  });

  it('lets exactly one of many concurrent compare-and-swap writers win', async () => {
    const writers = Array.from({ length: 6 }, () => tab());
    const version = (await writers[0]!.set('billing', sentinelRecord())) as number;
    const outcomes = await Promise.all(
      writers.map((store, i) =>
        store
          .set('billing', sentinelRecord(`tw-writer-${i}-access-token`), {
            expectedVersion: version,
          })
          .then(
            () => 'won',
            (error: unknown) => (isTokenWardenError(error) ? error.code : 'other'),
          ),
      ),
    );
    expect(outcomes.filter((o) => o === 'won')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'ERR_STORE_CONFLICT')).toHaveLength(5);
  });

  it('reads a plain sealed string of the previous layout as version 0 and upgrades it on write', async () => {
    const store = tab();
    await store.set('billing', sentinelRecord());
    const { s } = (await rawGet('tokenwarden', 'records', 'billing')) as { s: string };
    await rawPut('tokenwarden', 'records', 'billing', s);

    const reread = await store.get('billing');
    expect(reread?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    expect(reread?.version).toBe(0);
    expect(await codeOf(store.set('billing', sentinelRecord(), { expectedVersion: null }))).toBe(
      'ERR_STORE_CONFLICT',
    );
    const upgraded = await store.set('billing', sentinelRecord(), { expectedVersion: 0 });
    expect(upgraded).toBeGreaterThan(0);
    expect(await rawGet('tokenwarden', 'records', 'billing')).toEqual({
      v: upgraded,
      s: expect.any(String),
    });
  });

  it('never repeats a version after a delete: a record written after a sign-out starts anew', async () => {
    const store = tab();
    let version = (await store.set('billing', sentinelRecord())) as number;
    for (let i = 0; i < 3; i++) {
      version = (await store.set('billing', sentinelRecord(), {
        expectedVersion: version,
      })) as number;
    }
    await store.delete('billing');
    const fresh = (await store.set('billing', sentinelRecord())) as number;
    expect(fresh).toBeGreaterThan(version);
    expect(await codeOf(store.set('billing', sentinelRecord(), { expectedVersion: version }))).toBe(
      'ERR_STORE_CONFLICT',
    );
  });

  it('still wipes the store when a record is neither a sealed string nor { v, s }', async () => {
    const store = tab();
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', sentinelRecord());
    await rawPut('tokenwarden', 'records', 'billing', { v: 'one', s: 42 });
    expect(await store.get('billing')).toBeUndefined();
    expect(tampered).toEqual(['billing']);
    expect(await store.list()).toEqual([]);
  });
});

describe('announcements', () => {
  it('tells the other stores of the database about each write, as the sealed record', async () => {
    const [a, b, c] = [tab(), tab(), tab()];
    const seenByB = changes(b, 'billing');
    const seenByA = changes(a, 'billing');
    const other = changes(c, 'admin');
    const raw: unknown[] = [];
    const spy = new BroadcastChannel(channelName('tokenwarden'));
    spy.onmessage = (event) => raw.push(event.data);

    const version = await a.set('billing', sentinelRecord());
    await until(() => seenByB.length === 1 && raw.length === 1);
    expect(seenByB[0]?.id).toBe('billing');
    expect(seenByB[0]?.record?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    expect(seenByB[0]?.record?.version).toBe(version);
    // What travels is the sealed record, never a token.
    expect(raw[0]).toEqual({ id: 'billing', version, sealed: expect.any(String) });
    expect(findLeaks(raw, [SENTINEL.accessToken, SENTINEL.refreshToken])).toEqual([]);
    await settle();
    expect(seenByA).toEqual([]); // never its own writes
    expect(other).toEqual([]); // only the watched id
    spy.close();
  });

  it('announces a delete the warden asks for, so the other tabs sign out', async () => {
    const [a, b] = [tab(), tab()];
    await a.set('billing', sentinelRecord());
    const seen = changes(b, 'billing');
    await a.delete('billing');
    await until(() => seen.length === 1);
    expect(seen).toEqual([{ id: 'billing', record: undefined }]);
    expect(await b.get('billing')).toBeUndefined();
  });

  it('does not announce a record discarded as tampered: the other tabs keep their session', async () => {
    const [a, b] = [tab(), tab()];
    await a.set('billing', sentinelRecord());
    const seen = changes(b, 'billing');
    const { s, v } = (await rawGet('tokenwarden', 'records', 'billing')) as {
      s: string;
      v: number;
    };
    await rawPut('tokenwarden', 'records', 'billing', { v, s: s.slice(0, -4) });
    expect(await a.get('billing')).toBeUndefined();
    await settle();
    expect(seen).toEqual([]);
  });

  it('drops announcements older than what it has seen, and anything malformed', async () => {
    const [a, b] = [tab(), tab()];
    const seen = changes(b, 'billing');
    const v1 = (await a.set('billing', sentinelRecord('tw-first-access-token-01'))) as number;
    await until(() => seen.length === 1);
    const { s: older } = (await rawGet('tokenwarden', 'records', 'billing')) as { s: string };
    await a.set('billing', sentinelRecord('tw-second-access-token-2'), { expectedVersion: v1 });
    await until(() => seen.length === 2);

    const other = new BroadcastChannel(channelName('tokenwarden'));
    other.postMessage({ id: 'billing', version: v1, sealed: older }); // late, older
    other.postMessage({ id: 'billing', deleted: true, version: v1 }); // a delete of an older one
    other.postMessage({ id: 'billing', version: 'x', sealed: older });
    other.postMessage('hello');
    await settle();
    other.close();
    expect(seen.map((c) => c.record?.tokens.revealAccessToken())).toEqual([
      'tw-first-access-token-01',
      'tw-second-access-token-2',
    ]);
  });

  it('reports an announcement that does not open as tamper, and never passes it on', async () => {
    const [a, b] = [tab(), tab()];
    const tampered: string[] = [];
    b.bind?.({ tamper: (id) => tampered.push(id) });
    const seen = changes(b, 'billing');
    await a.set('billing', sentinelRecord());
    await until(() => seen.length === 1);
    const { s } = (await rawGet('tokenwarden', 'records', 'billing')) as { s: string };
    const forged = new BroadcastChannel(channelName('tokenwarden'));
    forged.postMessage({
      id: 'billing',
      version: Number.MAX_SAFE_INTEGER,
      sealed: `${s.slice(0, -4)}AAAA`,
    });
    await until(() => tampered.length === 1);
    forged.close();
    expect(seen).toHaveLength(1);
  });

  it('keeps databases apart: another name has another channel', async () => {
    const [a, b] = [tab('one'), tab('two')];
    const seen = changes(b, 'billing');
    await a.set('billing', sentinelRecord());
    await settle();
    expect(seen).toEqual([]);
  });

  it('keeps listening while a watcher remains, after the store object is closed', async () => {
    const [a, b] = [tab(), tab()];
    const seen = changes(b, 'billing'); // another warden on the same store object
    await b.close?.();
    await a.set('billing', sentinelRecord());
    await until(() => seen.length === 1);
  });

  it('stops calling a listener once unsubscribed', async () => {
    const [a, b] = [tab(), tab()];
    const seen: StoreChange[] = [];
    const stop = b.watch?.('billing', (change) => seen.push(change));
    if (stop) unwatch.push(stop);
    await a.set('billing', sentinelRecord());
    await until(() => seen.length === 1);
    stop?.();
    await a.set('billing', sentinelRecord());
    await settle();
    expect(seen).toHaveLength(1);
  });
});

describe('the lease lock, where Web Locks are missing', () => {
  it('lets one holder at a time in, across stores, and the next in on release', async () => {
    const [a, b] = [tab(), tab()];
    const lease = await a.lock!('billing', { ttlMs: 5_000 });
    let granted = false;
    const waiting = b.lock!('billing', { ttlMs: 5_000 }).then((next) => {
      granted = true;
      return next;
    });
    await settle();
    expect(granted).toBe(false);
    const record = (await rawGet('tokenwarden-locks', 'leases', 'billing')) as {
      owner: string;
      expires: number;
    };
    expect(record).toEqual({
      owner: expect.stringMatching(/^[0-9a-f]{32}$/),
      expires: expect.any(Number),
    });
    // Another credential's lock is independent.
    await (await b.lock!('admin', { ttlMs: 5_000 })).release();
    await lease.release();
    const next = await waiting;
    expect(granted).toBe(true);
    expect(lease.signal.aborted).toBe(false);
    await next.release();
    expect(await rawGet('tokenwarden-locks', 'leases', 'billing')).toBeUndefined();
  });

  it('grants the lock to exactly one of many waiters at a time', async () => {
    const contenders = Array.from({ length: 5 }, () => tab());
    let inside = 0;
    let most = 0;
    await Promise.all(
      contenders.map(async (store) => {
        for (let round = 0; round < 3; round++) {
          const lease = await store.lock!('billing', { ttlMs: 5_000 });
          inside++;
          most = Math.max(most, inside);
          await new Promise((resolve) => setTimeout(resolve, 3));
          inside--;
          await lease.release();
        }
      }),
    );
    expect(most).toBe(1);
  });

  it('takes over a lease whose holder died, after its TTL, and ends the holder’s lease', async () => {
    const [dead, live] = [tab(), tab()];
    const stale = await dead.lock!('billing', { ttlMs: 150 });
    const started = Date.now();
    const lease = await live.lock!('billing', { ttlMs: 5_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(stale.signal.aborted).toBe(true);
    expect(stale.signal.reason).toMatchObject({ code: 'ERR_LOCK_TIMEOUT' });
    // The late release of the old holder does not free the new holder's lease.
    await stale.release();
    expect(await rawGet('tokenwarden-locks', 'leases', 'billing')).toBeDefined();
    await lease.release();
  });

  it('stops waiting when the signal aborts, with ERR_ABORTED', async () => {
    const [a, b] = [tab(), tab()];
    const lease = await a.lock!('billing', { ttlMs: 5_000 });
    const controller = new AbortController();
    const waiting = codeOf(b.lock!('billing', { ttlMs: 5_000, signal: controller.signal }));
    setTimeout(() => controller.abort(), 30);
    expect(await waiting).toBe('ERR_ABORTED');
    await lease.release();
  });

  it('gives up after twice the TTL with ERR_LOCK_TIMEOUT, and rejects a bad TTL', async () => {
    const [a, b] = [tab(), tab()];
    const lease = await a.lock!('billing', { ttlMs: 10_000 });
    // The holder is alive and within its TTL: a waiter with a shorter TTL waits 2 × its own.
    const started = Date.now();
    expect(await codeOf(b.lock!('billing', { ttlMs: 60 }))).toBe('ERR_LOCK_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    await lease.release();
    for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(await codeOf(b.lock!('billing', { ttlMs }))).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});

describe('the Web Lock', () => {
  it('takes the Web Lock named for the database and credential, one holder at a time', async () => {
    const locks = fakeLocks();
    stubNavigatorLocks(locks.manager);
    const [a, b] = [tab('app'), tab('app')];
    const lease = await a.lock!('billing', { ttlMs: 5_000 });
    expect(locks.requested).toEqual(['tokenwarden:app:billing']);
    expect(locks.held).toEqual(new Set(['tokenwarden:app:billing']));
    let granted = false;
    const waiting = b.lock!('billing', { ttlMs: 5_000 }).then((next) => {
      granted = true;
      return next;
    });
    await settle();
    expect(granted).toBe(false);
    await lease.release();
    // release() resolves once the lock is free for the next holder.
    const next = await waiting;
    await next.release();
    expect(locks.held).toEqual(new Set());
    // No lease database: the browser keeps Web Locks.
    expect(await rawGet('app-locks', 'leases', 'billing')).toBeUndefined();
  });

  it('lets go of a lock held past its TTL and aborts the holder’s signal', async () => {
    const locks = fakeLocks();
    stubNavigatorLocks(locks.manager);
    const [stuck, next] = [tab(), tab()];
    const lease = await stuck.lock!('billing', { ttlMs: 80 });
    const after = await next.lock!('billing', { ttlMs: 5_000 });
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toMatchObject({ code: 'ERR_LOCK_TIMEOUT' });
    await lease.release(); // late, harmless
    expect(locks.held).toEqual(new Set(['tokenwarden:tokenwarden:billing']));
    await after.release();
  });

  it('never steals: a waiter gives up after twice its TTL, or when its signal aborts', async () => {
    const locks = fakeLocks();
    stubNavigatorLocks(locks.manager);
    const [a, b] = [tab(), tab()];
    const lease = await a.lock!('billing', { ttlMs: 10_000 });
    expect(await codeOf(b.lock!('billing', { ttlMs: 50 }))).toBe('ERR_LOCK_TIMEOUT');
    const controller = new AbortController();
    const aborted = codeOf(b.lock!('billing', { ttlMs: 5_000, signal: controller.signal }));
    controller.abort();
    expect(await aborted).toBe('ERR_ABORTED');
    expect(lease.signal.aborted).toBe(false);
    await lease.release();
    expect(await codeOf(b.lock!('billing', { ttlMs: 0 }))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('reports a lock request the browser refuses as ERR_STORE_UNAVAILABLE', async () => {
    stubNavigatorLocks({
      request: () => Promise.reject(new DOMException('opaque origin', 'SecurityError')),
    } as unknown as LockManager);
    const error = await tab().lock!('billing', { ttlMs: 1_000 }).catch((e: unknown) => e);
    expect(isTokenWardenError(error) && error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect((error as Error).message).toContain('SecurityError');
  });
});

describe("fallback: 'memory'", () => {
  it('keeps lock, watch and compare-and-swap where IndexedDB is missing', async () => {
    vi.stubGlobal('indexedDB', undefined);
    const store = indexedDbStore({ fallback: 'memory', onFallback: () => {} });
    stores.push(store);
    const stop = store.watch?.('billing', () => {});
    if (stop) unwatch.push(stop);
    const version = (await store.set('billing', sentinelRecord())) as number;
    expect(store.kind).toBe('memory');
    expect(
      await codeOf(store.set('billing', sentinelRecord(), { expectedVersion: version + 1 })),
    ).toBe('ERR_STORE_CONFLICT');
    const lease = await store.lock!('billing', { ttlMs: 1_000 });
    await lease.release();
    stop?.();
  });

  it('passes lock and watch through to the IndexedDB store where it works', async () => {
    const [a, b] = [indexedDbStore({ fallback: 'memory' }), tab()];
    stores.push(a);
    const seen: StoreChange[] = [];
    const stop = a.watch?.('billing', (change) => seen.push(change));
    if (stop) unwatch.push(stop);
    await b.set('billing', sentinelRecord());
    await until(() => seen.length === 1);
    const lease = await a.lock!('billing', { ttlMs: 5_000 });
    expect(await rawGet('tokenwarden-locks', 'leases', 'billing')).toBeDefined();
    await lease.release();
  });
});
