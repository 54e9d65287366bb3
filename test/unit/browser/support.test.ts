// Where IndexedDB or WebCrypto is missing (Node, some private browsing modes, insecure http:
// pages), importing and creating the store works; using it fails with ERR_UNSUPPORTED, unless
// fallback: 'memory' is set. This file deliberately does not install fake-indexeddb globally.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { indexedDbKey, indexedDbStore } from '../../../src/browser/index.js';
import { missingFeatures } from '../../../src/browser/support.js';
import { isTokenWardenError, type TokenWardenError } from '../../../src/errors.js';
import { createWarden, customSource, type LogRecord } from '../../../src/index.js';
import { freshIndexedDb, rawGet, rawPut, sentinelRecord } from './idb.js';

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isTokenWardenError(error) ? error.code : undefined;
}

function withoutSubtle(): void {
  vi.stubGlobal('crypto', { getRandomValues: crypto.getRandomValues.bind(crypto) });
}

describe('feature detection', () => {
  it('finds IndexedDB missing in plain Node, and nothing missing with it', () => {
    expect('indexedDB' in globalThis).toBe(false);
    expect(missingFeatures()).toEqual(['IndexedDB']);
    freshIndexedDb();
    expect(missingFeatures()).toEqual([]);
  });

  it('finds WebCrypto missing where crypto.subtle is absent (insecure contexts)', () => {
    freshIndexedDb();
    withoutSubtle();
    expect(missingFeatures()).toEqual([expect.stringMatching(/^WebCrypto/)]);
  });

  it('treats an indexedDB getter that throws (sandboxed frames) as missing', () => {
    Object.defineProperty(globalThis, 'indexedDB', {
      configurable: true,
      get() {
        throw new DOMException('access denied', 'SecurityError');
      },
    });
    try {
      expect(missingFeatures()).toEqual(['IndexedDB']);
    } finally {
      delete (globalThis as { indexedDB?: unknown }).indexedDB;
    }
  });
});

describe('indexedDbStore without IndexedDB', () => {
  it('is created without error and fails with ERR_UNSUPPORTED when used', async () => {
    const store = indexedDbStore();
    expect(await codeOf(store.get('billing'))).toBe('ERR_UNSUPPORTED');
    expect(await codeOf(store.set('billing', sentinelRecord()))).toBe('ERR_UNSUPPORTED');
    expect(await codeOf(store.list())).toBe('ERR_UNSUPPORTED');
    expect(await codeOf(store.delete('billing'))).toBe('ERR_UNSUPPORTED');
    expect(await codeOf(store.rotateKey())).toBe('ERR_UNSUPPORTED');
    expect(await codeOf(indexedDbKey().current())).toBe('ERR_UNSUPPORTED');
    const error = (await store.list().catch((e: unknown) => e)) as TokenWardenError;
    expect(error.message).toContain('lacks IndexedDB');
    expect(error.message).toContain("fallback: 'memory'");
  });

  it('fails with ERR_UNSUPPORTED where WebCrypto is missing, and wipes nothing', async () => {
    freshIndexedDb();
    await indexedDbStore().set('billing', sentinelRecord());
    withoutSubtle();
    const store = indexedDbStore();
    const error = (await store.get('billing').catch((e: unknown) => e)) as TokenWardenError;
    expect(error.code).toBe('ERR_UNSUPPORTED');
    expect(error.message).toContain('WebCrypto');
    expect(await codeOf(store.set('billing', sentinelRecord()))).toBe('ERR_UNSUPPORTED');
    expect(await rawGet('tokenwarden', 'records', 'billing')).toEqual({
      v: expect.any(Number),
      s: expect.any(String),
    });
  });

  it("lets a warden work from memory, logging the store's error", async () => {
    const logs: LogRecord[] = [];
    const warden = createWarden({ store: indexedDbStore(), logger: (line) => logs.push(line) });
    let calls = 0;
    const credential = warden.register('svc', {
      source: customSource(async () => ({ accessToken: `tw-memory-${++calls}-xx`, expiresIn: 60 })),
      origins: [],
    });
    expect((await credential.getToken()).reveal()).toBe('tw-memory-1-xx');
    expect((await credential.getToken()).reveal()).toBe('tw-memory-1-xx');
    expect(logs.some((line) => line.level === 'error' && /store/.test(line.message))).toBe(true);
    await warden.close?.();
  });
});

describe("indexedDbStore({ fallback: 'memory' })", () => {
  it('behaves as a memory store and reports the fallback once', async () => {
    const reported: TokenWardenError[] = [];
    const store = indexedDbStore({ fallback: 'memory', onFallback: (e) => reported.push(e) });
    expect(store.kind).toBe('indexeddb');
    await store.set('billing', sentinelRecord());
    expect((await store.get('billing'))?.tokens.revealRefreshToken()).toBe(
      sentinelRecord().tokens.revealRefreshToken(),
    );
    expect(await store.list()).toEqual(['billing']);
    await store.rotateKey();
    await store.delete('billing');
    expect(await store.list()).toEqual([]);
    expect(store.kind).toBe('memory');
    expect(JSON.stringify(store)).toBe('{"kind":"memory","sealed":false,"key":"[REDACTED]"}');
    expect(reported.map((e) => e.code)).toEqual(['ERR_UNSUPPORTED']);
    await store.close?.();
  });

  it('warns on the console by default', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const store = indexedDbStore({ fallback: 'memory' });
    await store.list();
    await store.list();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/^tokenwarden: ERR_UNSUPPORTED: .*memory only/);
  });

  it('falls back too where crypto.subtle is missing', async () => {
    freshIndexedDb();
    withoutSubtle();
    const reported: string[] = [];
    const store = indexedDbStore({ fallback: 'memory', onFallback: (e) => reported.push(e.code) });
    await store.set('billing', sentinelRecord());
    expect(await store.list()).toEqual(['billing']);
    expect(reported).toEqual(['ERR_UNSUPPORTED']);
  });

  it('falls back where IndexedDB exists but cannot be opened (private modes)', async () => {
    freshIndexedDb();
    vi.spyOn(indexedDB, 'open').mockImplementation(() => {
      throw new DOMException('A mutation operation was attempted', 'InvalidStateError');
    });
    const reported: string[] = [];
    const store = indexedDbStore({ fallback: 'memory', onFallback: (e) => reported.push(e.code) });
    await store.set('billing', sentinelRecord());
    expect(await store.list()).toEqual(['billing']);
    expect(store.kind).toBe('memory');
    expect(reported).toEqual(['ERR_STORE_UNAVAILABLE']);
  });

  it('uses IndexedDB where it works, and never calls onFallback', async () => {
    freshIndexedDb();
    const onFallback = vi.fn();
    const store = indexedDbStore({ fallback: 'memory', onFallback });
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('billing', sentinelRecord());
    expect(store.kind).toBe('indexeddb');
    expect(await rawGet('tokenwarden', 'records', 'billing')).toEqual({
      v: expect.any(Number),
      s: expect.any(String),
    });
    await store.rotateKey();
    expect((await indexedDbStore().get('billing'))?.tokens.revealAccessToken()).toBe(
      sentinelRecord().tokens.revealAccessToken(),
    );
    expect(onFallback).not.toHaveBeenCalled();
    // Hooks reach the sealed store behind the fallback wrapper.
    await rawPut('tokenwarden', 'records', 'billing', 'x.y.z');
    expect(await store.get('billing')).toBeUndefined();
    expect(tampered).toEqual(['billing']);
    await store.close?.();
  });
});
