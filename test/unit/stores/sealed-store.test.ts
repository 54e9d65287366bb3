import { inspect } from 'node:util';
import { decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { TokenWardenError } from '../../../src/errors.js';
import { openRecord, sealRecord } from '../../../src/stores/envelope.js';
import {
  deriveKid,
  type KeyProvider,
  keyBytes,
  staticKey,
  toKeyProvider,
} from '../../../src/stores/keys.js';
import { decodeRecord, encodeRecord } from '../../../src/stores/record.js';
import { sealedStore } from '../../../src/stores/sealed.js';
import type { StoredRecord } from '../../../src/stores/types.js';
import { TokenSet } from '../../../src/token.js';
import { mapBackend } from '../../support/map-backend.js';
import { findLeaks, SENTINEL } from '../../support/sentinel.js';

const KEY_A = new Uint8Array(32).fill(7);
const KEY_B = new Uint8Array(32).fill(9);

function record(access: string = SENTINEL.accessToken): StoredRecord {
  return {
    tokens: new TokenSet({
      accessToken: access,
      refreshToken: SENTINEL.refreshToken,
      expiresAt: 2_000_000_000_000,
      issuedAt: 1_999_999_000_000,
      scope: ['a', 'b'],
      expirySource: 'expires_in',
    }),
    meta: { createdAt: 1, refreshedAt: 2, lastUsedAt: 3, uses: 4, refreshes: 5 },
  };
}

/** Flips one bit of the character at `index` of a base64url string, keeping it base64url. */
function flip(sealed: string, index: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const char = sealed[index] as string;
  if (char === '.') return flip(sealed, index + 1);
  const swapped = alphabet[(alphabet.indexOf(char) ^ 1) % 64] as string;
  return sealed.slice(0, index) + swapped + sealed.slice(index + 1);
}

describe('record encoding', () => {
  it('round-trips every field', () => {
    const original = record();
    const decoded = decodeRecord(encodeRecord(original));
    expect(decoded?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    expect(decoded?.tokens.revealRefreshToken()).toBe(SENTINEL.refreshToken);
    expect(decoded?.tokens.info()).toEqual(original.tokens.info());
    expect(decoded?.meta).toEqual(original.meta);
  });

  it.each([
    ['not JSON', 'nope'],
    ['another version', JSON.stringify({ v: 2 })],
    ['an array', '[]'],
    ['a missing token', JSON.stringify({ v: 1, tt: 'Bearer', exp: 1, iat: 1, es: 'jwt', m: {} })],
    [
      'a bad expiry source',
      JSON.stringify({
        v: 1,
        at: 'x',
        tt: 'B',
        exp: 1,
        iat: 1,
        es: 'guess',
        m: { c: 1, r: 1, n: 0, f: 0 },
      }),
    ],
    [
      'negative counts',
      JSON.stringify({
        v: 1,
        at: 'x',
        tt: 'B',
        exp: 1,
        iat: 1,
        es: 'jwt',
        m: { c: 1, r: 1, n: -1, f: 0 },
      }),
    ],
  ])('rejects %s', (_, text) => {
    expect(decodeRecord(new TextEncoder().encode(text))).toBeUndefined();
  });
});

describe('the envelope', () => {
  const keys = staticKey(KEY_A);

  it('is a compact JWE (dir, A256GCM) with the kid and slot in the protected header', async () => {
    const sealed = await sealRecord(record(), 'billing', await keys.current());
    expect(sealed.split('.')).toHaveLength(5);
    expect(sealed.split('.')[1]).toBe('');
    expect(decodeProtectedHeader(sealed)).toEqual({
      alg: 'dir',
      enc: 'A256GCM',
      kid: await deriveKid(KEY_A),
      tw_slot: 'billing',
    });
  });

  it('uses a fresh IV per write: two seals of one record differ', async () => {
    const key = await keys.current();
    const [a, b] = await Promise.all([
      sealRecord(record(), 'billing', key),
      sealRecord(record(), 'billing', key),
    ]);
    expect(a).not.toBe(b);
    expect(a.split('.')[2]).not.toBe(b.split('.')[2]);
  });

  it('contains no token or secret in any encoding', async () => {
    const sealed = await sealRecord(record(), 'billing', await keys.current());
    expect(findLeaks([sealed], [SENTINEL.accessToken, SENTINEL.refreshToken])).toEqual([]);
  });

  it('opens what it sealed, for the same slot only', async () => {
    const sealed = await sealRecord(record(), 'billing', await keys.current());
    const opened = await openRecord(sealed, 'billing', keys);
    expect(opened.status).toBe('ok');
    expect(await openRecord(sealed, 'reports', keys)).toEqual({ status: 'tampered' });
  });

  it('reports every flipped character, truncation and header edit as tampered', async () => {
    const sealed = await sealRecord(record(), 'billing', await keys.current());
    const results = new Set<string>();
    for (let i = 0; i < sealed.length; i++) {
      results.add((await openRecord(flip(sealed, i), 'billing', keys)).status);
    }
    for (const cut of [1, 10, sealed.length / 2, sealed.length - 1]) {
      results.add((await openRecord(sealed.slice(0, cut), 'billing', keys)).status);
    }
    // A header rewritten to claim another slot breaks the authentication tag.
    const [, ...rest] = sealed.split('.');
    const header = Buffer.from(
      JSON.stringify({
        alg: 'dir',
        enc: 'A256GCM',
        kid: await deriveKid(KEY_A),
        tw_slot: 'reports',
      }),
    ).toString('base64url');
    results.add((await openRecord([header, ...rest].join('.'), 'reports', keys)).status);
    results.delete('unknown-key'); // a flip inside the kid names a key that does not exist
    expect([...results]).toEqual(['tampered']);
  });

  it('treats a record under an unknown kid as unknown, never decrypting with another key', async () => {
    const other = staticKey(KEY_B);
    const sealed = await sealRecord(record(), 'billing', await other.current());
    expect(await openRecord(sealed, 'billing', keys)).toEqual({ status: 'unknown-key' });
  });

  it('rejects junk without throwing', async () => {
    for (const junk of ['', 'a.b.c.d.e', 'x'.repeat(300_000), '....', 42 as unknown as string]) {
      expect((await openRecord(junk, 'billing', keys)).status).toBe('tampered');
    }
  });
});

describe('keys', () => {
  it('accepts 32 bytes or their base64url form and rejects anything else without echoing it', () => {
    const text = Buffer.from(KEY_A).toString('base64url');
    expect(keyBytes(text, 'key')).toEqual(KEY_A);
    expect(keyBytes(KEY_A, 'key')).toEqual(KEY_A);
    for (const bad of [new Uint8Array(16), 'short', `${text}x`, 'A'.repeat(44), 42]) {
      let error: unknown;
      try {
        keyBytes(bad as never, 'key');
      } catch (caught) {
        error = caught;
      }
      expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
      expect(String((error as Error).message)).not.toContain(text);
    }
    expect(() => toKeyProvider({} as never, 'key')).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });

  it('holds the key non-extractable and never prints it', async () => {
    const provider = staticKey(KEY_A);
    const { key } = await provider.current();
    expect((key as CryptoKey).extractable).toBe(false);
    await expect(crypto.subtle.exportKey('raw', key as CryptoKey)).rejects.toThrow();
    const printed = [inspect(provider), JSON.stringify(provider), String(provider)].join(' ');
    expect(printed).not.toContain(Buffer.from(KEY_A).toString('base64url'));
    expect(printed).toContain('[REDACTED]');
  });

  it('does not zero the caller’s key bytes', async () => {
    const bytes = new Uint8Array(KEY_A);
    await staticKey(bytes).current();
    expect(bytes).toEqual(KEY_A);
  });
});

describe('sealedStore', () => {
  it('stores only sealed records and reads them back', async () => {
    const backend = mapBackend();
    const store = sealedStore(backend, KEY_A);
    await store.set('billing', record());
    const raw = backend.records.get('billing') as string;
    expect(findLeaks([raw], [SENTINEL.accessToken, SENTINEL.refreshToken])).toEqual([]);
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    expect(await store.list()).toEqual(['billing']);
    await store.delete('billing');
    expect(await store.get('billing')).toBeUndefined();
  });

  it('discards a tampered record, reports it, and reads it as absent', async () => {
    const backend = mapBackend();
    const store = sealedStore(backend, KEY_A);
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', record());
    backend.records.set('billing', flip(backend.records.get('billing') as string, 120));
    expect(await store.get('billing')).toBeUndefined();
    expect(tampered).toEqual(['billing']);
    expect(backend.records.has('billing')).toBe(false);
  });

  it('rejects a record copied into another slot', async () => {
    const backend = mapBackend();
    const store = sealedStore(backend, KEY_A);
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', record());
    backend.records.set('reports', backend.records.get('billing') as string);
    expect(await store.get('reports')).toBeUndefined();
    expect(tampered).toEqual(['reports']);
    expect(await store.get('billing')).toBeDefined();
  });

  it('wipes the backend and reports tamper when the backing data is corrupt', async () => {
    const backend = mapBackend();
    const store = sealedStore(backend, KEY_A);
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', record());
    await store.set('reports', record());
    backend.corruptNextRead = true;
    expect(await store.get('billing')).toBeUndefined();
    expect(tampered).toEqual(['billing']);
    expect(backend.records.size).toBe(0);
  });

  it('never reads records with another key: a wrong key reads them as absent, deletes and reports them', async () => {
    const backend = mapBackend();
    await sealedStore(backend, KEY_A).set('billing', record());
    const wrong = sealedStore(backend, KEY_B);
    const tampered: string[] = [];
    wrong.bind?.({ tamper: (id) => tampered.push(id) });
    expect(await wrong.get('billing')).toBeUndefined();
    expect(backend.records.size).toBe(0);
    expect(tampered).toEqual(['billing']);
  });

  it('wipes the store when the key provider has no usable key', async () => {
    const backend = mapBackend();
    await sealedStore(backend, KEY_A).set('billing', record());
    const broken = brokenKeys();
    const store = sealedStore(backend, broken);
    await expect(store.get('billing')).rejects.toMatchObject({ code: 'ERR_KEY_UNAVAILABLE' });
    expect(backend.records.size).toBe(0);
    await expect(store.set('billing', record())).rejects.toMatchObject({
      code: 'ERR_KEY_UNAVAILABLE',
    });
  });

  it('rotateKey re-seals every record under the new key; the old key opens nothing', async () => {
    const backend = mapBackend();
    const store = sealedStore(backend, KEY_A);
    await store.set('billing', record('tok-1'));
    await store.set('reports', record('tok-2'));
    const before = new Map(backend.records);
    await store.rotateKey(KEY_B);
    for (const [id, sealed] of backend.records) {
      expect(sealed).not.toBe(before.get(id));
      expect(decodeProtectedHeader(sealed).kid).toBe(await deriveKid(KEY_B));
    }
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe('tok-1');
    const reopened = sealedStore(backend, KEY_B);
    expect((await reopened.get('reports'))?.tokens.revealAccessToken()).toBe('tok-2');
    const old = staticKey(KEY_A);
    expect(await openRecord(backend.records.get('billing') as string, 'billing', old)).toEqual({
      status: 'unknown-key',
    });
  });

  it('prints without its key', () => {
    const store = sealedStore(mapBackend(), KEY_A);
    const printed = [inspect(store), JSON.stringify(store), String(store)].join(' ');
    expect(printed).not.toContain(Buffer.from(KEY_A).toString('base64url'));
    expect(printed).not.toContain(Buffer.from(KEY_A).toString('base64'));
  });

  it('validates its backend', () => {
    expect(() => sealedStore({ kind: 'x' } as never, KEY_A)).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});

describe('sealedStore with a key that cannot be reached right now', () => {
  it('keeps the records and throws, rather than wiping them', async () => {
    const backend = mapBackend();
    await sealedStore(backend, KEY_A).set('billing', record());
    const locked: KeyProvider = {
      kind: 'locked',
      current: async () => {
        throw new TokenWardenError('ERR_STORE_UNAVAILABLE', 'the keychain is locked');
      },
      find: async () => {
        throw new TokenWardenError('ERR_STORE_UNAVAILABLE', 'the keychain is locked');
      },
      rotate: async () => {
        throw new TokenWardenError('ERR_STORE_UNAVAILABLE', 'the keychain is locked');
      },
      retire: async () => {},
    };
    const store = sealedStore(backend, locked);
    await expect(store.get('billing')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    await expect(store.set('billing', record())).rejects.toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
    });
    expect(backend.records.size).toBe(1);
  });

  it('keeps a record whose key lookup fails transiently', async () => {
    const backend = mapBackend();
    const good = staticKey(KEY_A);
    await sealedStore(backend, good).set('billing', record());
    let failing = true;
    const flaky: KeyProvider = {
      kind: 'flaky',
      current: () => good.current(),
      find: async (kid) => {
        if (failing) throw new TokenWardenError('ERR_STORE_UNAVAILABLE', 'try again');
        return good.find(kid);
      },
      rotate: (next) => good.rotate(next),
      retire: (kid) => good.retire(kid),
    };
    const store = sealedStore(backend, flaky);
    await expect(store.get('billing')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    expect(backend.records.size).toBe(1);
    failing = false;
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
  });
});

describe('sealedStore over a shared backend', () => {
  it('keeps a record under a key this instance does not hold, and fails loudly instead', async () => {
    const backend = Object.assign(mapBackend(), { shared: true });
    await sealedStore(backend, KEY_A).set('billing', record());
    const wrong = sealedStore(backend, KEY_B);
    const tampered: string[] = [];
    wrong.bind?.({ tamper: (id) => tampered.push(id) });
    await expect(wrong.get('billing')).rejects.toMatchObject({ code: 'ERR_KEY_UNAVAILABLE' });
    expect(backend.records.size).toBe(1);
    expect(tampered).toEqual(['billing']);
    expect((await sealedStore(backend, KEY_A).get('billing'))?.tokens.revealAccessToken()).toBe(
      SENTINEL.accessToken,
    );
  });
});

/** A key provider that has no usable key at all. */
function brokenKeys(): KeyProvider {
  return {
    kind: 'broken',
    current: async () => {
      throw new TokenWardenError('ERR_KEY_UNAVAILABLE', 'the key is gone');
    },
    find: async () => undefined,
    rotate: async () => {
      throw new Error('no');
    },
    retire: async () => {},
  };
}

describe('sealedStore over a shared backend, when the key provider has no usable key', () => {
  it('wipes nothing: the other instances may hold the key', async () => {
    const backend = Object.assign(mapBackend(), { shared: true });
    await sealedStore(backend, KEY_A).set('billing', record());
    const broken = brokenKeys();
    const store = sealedStore(backend, broken);
    await expect(store.get('billing')).rejects.toMatchObject({ code: 'ERR_KEY_UNAVAILABLE' });
    await expect(store.set('reports', record())).rejects.toMatchObject({
      code: 'ERR_KEY_UNAVAILABLE',
    });
    expect([...backend.records.keys()]).toEqual(['billing']);
    expect((await sealedStore(backend, KEY_A).get('billing'))?.tokens.revealAccessToken()).toBe(
      SENTINEL.accessToken,
    );
  });
});

describe('sealedStore announcements', () => {
  it('opens announced records, and drops a forged one without touching the stored record', async () => {
    const listeners: ((sealed: string | undefined, version?: number) => void)[] = [];
    const backend = Object.assign(mapBackend(), {
      watch(_id: string, listener: (sealed: string | undefined, version?: number) => void) {
        listeners.push(listener);
        return () => {};
      },
    });
    const store = sealedStore(backend, KEY_A);
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    const changes: unknown[] = [];
    store.watch?.('billing', (change) => changes.push(change));
    await store.set('billing', record());
    const sealed = backend.records.get('billing') as string;

    const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
    listeners[0]?.(flip(sealed, 100), 7);
    await settle();
    listeners[0]?.(sealed, 8);
    await settle();
    listeners[0]?.(undefined);
    expect(tampered).toEqual(['billing']);
    expect(backend.records.get('billing')).toBe(sealed);
    expect(changes).toMatchObject([
      { id: 'billing', record: { version: 8 } },
      { id: 'billing', record: undefined },
    ]);
  });
});
