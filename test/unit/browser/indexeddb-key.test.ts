// The IndexedDB key provider over fake-indexeddb: a non-extractable key created once and shared
// by every tab of the origin, rotation and retirement, and what happens when the key is lost.
import 'fake-indexeddb/auto';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createIndexedDbKey, indexedDbKey } from '../../../src/browser/indexeddb-key.js';
import { isTokenWardenError } from '../../../src/errors.js';
import { barrier, freshIndexedDb, rawGet, rawPut } from './idb.js';

interface StoredRing {
  v: number;
  current: string;
  keys: { kid: string; key: CryptoKey; createdAt: number }[];
}

const ring = async (name = 'tokenwarden') =>
  (await rawGet(`${name}-keys`, 'keys', 'ring')) as StoredRing | undefined;

beforeEach(() => {
  freshIndexedDb();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('indexedDbKey', () => {
  it('creates a non-extractable AES-256-GCM key on first use and keeps it in IndexedDB', async () => {
    const provider = indexedDbKey();
    expect(await ring()).toBeUndefined();
    const first = await provider.current();
    expect(first.kid).toMatch(/^[A-Za-z0-9_-]{16}$/);
    const key = first.key as CryptoKey;
    expect(key.extractable).toBe(false);
    expect(key.algorithm).toEqual({ name: 'AES-GCM', length: 256 });
    expect([...key.usages].sort()).toEqual(['decrypt', 'encrypt']);
    await expect(crypto.subtle.exportKey('raw', key)).rejects.toThrow();

    const stored = await ring();
    expect(stored?.current).toBe(first.kid);
    expect(stored?.keys).toHaveLength(1);
    expect(stored?.keys[0]?.key.extractable).toBe(false);
    // Same key on the next call, and for a provider created later (a reload).
    expect((await provider.current()).kid).toBe(first.kid);
    expect((await indexedDbKey().current()).kid).toBe(first.kid);
  });

  it('keeps one key when two tabs create it at the same moment', async () => {
    // The worst order: tab B finds no key and starts generating one; meanwhile tab A creates,
    // stores and starts using its key; then B's key is ready. B must adopt A's key, not
    // overwrite it (A's records would become unreadable).
    let releaseB: () => void = () => {};
    const gateB = new Promise<void>((resolve) => {
      releaseB = resolve;
    });
    const generateKey = crypto.subtle.generateKey.bind(crypto.subtle);
    let calls = 0;
    vi.spyOn(crypto.subtle, 'generateKey').mockImplementation((async (
      ...args: Parameters<typeof generateKey>
    ) => {
      const first = ++calls === 1;
      const key = await generateKey(...args);
      if (first) await gateB;
      return key;
    }) as typeof crypto.subtle.generateKey);
    const tabA = createIndexedDbKey('tokenwarden');
    const tabB = createIndexedDbKey('tokenwarden');
    const b = tabB.provider.current();
    await vi.waitFor(() => expect(calls).toBe(1));
    const a = await tabA.provider.current();
    expect((await ring())?.current).toBe(a.kid);
    releaseB();
    expect((await b).kid).toBe(a.kid);
    expect(calls).toBe(2);
    const stored = await ring();
    expect(stored?.keys.map((entry) => entry.kid)).toEqual([a.kid]);
    // What one tab seals, the other opens.
    const iv = new Uint8Array(12);
    const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, a.key as CryptoKey, iv);
    const opened = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv },
      (await b).key as CryptoKey,
      sealed,
    );
    expect(new Uint8Array(opened)).toEqual(iv);
  });

  it('keeps one key when two tabs finish generating together', async () => {
    const bothGenerated = barrier(2);
    const generateKey = crypto.subtle.generateKey.bind(crypto.subtle);
    vi.spyOn(crypto.subtle, 'generateKey').mockImplementation((async (
      ...args: Parameters<typeof generateKey>
    ) => {
      const key = await generateKey(...args);
      await bothGenerated();
      return key;
    }) as typeof crypto.subtle.generateKey);
    const [a, b] = await Promise.all([
      createIndexedDbKey('tokenwarden').provider.current(),
      createIndexedDbKey('tokenwarden').provider.current(),
    ]);
    expect(crypto.subtle.generateKey).toHaveBeenCalledTimes(2);
    expect(a.kid).toBe(b.kid);
    expect((await ring())?.keys.map((entry) => entry.kid)).toEqual([a.kid]);
  });

  it('creates a key once for concurrent calls within one tab', async () => {
    const spy = vi.spyOn(crypto.subtle, 'generateKey');
    const provider = indexedDbKey();
    const kids = new Set(
      (await Promise.all([1, 2, 3, 4].map(() => provider.current()))).map((key) => key.kid),
    );
    expect(kids.size).toBe(1);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('rotates to a new key, keeps the old one findable until retired', async () => {
    const provider = indexedDbKey();
    const old = await provider.current();
    const fresh = await provider.rotate();
    expect(fresh.kid).not.toBe(old.kid);
    expect((await provider.current()).kid).toBe(fresh.kid);
    expect((await provider.find(old.kid))?.kid).toBe(old.kid);
    // Another tab (no cached keys) sees the same.
    const other = indexedDbKey();
    expect((await other.current()).kid).toBe(fresh.kid);
    expect((await other.find(old.kid))?.kid).toBe(old.kid);

    await provider.retire(old.kid);
    expect(await provider.find(old.kid)).toBeUndefined();
    expect((await ring())?.keys.map((entry) => entry.kid)).toEqual([fresh.kid]);
    expect(await indexedDbKey().find(old.kid)).toBeUndefined();
  });

  it('never retires the current key', async () => {
    const provider = indexedDbKey();
    const current = await provider.current();
    await provider.retire(current.kid);
    expect((await provider.find(current.kid))?.kid).toBe(current.kid);
    expect((await ring())?.current).toBe(current.kid);
  });

  it('refuses key material on rotation: it makes its own keys', async () => {
    const error = await indexedDbKey()
      .rotate(new Uint8Array(32))
      .catch((e: unknown) => e);
    expect(isTokenWardenError(error) && error.code).toBe('ERR_INVALID_ARGUMENT');
  });

  it('answers undefined for an unknown key id', async () => {
    const provider = indexedDbKey();
    await provider.current();
    expect(await provider.find('unknown-kid-0000')).toBeUndefined();
  });

  it('replaces a lost key with a new one', async () => {
    const first = await indexedDbKey().current();
    await rawPut('tokenwarden-keys', 'keys', 'ring', undefined);
    const provider = indexedDbKey();
    const second = await provider.current();
    expect(second.kid).not.toBe(first.kid);
    expect(await provider.find(first.kid)).toBeUndefined();
  });

  it.each([
    ['garbage', 'not a ring'],
    ['an unknown version', { v: 2, current: 'k', keys: [] }],
    ['a current key that is missing', { v: 1, current: 'k', keys: [] }],
  ])('replaces %s with a new key', async (_, value) => {
    await indexedDbKey().current(); // creates the database
    await rawPut('tokenwarden-keys', 'keys', 'ring', value);
    const key = await indexedDbKey().current();
    expect((await ring())?.current).toBe(key.kid);
  });

  it('never uses an extractable key that was planted in its place', async () => {
    await indexedDbKey().current();
    const planted = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, [
      'encrypt',
      'decrypt',
    ]);
    await rawPut('tokenwarden-keys', 'keys', 'ring', {
      v: 1,
      current: 'planted',
      keys: [{ kid: 'planted', key: planted, createdAt: 1 }],
    });
    const provider = indexedDbKey();
    const key = await provider.current();
    expect(key.kid).not.toBe('planted');
    expect((key.key as CryptoKey).extractable).toBe(false);
    expect(await provider.find('planted')).toBeUndefined();
  });

  it('keeps keys of stores with different names apart', async () => {
    const a = await indexedDbKey({ name: 'app-a' }).current();
    const b = await indexedDbKey({ name: 'app-b' }).current();
    expect(a.kid).not.toBe(b.kid);
    expect((await ring('app-a'))?.current).toBe(a.kid);
    expect((await ring('app-b'))?.current).toBe(b.kid);
  });

  it('prints as [REDACTED]', async () => {
    const provider = indexedDbKey();
    await provider.current();
    expect(String(provider)).toBe('[REDACTED]');
    expect(JSON.stringify(provider)).toBe('{"kind":"indexeddb","key":"[REDACTED]"}');
    expect(inspect(provider)).toBe('KeyProvider [REDACTED]');
  });

  it.each([
    ['an empty name', { name: '' }],
    ['a non-string name', { name: 42 }],
    ['a name over 200 characters', { name: 'x'.repeat(201) }],
    ['options that are not an object', 'tokenwarden'],
  ])('rejects %s with ERR_INVALID_ARGUMENT', (_, options) => {
    expect(() => indexedDbKey(options as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });

  it('reports an IndexedDB failure as ERR_KEY_UNAVAILABLE, naming no value', async () => {
    vi.spyOn(indexedDB, 'open').mockImplementation(() => {
      throw new DOMException('storage is disabled', 'SecurityError');
    });
    const error = await indexedDbKey()
      .current()
      .catch((e: unknown) => e);
    expect(isTokenWardenError(error) && error.code).toBe('ERR_KEY_UNAVAILABLE');
    expect((error as Error).message).toContain('SecurityError');
  });
});
