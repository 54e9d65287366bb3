import { clear, del, get, keys, set, setMany } from 'idb-keyval';
import { invalidArgument, TokenWardenError } from '../errors.js';
import { INSPECT, REDACTED } from '../internal/redact.js';
import { memoryStore } from '../stores/memory.js';
import { type SealedStore, sealedStore } from '../stores/sealed.js';
import type { RecordBackend, TokenStore } from '../stores/types.js';
import { type Connection, openConnection } from './connection.js';
import { createIndexedDbKey, databaseOption, errorName } from './indexeddb-key.js';

/**
 * Options of {@link indexedDbStore}.
 *
 * @example
 * ```ts
 * import { indexedDbStore, type IndexedDbStoreOptions } from 'tokenwarden/browser';
 * const options: IndexedDbStoreOptions = {
 *   name: 'my-app',
 *   fallback: 'memory',
 *   onFallback: (error) => telemetry.warn(error.code),
 * };
 * const store = indexedDbStore(options);
 * ```
 */
export interface IndexedDbStoreOptions {
  /**
   * The IndexedDB database of the sealed records. The key lives apart, in the database
   * `` `${name}-keys` ``. Give each application on one origin its own name.
   * @default 'tokenwarden'
   */
  name?: string | undefined;
  /**
   * What the store does where it cannot work: IndexedDB or WebCrypto missing (some private
   * browsing modes, insecure `http:` pages, old embedded web views) or IndexedDB failing to
   * open. Decided once, at the store's first use.
   *
   * - `'error'`: every operation rejects with a {@link TokenWardenError} `ERR_UNSUPPORTED`
   *   (or `ERR_STORE_UNAVAILABLE` when the database cannot be opened). A warden using the store
   *   logs the failure and keeps tokens in memory for the page's lifetime.
   * - `'memory'`: the store behaves as {@link memoryStore} (tokens last until the page
   *   unloads; `kind` becomes `'memory'`) and `onFallback` is called once.
   * @default 'error'
   */
  fallback?: 'error' | 'memory' | undefined;
  /**
   * Called once when `fallback: 'memory'` takes effect, with the error the store would
   * otherwise have thrown.
   * @default a `console.warn` of the error's code and message
   */
  onFallback?: ((error: TokenWardenError) => void) | undefined;
}

/**
 * A persistent browser store: each credential's token set, sealed (JWE, AES-256-GCM, the
 * credential id bound into the protected header) in IndexedDB, under a non-extractable
 * WebCrypto key that is itself kept in IndexedDB by structured clone (see
 * {@link indexedDbKey}). Tokens survive reloads and browser restarts, and no stored byte holds
 * a token in any encoding; the key cannot be exported, even by script in the page.
 *
 * A record that fails to open (edited, truncated, copied into another slot) is deleted and
 * reported as a `tamper` event, and the credential fetches a fresh token. Connections that the
 * browser closes, or that another tab needs closed for an upgrade, are reopened on the next
 * operation. Writes use strict durability.
 *
 * Importing `tokenwarden/browser` never fails; where IndexedDB or WebCrypto is missing the
 * store fails when used, with `ERR_UNSUPPORTED`, unless `fallback: 'memory'` is set.
 *
 * @param options - Database name and fallback.
 * @returns A {@link SealedStore} of kind `indexeddb` (`memory` after a fallback).
 * @throws {@link index!InvalidArgumentError} for invalid options. Its methods reject with
 *   `ERR_UNSUPPORTED` where IndexedDB or WebCrypto is missing (unless `fallback: 'memory'`),
 *   `ERR_STORE_UNAVAILABLE` when IndexedDB fails, and `ERR_KEY_UNAVAILABLE` when the key cannot
 *   be read or created (the records are then wiped).
 * @example
 * ```ts
 * import { createWarden, refreshToken } from 'tokenwarden';
 * import { indexedDbStore } from 'tokenwarden/browser';
 * const warden = createWarden({ store: indexedDbStore({ fallback: 'memory' }) });
 * warden.on('tamper', ({ id }) => console.warn(`stored token of ${id} was discarded`));
 * const api = warden.register('api', {
 *   source: refreshToken({ issuer: 'https://auth.example.com', clientId: 'spa', refreshToken }),
 *   origins: ['https://api.example.com'],
 * });
 * ```
 */
export function indexedDbStore(options: IndexedDbStoreOptions = {}): SealedStore {
  const { name } = databaseOption(options, 'indexedDbStore');
  const fallback = options.fallback ?? 'error';
  if (fallback !== 'error' && fallback !== 'memory') {
    throw invalidArgument(`indexedDbStore: fallback must be 'error' or 'memory'.`);
  }
  const onFallback = options.onFallback ?? warn;
  if (typeof onFallback !== 'function') {
    throw invalidArgument('indexedDbStore: onFallback must be a function.');
  }
  const keys = createIndexedDbKey(name);
  const records = openConnection(name, RECORD_STORE);
  const backend = indexedDbBackend(records, keys.connection);
  const sealed = sealedStore(backend, keys.provider);
  return fallback === 'memory' ? withMemoryFallback(sealed, backend, onFallback) : sealed;
}

const RECORD_STORE = 'records';

/** The record backend: sealed strings keyed by credential id, in one object store. */
function indexedDbBackend(records: Connection, keyConnection: Connection): RecordBackend {
  const run = async <T>(operation: Parameters<Connection['run']>[0]): Promise<T> => {
    try {
      return (await records.run(operation)) as T;
    } catch (error) {
      if (error instanceof TokenWardenError) throw error;
      throw new TokenWardenError(
        'ERR_STORE_UNAVAILABLE',
        `The IndexedDB database "${records.database}" could not be used (${errorName(error)}). Check that the site may use storage and has quota left.`,
        { cause: error },
      );
    }
  };
  return {
    kind: 'indexeddb',
    async read(id) {
      const value = await run<unknown>((store) => get(id, store));
      if (value === undefined || typeof value === 'string') return value;
      // Only sealed strings are ever written here: anything else was not written by tokenwarden.
      throw new TokenWardenError(
        'ERR_STORE_CORRUPT',
        `The IndexedDB database "${records.database}" holds a record that is not a sealed string.`,
      );
    },
    write: (id, sealed) => run((store) => set(id, sealed, store)),
    writeMany: (sealed) => run((store) => setMany([...sealed], store)),
    remove: (id) => run((store) => del(id, store)),
    async ids() {
      const stored = await run<IDBValidKey[]>((store) => keys(store));
      return stored.filter((key): key is string => typeof key === 'string');
    },
    clear: () => run((store) => clear(store)),
    async close() {
      records.close();
      keyConnection.close();
    },
  };
}

/** The sealed store, or a memory store where the sealed one cannot work, chosen at first use. */
function withMemoryFallback(
  sealed: SealedStore,
  backend: RecordBackend,
  onFallback: (error: TokenWardenError) => void,
): SealedStore {
  let chosen: Promise<TokenStore> | undefined;
  let fellBack = false;

  const target = (): Promise<TokenStore> => {
    chosen ??= backend.ids().then(
      () => sealed,
      (error: unknown) => {
        fellBack = true;
        const reason =
          error instanceof TokenWardenError
            ? error
            : new TokenWardenError('ERR_STORE_UNAVAILABLE', 'IndexedDB could not be used.', {
                cause: error,
              });
        try {
          onFallback(reason);
        } catch {
          // A failing callback must not make the fallback fail.
        }
        return memoryStore();
      },
    );
    return chosen;
  };

  const store: SealedStore = {
    get kind() {
      return fellBack ? 'memory' : sealed.kind;
    },
    get: async (id) => (await target()).get(id),
    set: async (id, record) => (await target()).set(id, record),
    delete: async (id) => (await target()).delete(id),
    list: async () => (await target()).list(),
    bind(next) {
      sealed.bind?.(next);
    },
    async rotateKey(next) {
      const current = await target();
      if (current === sealed) await sealed.rotateKey(next);
    },
    async close() {
      if (chosen) await (await chosen).close?.();
    },
  };
  return Object.defineProperties(store, {
    toString: { value: () => (fellBack ? 'memory store' : `${sealed}`) },
    toJSON: { value: () => ({ kind: store.kind, sealed: !fellBack, key: REDACTED }) },
    [INSPECT]: { value: () => `SealedStore { kind: '${store.kind}', key: [REDACTED] }` },
  });
}

function warn(error: TokenWardenError): void {
  console.warn(`tokenwarden: ${error.code}: ${error.message} Tokens are kept in memory only.`);
}
