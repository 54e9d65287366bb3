import type { DpopKey } from '../dpop/key.js';
import { invalidArgument, TokenWardenError } from '../errors.js';
import { INSPECT, REDACTED } from '../internal/redact.js';
import { openRecord, sealRecord } from './envelope.js';
import { type KeyInput, toKeyProvider } from './keys.js';
import type { StoredDpopKey } from './record.js';
import type { RecordBackend, StoreChange, StoredRecord, StoreHooks, TokenStore } from './types.js';

/**
 * A persistent store that seals every record before its backend sees it. This is the one
 * encryption layer every persistent store uses: the file, keychain, IndexedDB and Redis stores
 * are backends under it.
 *
 * - A record that fails to open (flipped, truncated, swapped into another slot) is deleted,
 *   reported through the `tamper` hook, and read as absent, so the credential fetches a fresh
 *   token and never uses the bad one.
 * - A record sealed under a key the provider does not know (a wrong or lost key) is deleted,
 *   reported the same way, and read as absent: it is never decrypted with any other key. In a
 *   `shared` backend it is reported and kept, and reading it fails with `ERR_KEY_UNAVAILABLE`.
 * - When the key provider has no usable key at all (`ERR_KEY_UNAVAILABLE`), the backend is wiped
 *   and the error thrown; a `shared` backend (file, Redis) is left as it is, since other
 *   instances may hold the key. A key that exists but cannot be reached right now (a locked keychain:
 *   `ERR_STORE_UNAVAILABLE`) wipes nothing: the error is thrown and the records stay.
 *
 * @param backend - Where sealed records live.
 * @param key - The key provider, or 32 key bytes (or their base64url form).
 * @returns A {@link TokenStore} with `rotateKey()`.
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for a malformed backend or key.
 * @example
 * ```ts
 * import { sealedStore, staticKey } from 'tokenwarden';
 * const store = sealedStore(myBackend, staticKey(process.env.TOKEN_KEY!));
 * const warden = createWarden({ store });
 * ```
 */
export function sealedStore(backend: RecordBackend, key: KeyInput): SealedStore {
  for (const method of ['read', 'write', 'remove', 'ids', 'clear'] as const) {
    if (typeof backend?.[method] !== 'function') {
      throw invalidArgument(`The store backend must implement ${method}().`);
    }
  }
  const keys = toKeyProvider(key, 'key');
  let hooks: StoreHooks | undefined;
  // Rotation re-seals every record; writes wait for it so none is sealed under a retired key.
  let exclusive: Promise<unknown> = Promise.resolve();
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const run = exclusive.then(task, task);
    exclusive = run.catch(() => {});
    return run;
  };

  const tamper = (id: string) => {
    try {
      hooks?.tamper(id);
    } catch {
      // A failing hook must not turn a discarded record into a failed read.
    }
  };

  const currentKey = async () => {
    try {
      return await keys.current();
    } catch (error) {
      if (error instanceof TokenWardenError && error.code !== 'ERR_KEY_UNAVAILABLE') {
        // The key exists but cannot be reached right now (a locked keychain, no D-Bus, a module
        // not installed): the records stay for when it can.
        throw error;
      }
      // No usable key: nothing stored can be read, and nothing may be read with a fallback key.
      // A store of this instance alone is wiped. A shared store is left as it is: its records
      // are the other instances' (maybe the fleet's only copy of a rotated refresh token), and
      // the instance without a usable key is the one misconfigured.
      if (!backend.shared) await backend.clear().catch(() => {});
      throw error instanceof TokenWardenError
        ? error
        : new TokenWardenError(
            'ERR_KEY_UNAVAILABLE',
            backend.shared
              ? `The ${keys.kind} key of the shared ${backend.kind} store is unusable; the store was left as it is. Give this instance the key the others use.`
              : `The ${keys.kind} key of the ${backend.kind} store is unusable; the store was wiped.`,
          );
    }
  };

  /**
   * Rebuilds a record's DPoP key: from its sealed private JWK, or from the pair the backend kept
   * (which must match the sealed thumbprint). `undefined` when it cannot be: the tokens bound to
   * it are useless, and the record is discarded like a tampered one.
   */
  const rebuildKey = async (id: string, stored: StoredDpopKey): Promise<DpopKey | undefined> => {
    try {
      // Loaded here, not at start-up: only records of DPoP-bound credentials carry a key.
      const { DpopKey } = await import('../dpop/key.js');
      if (stored.jwk !== undefined)
        return await DpopKey.fromPrivateJwk(stored.algorithm, stored.jwk);
      const pair = await backend.readKeyPair?.(id);
      if (!pair) return undefined;
      const key = await DpopKey.fromPair(stored.algorithm, pair);
      return key.thumbprint === stored.thumbprint ? key : undefined;
    } catch {
      return undefined;
    }
  };
  /** The thumbprint of the key pair last handed to the backend, per record. */
  const keptPairs = new Map<string, string>();

  /** Opens a sealed record, discarding and reporting it when it does not open. */
  const unseal = async (
    id: string,
    sealed: string,
    version: number | undefined,
    stored = true,
  ): Promise<StoredRecord | undefined> => {
    await currentKey();
    const opened = await openRecord(sealed, id, keys);
    let dpopKey: DpopKey | undefined;
    if (opened.status === 'ok' && opened.dpop) {
      dpopKey = await rebuildKey(id, opened.dpop);
    }
    if (opened.status === 'ok' && (opened.dpop === undefined || dpopKey !== undefined)) {
      const record = dpopKey ? { ...opened.record, dpopKey } : opened.record;
      return version === undefined ? record : { ...record, version };
    }
    if (opened.status === 'unknown-key' && backend.shared) {
      // In a shared store the record may be the fleet's only copy of a rotated refresh token:
      // an instance with the wrong key must fail, not delete it and redeem an older token.
      tamper(id);
      throw new TokenWardenError(
        'ERR_KEY_UNAVAILABLE',
        `The record of "${id}" in the shared ${backend.kind} store is sealed under a key this instance does not hold; it was kept. Give every instance the same key, or, if that key is lost for good, delete the record (for a file store, the file) to start over.`,
        { credentialId: id },
      );
    }
    // Either way the record is never used: flipped, truncated or swapped records fail to open,
    // and one under a key this store does not hold (a wrong or lost key) is never decrypted with
    // another. Both are reported, so a wrong key is as visible as a tampered file.
    // An announcement that does not open is dropped: the stored record may well be intact.
    if (stored) await backend.remove(id).catch(() => {});
    tamper(id);
    return undefined;
  };

  const read = async (id: string): Promise<StoredRecord | undefined> => {
    let found: { sealed: string; version?: number } | undefined;
    try {
      found = backend.readVersioned
        ? await backend.readVersioned(id)
        : await backend.read(id).then((sealed) => (sealed === undefined ? undefined : { sealed }));
    } catch (error) {
      if (error instanceof TokenWardenError && error.code === 'ERR_STORE_CORRUPT') {
        await backend.clear().catch(() => {});
        tamper(id);
        return undefined;
      }
      throw error;
    }
    return found === undefined ? undefined : unseal(id, found.sealed, found.version);
  };

  const store: SealedStore = {
    kind: backend.kind,
    ...(backend.writeKeyPair && { keepsCryptoKeys: true }),
    get: (id) => read(id),
    set: (id, record, options) =>
      serial(async () => {
        const key = record.dpopKey;
        if (key && !key.extractable) {
          // A non-extractable key cannot be sealed: the backend keeps the pair itself (before the
          // record that names it), or the record cannot be stored here.
          if (!backend.writeKeyPair) {
            throw new TokenWardenError(
              'ERR_UNSUPPORTED',
              `The ${backend.kind} store cannot keep a non-extractable DPoP key; use a store that seals keys, or let the credential create an extractable one.`,
              { credentialId: id },
            );
          }
          if (keptPairs.get(id) !== key.thumbprint) {
            await backend.writeKeyPair(id, key.pair);
            keptPairs.set(id, key.thumbprint);
          }
        }
        const sealed = await sealRecord(record, id, await currentKey());
        const expected = options?.expectedVersion;
        if (expected === undefined || !backend.compareAndWrite) {
          const version = await backend.write(id, sealed);
          return typeof version === 'number' ? version : undefined;
        }
        const version = await backend.compareAndWrite(id, sealed, expected);
        if (version === false) {
          throw new TokenWardenError(
            'ERR_STORE_CONFLICT',
            `The record of "${id}" in the ${backend.kind} store changed since it was read; it was not overwritten.`,
            { credentialId: id },
          );
        }
        return version;
      }),
    delete: async (id) => {
      await backend.remove(id);
      keptPairs.delete(id);
      await backend.removeKeyPair?.(id);
    },
    list: () => backend.ids(),
    ...(backend.lock && { lock: backend.lock.bind(backend) }),
    ...(backend.watch && {
      watch(id: string, listener: (change: StoreChange) => void) {
        return (backend.watch as NonNullable<RecordBackend['watch']>)(id, (sealed, version) => {
          if (sealed === undefined) {
            listener({ id, record: undefined });
            return;
          }
          // An announcement that does not open is reported like a stored one, but only dropped.
          unseal(id, sealed, version, false).then(
            (record) => {
              if (record) listener({ id, record });
            },
            () => {},
          );
        });
      },
    }),
    bind(next) {
      hooks = next;
    },
    rotateKey: (next) =>
      serial(async () => {
        const previous = await currentKey();
        const records = new Map<string, StoredRecord>();
        for (const id of await backend.ids()) {
          const record = await read(id);
          if (record) records.set(id, record);
        }
        const fresh = await keys.rotate(next);
        const sealed = new Map<string, string>();
        for (const [id, record] of records) sealed.set(id, await sealRecord(record, id, fresh));
        if (backend.writeMany) await backend.writeMany(sealed);
        else for (const [id, value] of sealed) await backend.write(id, value);
        if (previous.kid !== fresh.kid) await keys.retire(previous.kid);
      }),
    close: async () => {
      await exclusive;
      await backend.close?.();
    },
  };
  return Object.defineProperties(store, {
    toString: { value: () => `${backend.kind} store [sealed]` },
    toJSON: { value: () => ({ kind: backend.kind, sealed: true, key: REDACTED }) },
    [INSPECT]: { value: () => `SealedStore { kind: '${backend.kind}', key: [REDACTED] }` },
  });
}

/**
 * A {@link TokenStore} whose records are sealed; it can re-seal them under a new key.
 *
 * @example
 * ```ts
 * const store: SealedStore = sealedStore(backend, staticKey(oldKey));
 * await store.rotateKey(newKey); // every record re-sealed under newKey
 * ```
 */
export interface SealedStore extends TokenStore {
  /**
   * Re-seals every record under a new key, then retires the old one. Records that fail to open
   * are dropped (and reported) rather than carried over.
   * @param next - The new key, for key providers that cannot create one (static keys).
   * @throws {@link TokenWardenError} `ERR_INVALID_ARGUMENT` when `next` is missing or malformed for
   * a provider that needs it, or given to one that creates its own keys; `ERR_KEY_UNAVAILABLE`
   * when there is no usable key; `ERR_STORE_UNAVAILABLE` when the storage cannot be read or
   * written.
   */
  rotateKey(next?: KeyInput): Promise<void>;
}
