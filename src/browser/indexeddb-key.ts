import { get, update } from 'idb-keyval';
import { invalidArgument, TokenWardenError } from '../errors.js';
import {
  type KeyProvider,
  keyUnavailable,
  randomKid,
  redacted,
  type SealingKey,
} from '../stores/keys.js';
import { type Connection, openConnection } from './connection.js';

/**
 * Options of {@link indexedDbKey}.
 *
 * @example
 * ```ts
 * import { indexedDbKey, type IndexedDbKeyOptions } from 'tokenwarden/browser';
 * const options: IndexedDbKeyOptions = { name: 'my-app' }; // keys in database "my-app-keys"
 * const key = indexedDbKey(options);
 * ```
 */
export interface IndexedDbKeyOptions {
  /**
   * The name the key database is derived from: keys live in the IndexedDB database
   * `` `${name}-keys` ``, apart from any records.
   * @default 'tokenwarden'
   */
  name?: string | undefined;
}

/** The name of the key database of a store or key called `name`. */
export function keyDatabaseName(name: string): string {
  return `${name}-keys`;
}

/** The one entry of the key database: every key with its id, and which one is current. */
interface KeyRing {
  readonly v: 1;
  readonly current: string;
  readonly keys: readonly KeyEntry[];
}

interface KeyEntry {
  readonly kid: string;
  /** A non-extractable AES-GCM CryptoKey, stored by structured clone, never as bytes. */
  readonly key: CryptoKey;
  readonly createdAt: number;
}

const RING = 'ring';
const KEY_STORE = 'keys';

/** A key provider with a handle on its database, for the store that owns it. */
export interface OwnedKeyProvider {
  readonly provider: KeyProvider;
  readonly connection: Connection;
}

/**
 * A key provider whose AES-GCM keys are non-extractable WebCrypto `CryptoKey`s kept in
 * IndexedDB by structured clone. A key is generated on first use with a random key id; its
 * bytes never exist outside the browser's key storage, so `crypto.subtle.exportKey` on it
 * fails, and script running in the page can use the key but never read or send it away.
 *
 * Tabs of one origin share the key: when two tabs create it at the same moment, the first
 * write wins and both use it. When the key database is lost (cleared by the user or the
 * browser) a new key is created, and records sealed under the old one read as absent and are
 * removed; nothing is ever decrypted with another key.
 *
 * @param options - The database name.
 * @returns A {@link KeyProvider} of kind `indexeddb`, for {@link index!sealedStore} or
 *   {@link indexedDbStore} (which creates its own).
 * @throws {@link index!InvalidArgumentError} `ERR_INVALID_ARGUMENT` for invalid options. Its
 *   methods reject with `ERR_UNSUPPORTED` where IndexedDB or WebCrypto is missing, and with
 *   `ERR_KEY_UNAVAILABLE` when IndexedDB fails.
 * @example
 * ```ts
 * import { createWarden, sealedStore } from 'tokenwarden';
 * import { indexedDbKey } from 'tokenwarden/browser';
 * const store = sealedStore(mySessionStorageBackend, indexedDbKey({ name: 'my-app' }));
 * const warden = createWarden({ store });
 * ```
 */
export function indexedDbKey(options: IndexedDbKeyOptions = {}): KeyProvider {
  return createIndexedDbKey(databaseOption(options, 'indexedDbKey').name).provider;
}

/** Validates the `name` option shared by the browser factories. */
export function databaseOption(
  options: { name?: string | undefined } | undefined,
  factory: string,
): { name: string } {
  if (options === null || typeof options !== 'object') {
    throw invalidArgument(`${factory}(options): options must be an object.`);
  }
  const name = options.name ?? 'tokenwarden';
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw invalidArgument(`${factory}: name must be a non-empty string of at most 200 characters.`);
  }
  return { name };
}

/** Builds the IndexedDB key provider over its own connection. */
export function createIndexedDbKey(name: string): OwnedKeyProvider {
  const database = keyDatabaseName(name);
  const connection = openConnection(database, KEY_STORE);
  // Key ids are random and never reused, so a key once seen can be kept for find().
  const seen = new Map<string, SealingKey>();
  let creating: Promise<SealingKey> | undefined;

  const failed = (what: string, error: unknown): TokenWardenError =>
    error instanceof TokenWardenError
      ? error
      : keyUnavailable(
          `The IndexedDB key of database "${database}" could not be ${what} (${errorName(error)}). Check that the site may use storage.`,
          error,
        );

  const remember = (entry: KeyEntry): SealingKey => {
    let key = seen.get(entry.kid);
    if (!key) {
      key = Object.freeze({ kid: entry.kid, key: entry.key });
      seen.set(entry.kid, key);
    }
    return key;
  };

  const readRing = async (): Promise<KeyRing | undefined> =>
    usableRing(await connection.run((store) => get<unknown>(RING, store)));

  const currentOf = (ring: KeyRing | undefined): SealingKey | undefined => {
    const entry = ring?.keys.find((candidate) => candidate.kid === ring.current);
    return entry && remember(entry);
  };

  const create = async (): Promise<SealingKey> => {
    const fresh = await generate();
    await connection.run((store) =>
      update<unknown>(
        RING,
        (old) => usableRing(old) ?? { v: 1, current: fresh.kid, keys: [fresh] },
        store,
      ),
    );
    // Another tab may have stored its key first; the stored ring is the one every tab uses.
    const key = currentOf(await readRing());
    if (!key) throw keyUnavailable(`The IndexedDB key of database "${database}" was not kept.`);
    return key;
  };

  const provider: KeyProvider = {
    kind: 'indexeddb',
    async current() {
      try {
        // Read every time: another tab may have rotated the key.
        const key = currentOf(await readRing());
        if (key) return key;
        creating ??= create().finally(() => {
          creating = undefined;
        });
        return await creating;
      } catch (error) {
        throw failed('read or created', error);
      }
    },
    async find(kid) {
      const known = seen.get(kid);
      if (known) return known;
      try {
        const entry = (await readRing())?.keys.find((candidate) => candidate.kid === kid);
        return entry && remember(entry);
      } catch (error) {
        throw failed('read', error);
      }
    },
    async rotate(next) {
      if (next !== undefined) {
        throw invalidArgument(
          'The IndexedDB key provider creates its own keys: call rotateKey() without a key.',
        );
      }
      try {
        const fresh = await generate();
        await connection.run((store) =>
          update<unknown>(
            RING,
            (old) => {
              const ring = usableRing(old);
              return { v: 1, current: fresh.kid, keys: [...(ring?.keys ?? []), fresh] };
            },
            store,
          ),
        );
        return remember(fresh);
      } catch (error) {
        throw failed('rotated', error);
      }
    },
    async retire(kid) {
      try {
        await connection.run((store) =>
          update<unknown>(
            RING,
            (old) => {
              const ring = usableRing(old);
              if (!ring || ring.current === kid) return old;
              return { ...ring, keys: ring.keys.filter((entry) => entry.kid !== kid) };
            },
            store,
          ),
        );
        const ring = await readRing();
        if (ring?.current !== kid) seen.delete(kid);
      } catch (error) {
        throw failed('retired', error);
      }
    },
  };
  return { provider: redacted(provider), connection };
}

async function generate(): Promise<KeyEntry> {
  // Non-extractable: the key can encrypt and decrypt, and can never be read back out.
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
  return { kid: randomKid(), key, createdAt: Date.now() };
}

/**
 * The ring as stored, with only its usable keys, or `undefined` when its current key is not
 * usable. A key that is extractable, of another algorithm or without both usages is not one
 * this provider made, and is never used.
 */
function usableRing(value: unknown): KeyRing | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { v, current, keys } = value as Partial<KeyRing>;
  if (v !== 1 || typeof current !== 'string' || !Array.isArray(keys)) return undefined;
  const usable = keys.filter(usableEntry);
  if (!usable.some((entry) => entry.kid === current)) return undefined;
  return { v: 1, current, keys: usable };
}

function usableEntry(value: unknown): value is KeyEntry {
  if (typeof value !== 'object' || value === null) return false;
  const { kid, key, createdAt } = value as Partial<KeyEntry>;
  if (typeof kid !== 'string' || kid.length === 0 || typeof createdAt !== 'number') return false;
  if (typeof CryptoKey === 'undefined' || !(key instanceof CryptoKey)) return false;
  const algorithm = key.algorithm as Partial<AesKeyAlgorithm>;
  return (
    key.type === 'secret' &&
    key.extractable === false &&
    algorithm.name === 'AES-GCM' &&
    algorithm.length === 256 &&
    key.usages.includes('encrypt') &&
    key.usages.includes('decrypt')
  );
}

/** The name of a DOMException (safe to show: never carries data). */
export function errorName(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' && /^[A-Za-z]{1,64}$/.test(name) ? name : 'unknown error';
}
