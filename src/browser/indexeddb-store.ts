import { clear, del, get, keys, set } from 'idb-keyval';
import { invalidArgument, TokenWardenError } from '../errors.js';
import { INSPECT, REDACTED } from '../internal/redact.js';
import { memoryStore } from '../stores/memory.js';
import { type SealedStore, sealedStore } from '../stores/sealed.js';
import type { RecordBackend, StoreLease, StoreLockOptions, TokenStore } from '../stores/types.js';
import { createAnnouncer } from './channel.js';
import { type Connection, inTransaction, openConnection } from './connection.js';
import { createIndexedDbKey, databaseOption, errorName } from './indexeddb-key.js';
import { LEASE_STORE, leaseLock, lockDatabaseName } from './lease-lock.js';
import { missingFeatures, webLocks } from './support.js';
import { webLock } from './web-lock.js';

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
 * Tabs of one origin that use the same database share each credential and refresh it once:
 *
 * - **Lock.** A refresh runs under an exclusive Web Lock (`navigator.locks`) named
 *   `tokenwarden:<name>:<id>`; after taking it a tab re-reads the record and uses a token that
 *   another tab obtained meanwhile instead of redeeming the refresh token again. The browser
 *   releases the locks of a tab that closes or crashes. A holder that is alive but stuck loses
 *   its lock after the credential's `lockTtl` (its token request is aborted); a lock is never
 *   stolen from a live holder, and a tab that waited twice `lockTtl` gives up with
 *   `ERR_LOCK_TIMEOUT` and retries with backoff.
 * - **Without Web Locks** (Safari before 15.4, some web views) the lock is a lease record in the
 *   database `<name>-locks`, taken in one readwrite transaction (free, expired or already ours:
 *   take it) and polled with jittered backoff. IndexedDB runs such transactions one at a time
 *   across tabs, so still only one tab redeems a refresh token; a tab that dies holding the lease
 *   delays the others until it expires (`lockTtl`).
 * - **Versions.** Every record carries a version that grows with each write; the warden writes
 *   with compare-and-swap (read and write in one transaction), so an older token set never
 *   overwrites a newer one. Records written by earlier versions of this store (plain strings)
 *   are still read.
 * - **Announcements.** Every write is announced on the BroadcastChannel `tokenwarden:<name>` as
 *   the sealed record (never a token; the other tabs open it with the shared key), and every
 *   delete the warden asks for (`forget()`, `revoke()`) as a delete: the other tabs take over the
 *   new token without a request, or sign out at once. Records discarded as tampered are removed
 *   without an announcement.
 *
 * Importing `tokenwarden/browser` never fails; where IndexedDB or WebCrypto is missing the
 * store fails when used, with `ERR_UNSUPPORTED`, unless `fallback: 'memory'` is set.
 *
 * @param options - Database name and fallback.
 * @returns A {@link SealedStore} of kind `indexeddb` (`memory` after a fallback).
 * @throws {@link index!InvalidArgumentError} `ERR_INVALID_ARGUMENT` for invalid options. Its
 *   methods reject with `ERR_UNSUPPORTED` where IndexedDB or WebCrypto is missing (unless
 *   `fallback: 'memory'`),
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
  const backend = indexedDbBackend(name, keys.connection);
  const sealed = sealedStore(backend, keys.provider);
  // The sealed layer also removes records it discards (tampered, sealed under a lost key); only a
  // delete the warden asks for (a sign-out, a revocation, a new sign-in) is announced, so that a
  // damaged record costs the other tabs a re-read, not their session.
  sealed.delete = (id) => backend.deleteAndAnnounce(id);
  const lock = sealed.lock;
  Object.defineProperty(sealed, 'lock', {
    configurable: true,
    enumerable: true,
    // Where IndexedDB or WebCrypto is missing nothing is stored, so nothing is shared with other
    // tabs: the store has no lock, and a warden refreshes from memory as with any store without
    // one. Where they exist, a lock that cannot be taken fails the refresh (retried later)
    // rather than letting it run unlocked beside another tab's.
    get: () => (missingFeatures().length === 0 ? lock : undefined),
  });
  return fallback === 'memory' ? withMemoryFallback(sealed, backend, onFallback) : sealed;
}

const RECORD_STORE = 'records';

/** A record as stored: its sealed string and its version. */
interface VersionedValue {
  readonly v: number;
  readonly s: string;
}

/** A stored record, read. */
interface Found {
  readonly sealed: string;
  readonly version: number;
}

/** The IndexedDB backend, with the delete that tells the other tabs. */
interface IndexedDbBackend extends RecordBackend {
  deleteAndAnnounce(id: string): Promise<void>;
}

/**
 * The record backend: sealed strings keyed by credential id, in one object store, with versions;
 * the refresh lock (Web Locks, or leases in IndexedDB where they are missing); announcements on a
 * BroadcastChannel.
 */
function indexedDbBackend(name: string, keyConnection: Connection): IndexedDbBackend {
  const records = openConnection(name, RECORD_STORE);
  const leases = openConnection(lockDatabaseName(name), LEASE_STORE);
  const announcer = createAnnouncer(name);
  let locks: ((id: string, options: StoreLockOptions) => Promise<StoreLease>) | undefined;

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

  const runKeys = async <T>(operation: Parameters<Connection['run']>[0]): Promise<T> => {
    try {
      return (await keyConnection.run(operation)) as T;
    } catch (error) {
      if (error instanceof TokenWardenError) throw error;
      throw new TokenWardenError(
        'ERR_STORE_UNAVAILABLE',
        `The IndexedDB key database could not be used (${errorName(error)}). Check that the site may use storage and has quota left.`,
        { cause: error },
      );
    }
  };

  const corrupt = () =>
    new TokenWardenError(
      'ERR_STORE_CORRUPT',
      `The IndexedDB database "${records.database}" holds a record that is not a sealed record.`,
    );

  const readFound = async (id: string): Promise<Found | undefined> => {
    const value = await run<unknown>((store) => get(id, store));
    const found = parseValue(value);
    // Only sealed records are ever written here: anything else was not written by tokenwarden.
    if (found === null) throw corrupt();
    return found;
  };

  /** Writes each record with the next version, in one transaction; the versions written. */
  const writeAll = (entries: readonly (readonly [string, string])[]) =>
    run<number[]>((use) =>
      use('readwrite', (store) =>
        inTransaction<number[]>(store, (settle) => {
          const versions: number[] = [];
          settle(versions);
          const nextVersion = versioner(store);
          entries.forEach(([id, sealed], i) => {
            const read = store.get(id);
            read.onsuccess = () => {
              const version = nextVersion(parseValue(read.result));
              versions[i] = version;
              store.put({ v: version, s: sealed } satisfies VersionedValue, id);
            };
          });
        }),
      ),
    );

  /** Deletes a record; the version it had. */
  const removeRecord = (id: string) =>
    run<number | undefined>((use) =>
      use('readwrite', (store) =>
        inTransaction<number | undefined>(store, (settle) => {
          const read = store.get(id);
          read.onsuccess = () => {
            settle(parseValue(read.result)?.version);
            store.delete(id);
          };
        }),
      ),
    );

  return {
    kind: 'indexeddb',
    async read(id) {
      return (await readFound(id))?.sealed;
    },
    readVersioned: (id) => readFound(id),
    async write(id, sealed) {
      const [version] = await writeAll([[id, sealed]]);
      announcer.announce({ id, version: version as number, sealed });
      return version;
    },
    async writeMany(sealed) {
      const entries = [...sealed];
      const versions = await writeAll(entries);
      entries.forEach(([id, value], i) => {
        announcer.announce({ id, version: versions[i] as number, sealed: value });
      });
    },
    async compareAndWrite(id, sealed, expected) {
      const outcome = await run<{ version: number; wrote: boolean } | false>((use) =>
        use('readwrite', (store) =>
          inTransaction<{ version: number; wrote: boolean } | false>(store, (settle) => {
            const nextVersion = versioner(store);
            const read = store.get(id);
            read.onsuccess = () => {
              // A value tokenwarden did not write counts as no record: it is never read as one.
              const current = parseValue(read.result) ?? undefined;
              if ((current?.version ?? null) !== expected) {
                // The connection can fail after a commit, and the write then run again: finding
                // its own sealed record (a random IV makes each one unique) is success.
                settle(
                  current?.sealed === sealed ? { version: current.version, wrote: false } : false,
                );
                return;
              }
              const version = nextVersion(current);
              store.put({ v: version, s: sealed } satisfies VersionedValue, id);
              settle({ version, wrote: true });
            };
          }),
        ),
      );
      if (outcome === false) return false;
      if (outcome.wrote) announcer.announce({ id, version: outcome.version, sealed });
      return outcome.version;
    },
    async remove(id) {
      await removeRecord(id);
    },
    // DPoP key pairs live beside the sealing key, as CryptoKeys: structured cloning keeps a
    // non-extractable private key non-extractable, so no script can ever export it.
    async writeKeyPair(id, pair) {
      await runKeys((store) => set(dpopKeyName(id), pair, store));
    },
    async readKeyPair(id) {
      const value = await runKeys((store) => get<unknown>(dpopKeyName(id), store));
      return isKeyPair(value) ? value : undefined;
    },
    async removeKeyPair(id) {
      await runKeys((store) => del(dpopKeyName(id), store));
    },
    async deleteAndAnnounce(id) {
      let version: number | undefined;
      try {
        version = await removeRecord(id);
        await runKeys((store) => del(dpopKeyName(id), store));
      } finally {
        // Announced even when the delete failed: the other tabs sign out as asked.
        announcer.announce(
          version === undefined ? { id, deleted: true } : { id, deleted: true, version },
        );
      }
    },
    async ids() {
      const stored = await run<IDBValidKey[]>((store) => keys(store));
      return stored.filter((key): key is string => typeof key === 'string');
    },
    clear: () => run((store) => clear(store)),
    lock(id, options) {
      // Chosen once per store: every tab of a browser has the same API, so all take the same lock.
      locks ??= lockStrategy(name, leases);
      return locks(id, options);
    },
    watch: (id, listener) => announcer.watch(id, listener),
    async close() {
      announcer.close();
      records.close();
      leases.close();
      keyConnection.close();
    },
  };
}

/** Web Locks where the browser has them, else leases in IndexedDB. */
function lockStrategy(
  name: string,
  leases: Connection,
): (id: string, options: StoreLockOptions) => Promise<StoreLease> {
  const locks = webLocks();
  if (locks) return (id, options) => webLock(locks, webLockName(name, id), options);
  const fallback = leaseLock(leases);
  return (id, options) => fallback.acquire(id, options);
}

/** The Web Lock of credential `id` in the database `name`. */
export function webLockName(name: string, id: string): string {
  return `tokenwarden:${name}:${id}`;
}

/**
 * A stored value as a record: `{ v, s }`, or a plain sealed string as written by versions of this
 * store before records had versions (version 0). `undefined` when absent, `null` when it is
 * neither.
 */
function parseValue(value: unknown): Found | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return { sealed: value, version: 0 };
  if (typeof value === 'object' && value !== null) {
    const { v, s } = value as Partial<VersionedValue>;
    if (typeof s === 'string' && typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
      return { sealed: s, version: v };
    }
  }
  return null;
}

/**
 * Where the records store keeps the highest version it has handed out. Not a string, so never
 * listed as a credential id.
 */
const VERSION_MARK = ['tokenwarden', 'version'];

/**
 * Hands out the versions of the writes of one readwrite transaction (call it before reading the
 * records): each is higher than every version the database ever gave, deleted records included,
 * so a record written after a sign-out never repeats a version of the one signed out of. A writer
 * holding a version read before can never match it, and the other tabs never take its
 * announcements for old ones. The first version of a database (or after it was cleared) is the
 * time in microseconds, above what it held before.
 */
function versioner(store: IDBObjectStore): (current: Found | undefined | null) => number {
  const mark = store.get(VERSION_MARK);
  let highest: number | undefined;
  return (current) => {
    // Requests of a transaction complete in order: the mark was read before any record after it.
    const stored = Number.isSafeInteger(mark.result) ? (mark.result as number) : undefined;
    const floor = Math.max(highest ?? stored ?? 0, current?.version ?? 0);
    const version =
      highest === undefined && stored === undefined
        ? Math.max(Date.now() * 1_000, floor + 1)
        : floor + 1;
    highest = version;
    store.put(version, VERSION_MARK);
    return version;
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
    // Both targets keep DPoP key pairs as CryptoKeys.
    keepsCryptoKeys: true,
    get: async (id) => (await target()).get(id),
    set: async (id, record, options) => (await target()).set(id, record, options),
    delete: async (id) => (await target()).delete(id),
    list: async () => (await target()).list(),
    // Both targets have a lock: the sealed store's is shared by the tabs, the memory store's by
    // the credentials of this page (whose tokens are all it holds).
    lock: async (id, options) => {
      const current = await target();
      return (current.lock as NonNullable<TokenStore['lock']>)(id, options);
    },
    watch(id, listener) {
      let stop: (() => void) | undefined;
      let stopped = false;
      target().then(
        (current) => {
          if (!stopped) stop = current.watch?.(id, listener);
        },
        () => {},
      );
      return () => {
        stopped = true;
        stop?.();
      };
    },
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

/** Where the DPoP key pair of credential `id` is kept in the key database. */
function dpopKeyName(id: string): string {
  return `dpop:${id}`;
}

function isKeyPair(value: unknown): value is CryptoKeyPair {
  if (typeof value !== 'object' || value === null) return false;
  const { privateKey, publicKey } = value as Partial<CryptoKeyPair>;
  return (
    typeof CryptoKey === 'function' &&
    privateKey instanceof CryptoKey &&
    publicKey instanceof CryptoKey &&
    privateKey.type === 'private' &&
    publicKey.type === 'public'
  );
}
