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
  /** A record failed its integrity check (or could not be read) and was discarded. */
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
   * Reads a credential's record.
   * @param id - The credential id.
   * @returns The record, or `undefined` when absent, unreadable or tampered with (never thrown).
   */
  get(id: string): Promise<StoredRecord | undefined>;
  /**
   * Writes a credential's record; resolves once the write is durable.
   * @param id - The credential id.
   * @param record - The record.
   */
  set(id: string, record: StoredRecord): Promise<void>;
  /**
   * Removes a credential's record.
   * @param id - The credential id.
   */
  delete(id: string): Promise<void>;
  /**
   * Lists the ids that have a record.
   * @returns The ids.
   */
  list(): Promise<string[]>;
  /**
   * Receives the warden's hooks (tamper reports). Optional.
   * @param hooks - The hooks.
   */
  bind?(hooks: StoreHooks): void;
  /**
   * Re-encrypts every record under a new key. Optional: only sealed stores have keys.
   * @returns Once every record is re-sealed.
   */
  rotateKey?(): Promise<void>;
  /** Releases resources (connections, handles). Optional. */
  close?(): Promise<void>;
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
   */
  write(id: string, sealed: string): Promise<void>;
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
  /** Releases resources. Optional. */
  close?(): Promise<void>;
}
