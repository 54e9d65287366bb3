// Helpers for unit tests of the browser stores over fake-indexeddb. Each test gets a fresh
// IDBFactory, so databases never leak from one test into the next.
import { IDBDatabase, IDBFactory } from 'fake-indexeddb';
import { vi } from 'vitest';
import type { StoredRecord } from '../../../src/stores/types.js';
import { TokenSet } from '../../../src/token.js';
import { SENTINEL } from '../../support/sentinel.js';

/** Installs a new, empty IndexedDB as the global `indexedDB`. */
export function freshIndexedDb(): IDBFactory {
  const factory = new IDBFactory();
  vi.stubGlobal('indexedDB', factory);
  return factory;
}

/** Opens a database directly, as another tab or a curious script would. */
export function rawOpen(name: string, version?: number): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = version === undefined ? indexedDB.open(name) : indexedDB.open(name, version);
    request.onsuccess = () => resolve(request.result as IDBDatabase);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error(`opening ${name} v${version} was blocked`));
  });
}

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Reads one value straight from an object store. */
export async function rawGet(database: string, store: string, key: string): Promise<unknown> {
  const db = await rawOpen(database);
  try {
    if (!db.objectStoreNames.contains(store)) return undefined;
    return await done(db.transaction(store).objectStore(store).get(key));
  } finally {
    db.close();
  }
}

/** Writes (or, with `undefined`, deletes) one value straight into an object store. */
export async function rawPut(
  database: string,
  store: string,
  key: string,
  value: unknown,
): Promise<void> {
  const db = await rawOpen(database);
  try {
    const objects = db.transaction(store, 'readwrite').objectStore(store);
    if (value === undefined) await done(objects.delete(key));
    else await done(objects.put(value, key));
  } finally {
    db.close();
  }
}

/**
 * Records every connection that runs a transaction, so that a test can close them as a browser
 * would, without the store being told.
 */
export function trackConnections(): Set<IDBDatabase> {
  const seen = new Set<IDBDatabase>();
  const original = IDBDatabase.prototype.transaction;
  vi.spyOn(IDBDatabase.prototype, 'transaction').mockImplementation(function (
    this: IDBDatabase,
    ...args: Parameters<IDBDatabase['transaction']>
  ) {
    seen.add(this);
    return original.apply(this, args);
  });
  return seen;
}

/** A record holding the sentinel tokens. */
export function sentinelRecord(access: string = SENTINEL.accessToken): StoredRecord {
  return {
    tokens: new TokenSet({
      accessToken: access,
      refreshToken: SENTINEL.refreshToken,
      expiresAt: Date.now() + 3_600_000,
      issuedAt: Date.now(),
      expirySource: 'expires_in',
    }),
    meta: { createdAt: 1, refreshedAt: 2, uses: 0, refreshes: 1 },
  };
}

/** Resolves once every promise in `count` callers has reached the barrier. */
export function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let release: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    release = resolve;
  });
  return () => {
    arrived++;
    if (arrived >= count) release();
    return all;
  };
}
