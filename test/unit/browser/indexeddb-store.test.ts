// indexedDbStore over fake-indexeddb: sealed records in their own database, tamper handling,
// key loss, and connections that are closed, upgraded or deleted under the store. The same
// claims are shown in real Chromium by test/integration/browser-store.test.ts.
import 'fake-indexeddb/auto';
import { inspect } from 'node:util';
import { forceCloseDatabase } from 'fake-indexeddb';
import { decodeProtectedHeader } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { indexedDbStore } from '../../../src/browser/index.js';
import { isTokenWardenError } from '../../../src/errors.js';
import { createWarden, customSource, type TamperEvent } from '../../../src/index.js';
import { findLeaks, SENTINEL } from '../../support/sentinel.js';
import {
  freshIndexedDb,
  rawGet,
  rawOpen,
  rawPut,
  sentinelRecord,
  trackConnections,
} from './idb.js';

beforeEach(() => {
  freshIndexedDb();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

const rawRecord = (id: string, name = 'tokenwarden') => rawGet(name, 'records', id);
/** The sealed string of a stored record ({ v: version, s: sealed }). */
const rawSealed = async (id: string) => ((await rawRecord(id)) as { s: string }).s;

describe('indexedDbStore', () => {
  it('keeps sealed JWE strings in its own database and reads them back', async () => {
    const store = indexedDbStore();
    expect(store.kind).toBe('indexeddb');
    await store.set('billing', sentinelRecord());
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    expect(await store.list()).toEqual(['billing']);

    const stored = await rawRecord('billing');
    expect(stored).toEqual({ v: expect.any(Number), s: expect.any(String) });
    const sealed = await rawSealed('billing');
    expect(sealed.split('.')).toHaveLength(5);
    const header = decodeProtectedHeader(sealed);
    expect(header).toMatchObject({ alg: 'dir', enc: 'A256GCM', tw_slot: 'billing' });
    const ring = (await rawGet('tokenwarden-keys', 'keys', 'ring')) as { current: string };
    expect(header.kid).toBe(ring.current);
    expect(findLeaks([stored, ring], [SENTINEL.accessToken, SENTINEL.refreshToken])).toEqual([]);

    await store.delete('billing');
    expect(await store.get('billing')).toBeUndefined();
    expect(await store.list()).toEqual([]);
    await store.close?.();
  });

  it('survives a new store over the same database, as after a reload', async () => {
    const first = indexedDbStore({ name: 'app' });
    await first.set('billing', sentinelRecord());
    await first.close?.();
    const second = indexedDbStore({ name: 'app' });
    expect((await second.get('billing'))?.tokens.revealRefreshToken()).toBe(SENTINEL.refreshToken);
    expect(await indexedDbStore({ name: 'other' }).get('billing')).toBeUndefined();
  });

  it('discards a flipped record and reports tamper', async () => {
    const store = indexedDbStore();
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', sentinelRecord());
    const sealed = await rawSealed('billing');
    const parts = sealed.split('.');
    const ciphertext = parts[3] as string;
    const middle = Math.floor(ciphertext.length / 2);
    parts[3] =
      ciphertext.slice(0, middle) +
      (ciphertext[middle] === 'A' ? 'B' : 'A') +
      ciphertext.slice(middle + 1);
    await rawPut('tokenwarden', 'records', 'billing', { v: 1, s: parts.join('.') });

    expect(await store.get('billing')).toBeUndefined();
    expect(tampered).toEqual(['billing']);
    expect(await rawRecord('billing')).toBeUndefined();
  });

  it('discards a record copied into another slot', async () => {
    const store = indexedDbStore();
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', sentinelRecord());
    await rawPut('tokenwarden', 'records', 'admin', await rawRecord('billing'));
    expect(await store.get('admin')).toBeUndefined();
    expect(tampered).toEqual(['admin']);
  });

  it('wipes every record when one is not a sealed string (not written by tokenwarden)', async () => {
    const store = indexedDbStore();
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', sentinelRecord());
    await store.set('admin', sentinelRecord());
    await rawPut('tokenwarden', 'records', 'admin', { planted: true });
    expect(await store.get('admin')).toBeUndefined();
    expect(tampered).toEqual(['admin']);
    expect(await store.list()).toEqual([]);
  });

  it('reads records as absent, and removes them, once the key is lost', async () => {
    const store = indexedDbStore();
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', sentinelRecord());
    const before = (await rawGet('tokenwarden-keys', 'keys', 'ring')) as { current: string };
    await rawPut('tokenwarden-keys', 'keys', 'ring', undefined);

    // A new page: the old key is not cached anywhere.
    const reloaded = indexedDbStore();
    expect(await reloaded.get('billing')).toBeUndefined();
    expect(await rawRecord('billing')).toBeUndefined();
    const after = (await rawGet('tokenwarden-keys', 'keys', 'ring')) as { current: string };
    expect(after.current).not.toBe(before.current);
    // The store works on with the new key.
    await reloaded.set('billing', sentinelRecord('tw-second-access-token-0001'));
    expect((await reloaded.get('billing'))?.tokens.revealAccessToken()).toBe(
      'tw-second-access-token-0001',
    );
    expect(tampered).toEqual([]);
  });

  it('re-seals every record under a new key and retires the old one', async () => {
    const store = indexedDbStore();
    await store.set('a', sentinelRecord());
    await store.set('b', sentinelRecord());
    const before = (await rawGet('tokenwarden-keys', 'keys', 'ring')) as { current: string };
    await store.rotateKey();
    const after = (await rawGet('tokenwarden-keys', 'keys', 'ring')) as {
      current: string;
      keys: { kid: string }[];
    };
    expect(after.current).not.toBe(before.current);
    expect(after.keys.map((entry) => entry.kid)).toEqual([after.current]);
    for (const id of ['a', 'b']) {
      expect(decodeProtectedHeader(await rawSealed(id)).kid).toBe(after.current);
      expect((await indexedDbStore().get(id))?.tokens.revealAccessToken()).toBe(
        SENTINEL.accessToken,
      );
    }
  });

  it('reopens a connection that was closed without telling it', async () => {
    const connections = trackConnections();
    const store = indexedDbStore();
    await store.set('billing', sentinelRecord());
    expect(connections.size).toBe(2); // records and keys
    for (const db of connections) db.close();
    const open = vi.spyOn(indexedDB, 'open');

    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    await store.set('billing', sentinelRecord('tw-after-close-access-0001'));
    expect(await store.list()).toEqual(['billing']);
    expect(open).toHaveBeenCalledTimes(2); // each database reopened once
    expect((await indexedDbStore().get('billing'))?.tokens.revealAccessToken()).toBe(
      'tw-after-close-access-0001',
    );
  });

  it('reopens after the browser closes the connection', async () => {
    const connections = trackConnections();
    const store = indexedDbStore();
    await store.set('billing', sentinelRecord());
    for (const db of connections) forceCloseDatabase(db as never);
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
  });

  it('gives way to another tab that upgrades or deletes its databases', async () => {
    const store = indexedDbStore();
    await store.set('billing', sentinelRecord());
    // Would reject as blocked if the store kept its connections open.
    const upgraded = await rawOpen('tokenwarden', 2);
    upgraded.close();
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);

    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.deleteDatabase('tokenwarden');
      request.onsuccess = () => resolve();
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error('deletion blocked'));
    });
    expect(await store.get('billing')).toBeUndefined();
    await store.set('billing', sentinelRecord());
    expect(await store.list()).toEqual(['billing']);
  });

  it('adds its object store to a database that exists without it', async () => {
    const foreign = await rawOpen('tokenwarden');
    foreign.close();
    const store = indexedDbStore();
    await store.set('billing', sentinelRecord());
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
  });

  it('closes its connections on close() and reopens on later use', async () => {
    const connections = trackConnections();
    const store = indexedDbStore();
    await store.set('billing', sentinelRecord());
    await store.close?.();
    expect([...connections].map((db) => (db as unknown as { _closed: boolean })._closed)).toEqual([
      true,
      true,
    ]);
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
  });

  it('reports an IndexedDB failure as ERR_STORE_UNAVAILABLE', async () => {
    vi.spyOn(indexedDB, 'open').mockImplementation(() => {
      throw new DOMException('quota', 'QuotaExceededError');
    });
    const error = await indexedDbStore()
      .list()
      .catch((e: unknown) => e);
    expect(isTokenWardenError(error) && error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect((error as Error).message).toContain('QuotaExceededError');
  });

  it('prints without its key', async () => {
    const store = indexedDbStore();
    expect(JSON.stringify(store)).toBe('{"kind":"indexeddb","sealed":true,"key":"[REDACTED]"}');
    expect(inspect(store)).toBe("SealedStore { kind: 'indexeddb', key: [REDACTED] }");
  });

  it.each([
    ['an unknown fallback', { fallback: 'disk' }],
    ['an onFallback that is not a function', { fallback: 'memory', onFallback: 'warn' }],
    ['an empty name', { name: '' }],
  ])('rejects %s with ERR_INVALID_ARGUMENT', (_, options) => {
    expect(() => indexedDbStore(options as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});

describe('a warden with indexedDbStore', () => {
  function counting(label: string) {
    const calls = { n: 0 };
    const source = customSource(async () => {
      calls.n++;
      return { accessToken: `tw-idb-${label}-${calls.n}-Kq93hd`, expiresIn: 3600 };
    });
    return { calls, source };
  }

  it('reuses a stored token after a restart, and replaces a tampered one', async () => {
    const first = counting('first');
    const w1 = createWarden({ store: indexedDbStore() });
    const token = await w1.register('svc', { source: first.source, origins: [] }).getToken();
    await w1.close();
    expect(first.calls.n).toBe(1);

    const second = counting('second');
    const w2 = createWarden({ store: indexedDbStore() });
    const reused = await w2.register('svc', { source: second.source, origins: [] }).getToken();
    expect(reused.reveal()).toBe(token.reveal());
    expect(second.calls.n).toBe(0);
    await w2.close();

    const sealed = await rawSealed('svc');
    await rawPut('tokenwarden', 'records', 'svc', { v: 1, s: sealed.slice(0, -4) });
    const third = counting('third');
    const w3 = createWarden({ store: indexedDbStore() });
    const tampers: TamperEvent[] = [];
    w3.on('tamper', (event) => tampers.push(event));
    const fresh = await w3.register('svc', { source: third.source, origins: [] }).getToken();
    expect(tampers).toEqual([{ id: 'svc', store: 'indexeddb' }]);
    expect(third.calls.n).toBe(1);
    expect(fresh.reveal()).not.toBe(token.reveal());
    await w3.close();
  });
});
