// One IndexedDB object store as an idb-keyval custom store that survives lost connections.
//
// idb-keyval's own createStore() caches its connection promise and forgets it only on the
// `close` event, which browsers fire when *they* close a connection (Safari does so on its own,
// clearing site data does it everywhere). A connection that is closed without that event, or
// one that another tab asks to give way for an upgrade or deletion (`versionchange`), would stay
// cached and fail every later transaction with InvalidStateError, or block the other tab. This
// version steps aside on `versionchange`, reopens once when a transaction finds the connection
// gone, and asks for strict durability on writes, so a stored token set survives a power cut.
import { promisifyRequest, type UseStore } from 'idb-keyval';
import { requireSupport } from './support.js';

/** A reopening handle on one object store of one database. */
export interface Connection {
  /** The database name. */
  readonly database: string;
  /**
   * Runs one idb-keyval operation on the store. When it fails because the connection was
   * closed under it, the connection is reopened and the operation run once more, so operations
   * must be idempotent (get, put, delete, clear and idempotent updates are).
   */
  run<T>(operation: (store: UseStore) => Promise<T>): Promise<T>;
  /** Closes the connection; a later `run` opens a new one. */
  close(): void;
}

/** Errors a transaction raises when its connection was closed or is closing. */
const CLOSED_CONNECTION = new Set(['InvalidStateError', 'AbortError', 'UnknownError']);

/**
 * Opens (lazily) a database holding one object store, creating either when missing.
 * @throws {@link TokenWardenError} `ERR_UNSUPPORTED` from `run` where IndexedDB or WebCrypto is
 *   missing; other failures are the DOMExceptions IndexedDB raised.
 */
export function openConnection(database: string, storeName: string): Connection {
  let pending: Promise<IDBDatabase> | undefined;

  const forget = (opening: Promise<IDBDatabase>) => {
    if (pending === opening) pending = undefined;
  };

  const connect = (): Promise<IDBDatabase> => {
    if (pending) return pending;
    requireSupport();
    const opening = open(database, storeName).then((db) => {
      // The browser closed the connection (storage cleared, Safari's own housekeeping).
      db.addEventListener('close', () => forget(opening));
      // Another tab upgrades or deletes the database: give way instead of blocking it.
      db.addEventListener('versionchange', () => {
        db.close();
        forget(opening);
      });
      return db;
    });
    opening.catch(() => forget(opening));
    pending = opening;
    return opening;
  };

  const attempt = async <T>(operation: (store: UseStore) => Promise<T>): Promise<T> => {
    const opening = connect();
    const db = await opening;
    const use: UseStore = async (mode, callback) => {
      const durability: IDBTransactionDurability = mode === 'readwrite' ? 'strict' : 'default';
      // transaction() throws InvalidStateError on a connection closed without a `close` event.
      const store = db.transaction(storeName, mode, { durability }).objectStore(storeName);
      return callback(store);
    };
    try {
      return await operation(use);
    } catch (error) {
      if (isClosedConnection(error)) {
        forget(opening);
        db.close();
      }
      throw error;
    }
  };

  return {
    database,
    async run(operation) {
      try {
        return await attempt(operation);
      } catch (error) {
        if (!isClosedConnection(error)) throw error;
        return attempt(operation);
      }
    },
    close() {
      const opening = pending;
      pending = undefined;
      opening?.then(
        (db) => db.close(),
        () => {},
      );
    },
  };
}

function isClosedConnection(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    CLOSED_CONNECTION.has((error as { name?: unknown }).name as string)
  );
}

async function open(database: string, storeName: string): Promise<IDBDatabase> {
  const db = await request(indexedDB.open(database), storeName);
  if (db.objectStoreNames.contains(storeName)) return db;
  // The database exists without this store (made by an older layout or another library).
  const version = db.version + 1;
  db.close();
  return request(indexedDB.open(database, version), storeName);
}

function request(opening: IDBOpenDBRequest, storeName: string): Promise<IDBDatabase> {
  opening.onupgradeneeded = () => {
    const db = opening.result;
    if (!db.objectStoreNames.contains(storeName)) db.createObjectStore(storeName);
  };
  return promisifyRequest(opening);
}

/**
 * Runs `steps` on `store` inside its transaction and resolves once the transaction has committed,
 * with the value `steps` settled on (`undefined` if none). Reads and writes issued by `steps`,
 * including those issued from their success callbacks, are one atomic transaction: a readwrite
 * transaction on a store runs alone, in every tab. `fail` aborts the transaction (nothing it wrote
 * is kept) and rejects with the given error.
 */
export function inTransaction<T>(
  store: IDBObjectStore,
  steps: (settle: (value: T) => void, fail: (error: unknown) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const transaction = store.transaction;
    let value: T | undefined;
    let failure: { error: unknown } | undefined;
    const fail = (error: unknown) => {
      failure ??= { error };
      try {
        transaction.abort();
      } catch {
        // Already finished: the rejection below still reports the failure.
      }
    };
    transaction.oncomplete = () => (failure ? reject(failure.error) : resolve(value as T));
    transaction.onabort = () =>
      reject(
        failure ? failure.error : (transaction.error ?? new DOMException('aborted', 'AbortError')),
      );
    try {
      steps((settled) => {
        value = settled;
      }, fail);
    } catch (error) {
      fail(error);
    }
  });
}
