import type { DpopKey } from '../dpop/key.js';
import type { TokenSet } from '../token.js';

/**
 * What tokenwarden records about a credential's use next to its tokens. Persisted in batches,
 * never with a write per request.
 *
 * @example
 * ```ts
 * const record = await store.get('billing');
 * console.log(record?.meta.uses, new Date(record?.meta.lastUsedAt ?? 0));
 * ```
 */
export interface RecordMeta {
  /** When the credential first stored a token set, epoch ms. */
  readonly createdAt: number;
  /** When the current token set was obtained, epoch ms. */
  readonly refreshedAt: number;
  /** When a request last carried the token, epoch ms. */
  readonly lastUsedAt?: number;
  /** How many requests carried a token of this credential, over its life. */
  readonly uses: number;
  /** How many token sets the credential obtained, over its life. */
  readonly refreshes: number;
}

/**
 * One credential's stored state: its token set and its usage metadata.
 *
 * @example
 * ```ts
 * const record: StoredRecord | undefined = await store.get('billing');
 * if (record) console.log(record.tokens.expiresAt, record.meta.refreshes);
 * ```
 */
export interface StoredRecord {
  /** The token set. */
  readonly tokens: TokenSet;
  /** Usage metadata. */
  readonly meta: RecordMeta;
  /**
   * The DPoP key pair the tokens are bound to, when the credential is DPoP-bound. Stores keep it
   * with the tokens, so that every tab or instance sharing the record signs with the same key:
   * sealed stores seal its private JWK with the tokens; the IndexedDB store keeps a
   * non-extractable key pair as it is.
   */
  readonly dpopKey?: DpopKey;
  /**
   * The record's version in a store that supports compare-and-swap (the fencing version): it
   * grows with every write. Set by the store on read; ignored on write.
   */
  readonly version?: number;
}

/**
 * Options of a {@link TokenStore} write.
 *
 * @example
 * ```ts
 * const current = await store.get('billing');
 * await store.set('billing', next, { expectedVersion: current?.version ?? null });
 * ```
 */
export interface StoreWriteOptions {
  /**
   * Write only if the stored record still has this version (`null`: only if there is none);
   * otherwise fail with `ERR_STORE_CONFLICT`, so an older writer never overwrites a newer token
   * set. Stores without versions ignore it.
   * @default undefined (unconditional)
   */
  expectedVersion?: number | null;
}

/**
 * A held store lock. Release it in a `finally`.
 *
 * @example
 * ```ts
 * const lease = await store.lock!('billing', { ttlMs: 30_000 });
 * try { await refreshUnderLock(); } finally { await lease.release(); }
 * ```
 */
export interface StoreLease {
  /** Aborted if the lock was lost before release (it expired, or its backend went away). */
  readonly signal: AbortSignal;
  /**
   * Releases the lock if this lease still holds it (compare-and-delete).
   * @throws {@link TokenWardenError} `ERR_STORE_UNAVAILABLE` when the lock's backend (Redis) cannot
   * be reached; the lock then ends with its TTL.
   */
  release(): Promise<void>;
}

/**
 * Options of {@link TokenStore.lock}.
 *
 * @example
 * ```ts
 * const lease = await store.lock!('billing', { ttlMs: 45_000, signal: AbortSignal.timeout(60_000) });
 * ```
 */
export interface StoreLockOptions {
  /** How long the lock lives if its holder dies without releasing it, in milliseconds. */
  ttlMs: number;
  /**
   * Stop waiting for the lock.
   * @default undefined (wait until the store grants the lock or gives up)
   */
  signal?: AbortSignal;
}

/**
 * A change another tab, process or instance made to a record, as announced by the store.
 * `record` is `undefined` when the record was deleted (a logout or revocation elsewhere).
 *
 * @example
 * ```ts
 * store.watch?.('billing', ({ record }) => console.log(record ? 'rotated elsewhere' : 'signed out'));
 * ```
 */
export interface StoreChange {
  /** The credential id. */
  readonly id: string;
  /** The new record, or `undefined` after a delete. */
  readonly record: StoredRecord | undefined;
}

/**
 * What a store reports to the warden that uses it.
 *
 * @example
 * ```ts
 * store.bind?.({ tamper: (id) => console.warn(`record of ${id} failed its integrity check`) });
 * ```
 */
export interface StoreHooks {
  /**
   * A record failed its integrity check (or could not be read) and was discarded.
   * @param id - The credential id of the record.
   * @throws Never: stores ignore what a hook throws.
   */
  tamper(id: string): void;
}

/**
 * The store contract: a small async key-value interface for credential records, keyed by
 * credential id. Persistent stores seal every record with the encryption envelope (see
 * {@link sealedStore}); the memory store keeps objects as they are.
 *
 * @example
 * ```ts
 * import { createWarden, memoryStore } from 'tokenwarden';
 * const warden = createWarden({ store: memoryStore() });
 * ```
 */
export interface TokenStore {
  /** A short name for events and inventories, e.g. `memory`, `file`, `indexeddb`. */
  readonly kind: string;
  /**
   * Whether the store keeps a record's {@link StoredRecord.dpopKey} as the CryptoKey pair it is
   * (IndexedDB), so DPoP keys can be non-extractable. Stores that seal the private key as a JWK
   * leave it unset: their DPoP keys are generated extractable.
   * @default false
   */
  readonly keepsCryptoKeys?: boolean;
  /**
   * Reads a credential's record.
   * @param id - The credential id.
   * @returns The record, or `undefined` when absent, unreadable or tampered with (never thrown).
   * @throws {@link TokenWardenError} `ERR_STORE_UNAVAILABLE` when the storage cannot be read (an
   * I/O error, Redis not answering, a locked keychain), `ERR_KEY_UNAVAILABLE` when a sealed store
   * has no usable key (or, in a shared store, the record is sealed under a key this instance
   * lacks), `ERR_UNSUPPORTED` when the runtime lacks what the store needs.
   */
  get(id: string): Promise<StoredRecord | undefined>;
  /**
   * Writes a credential's record; resolves once the write is durable.
   * @param id - The credential id.
   * @param record - The record.
   * @param options - A compare-and-swap condition, for stores with versions.
   * @returns The record's new version, in stores that have versions.
   * @throws {@link TokenWardenError} `ERR_STORE_CONFLICT` when `expectedVersion` no longer holds,
   * `ERR_UNSUPPORTED` when the store cannot keep the record's non-extractable DPoP key, and the
   * codes of {@link TokenStore.get} when the storage or the key cannot be used.
   */
  set(id: string, record: StoredRecord, options?: StoreWriteOptions): Promise<number | undefined>;
  /**
   * Removes a credential's record.
   * @param id - The credential id.
   * @throws {@link TokenWardenError} `ERR_STORE_UNAVAILABLE` when the storage cannot be written,
   * `ERR_UNSUPPORTED` when the runtime lacks what the store needs.
   */
  delete(id: string): Promise<void>;
  /**
   * Lists the ids that have a record.
   * @returns The ids.
   * @throws {@link TokenWardenError} `ERR_STORE_UNAVAILABLE` when the storage cannot be read,
   * `ERR_UNSUPPORTED` when the runtime lacks what the store needs.
   */
  list(): Promise<string[]>;
  /**
   * Takes the lock that serialises refreshes of one credential across every tab, process or
   * instance sharing this store. Optional: stores without it refresh per process.
   * @param id - The credential id.
   * @param options - TTL and an abort signal.
   * @returns The lease.
   * @throws {@link TokenWardenError} `ERR_LOCK_TIMEOUT` / `ERR_ABORTED` when the wait ends,
   * `ERR_INVALID_ARGUMENT` for a TTL that is not positive, `ERR_STORE_UNAVAILABLE` when a shared
   * lock (a file, Redis) cannot be used, `ERR_CLOSED` when the store closes during the wait.
   */
  lock?(id: string, options: StoreLockOptions): Promise<StoreLease>;
  /**
   * Subscribes to changes other tabs or processes make to a record. Optional.
   * @param id - The credential id.
   * @param listener - Called with each change (never for this store object's own writes).
   * @returns A function that unsubscribes.
   * @throws Never: a change that cannot be read is dropped.
   */
  watch?(id: string, listener: (change: StoreChange) => void): () => void;
  /**
   * Receives the warden's hooks (tamper reports). Optional.
   * @param hooks - The hooks.
   * @throws Never.
   */
  bind?(hooks: StoreHooks): void;
  /**
   * Re-encrypts every record under a new key. Optional: only sealed stores have keys.
   * @returns Once every record is re-sealed.
   * @throws {@link TokenWardenError} the codes of {@link KeyProvider.rotate} (`ERR_INVALID_ARGUMENT`
   * when the provider needs new key bytes, `ERR_KEY_UNAVAILABLE`) and of {@link TokenStore.get}
   * and {@link TokenStore.set} when a record cannot be read or written (`ERR_STORE_UNAVAILABLE`).
   */
  rotateKey?(): Promise<void>;
  /**
   * Releases resources (connections, handles). Optional.
   * @throws Never, in the built-in stores.
   */
  close?(): Promise<void>;
}

/**
 * A sealed record with the version a backend keeps beside it.
 *
 * @example
 * ```ts
 * const found: VersionedRecord | undefined = await backend.readVersioned?.('billing');
 * ```
 */
export interface VersionedRecord {
  /** The sealed record (a compact JWE). */
  readonly sealed: string;
  /** Its version: it grows with every write. */
  readonly version: number;
}

/**
 * Where a sealed store keeps its sealed records: opaque strings (compact JWEs) keyed by
 * credential id. Backends never see a token; encryption happens above them.
 *
 * @example
 * ```ts
 * const records = new Map<string, string>();
 * const backend: RecordBackend = {
 *   kind: 'map',
 *   read: async (id) => records.get(id),
 *   write: async (id, sealed) => void records.set(id, sealed),
 *   remove: async (id) => void records.delete(id),
 *   ids: async () => [...records.keys()],
 *   clear: async () => records.clear(),
 * };
 * ```
 */
export interface RecordBackend {
  /** A short name for events and inventories. */
  readonly kind: string;
  /**
   * Whether other processes share this backend (a file store, Redis). A record under a key this
   * instance does not hold is then another instance's, or this one is misconfigured: it is kept,
   * and reading it fails with `ERR_KEY_UNAVAILABLE`, instead of being deleted as a lost key's.
   * A key provider with no usable key does not wipe a shared backend either.
   * @default false
   */
  readonly shared?: boolean;
  /**
   * Optional: keeps a credential's DPoP key pair as it is, CryptoKeys included (IndexedDB can,
   * so the private key stays non-extractable). A store over such a backend generates
   * non-extractable DPoP keys; the sealed record then carries only the key's thumbprint, which
   * binds the two.
   * @param id - The credential id.
   * @param pair - The key pair.
   */
  writeKeyPair?(id: string, pair: CryptoKeyPair): Promise<void>;
  /**
   * Reads a key pair {@link RecordBackend.writeKeyPair} kept.
   * @param id - The credential id.
   * @returns The key pair, or `undefined`.
   */
  readKeyPair?(id: string): Promise<CryptoKeyPair | undefined>;
  /**
   * Removes a kept key pair (with the record).
   * @param id - The credential id.
   */
  removeKeyPair?(id: string): Promise<void>;
  /**
   * Reads one sealed record.
   * @param id - The credential id.
   * @returns The sealed record, or `undefined`.
   * @throws {@link TokenWardenError} `ERR_STORE_CORRUPT` when the backing data cannot be parsed
   *   (the sealed store then wipes the backend and reports tamper).
   */
  read(id: string): Promise<string | undefined>;
  /**
   * Writes one sealed record durably.
   * @param id - The credential id.
   * @param sealed - The sealed record.
   * @returns The record's new version, in backends that have versions.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a backend written as `async write() {}` resolves to void.
  write(id: string, sealed: string): Promise<number | undefined | void>;
  /**
   * Writes many sealed records at once (all or nothing where the backend can). Optional: the
   * sealed store falls back to one `write` per record.
   * @param records - The records by id.
   */
  writeMany?(records: ReadonlyMap<string, string>): Promise<void>;
  /**
   * Removes one record.
   * @param id - The credential id.
   */
  remove(id: string): Promise<void>;
  /**
   * Lists the ids that have a record.
   * @returns The ids.
   */
  ids(): Promise<string[]>;
  /** Removes every record. */
  clear(): Promise<void>;
  /**
   * Reads one sealed record with its version. Optional: with {@link RecordBackend.compareAndWrite},
   * it gives the sealed store compare-and-swap writes.
   * @param id - The credential id.
   * @returns The sealed record and its version, or `undefined`.
   */
  readVersioned?(id: string): Promise<VersionedRecord | undefined>;
  /**
   * Writes one sealed record if the stored version is still `expected` (`null`: no record).
   * @param id - The credential id.
   * @param sealed - The sealed record.
   * @param expected - The version the writer last read.
   * @returns The new version, or `false` when the condition failed.
   */
  compareAndWrite?(id: string, sealed: string, expected: number | null): Promise<number | false>;
  /**
   * Takes the per-credential refresh lock. Optional; see {@link TokenStore.lock}.
   * @param id - The credential id.
   * @param options - TTL and an abort signal.
   * @returns The lease.
   */
  lock?(id: string, options: StoreLockOptions): Promise<StoreLease>;
  /**
   * Announces changes made elsewhere: the new sealed record (with its version, where the
   * backend has versions), or `undefined` after a delete. Optional; see {@link TokenStore.watch}.
   * @param id - The credential id.
   * @param listener - Called with each sealed record announced, or `undefined` after a delete.
   * @returns A function that unsubscribes.
   */
  watch?(id: string, listener: (sealed: string | undefined, version?: number) => void): () => void;
  /** Releases resources. Optional. */
  close?(): Promise<void>;
}
