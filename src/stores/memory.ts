import { TokenWardenError } from '../errors.js';
import { INSPECT, REDACTED } from '../internal/redact.js';
import { localLock } from './local-lock.js';
import type { StoredRecord, TokenStore } from './types.js';

/**
 * A store that keeps records in memory only: nothing survives a restart, and nothing is ever
 * written anywhere. The default store of {@link createWarden}. It has versions (compare-and-swap
 * writes) and a lock, so credentials of several wardens sharing one memory store in a process
 * refresh once between them.
 *
 * @returns A {@link TokenStore}.
 * @throws Never. Of its methods, only `set` rejects, with `ERR_STORE_CONFLICT` when its
 * `expectedVersion` no longer holds, and `lock`, with `ERR_INVALID_ARGUMENT` for a TTL that is not
 * positive or `ERR_ABORTED` when its signal aborts.
 * @example
 * ```ts
 * import { createWarden, memoryStore } from 'tokenwarden';
 * const warden = createWarden({ store: memoryStore() });
 * ```
 */
export function memoryStore(): TokenStore {
  const records = new Map<string, StoredRecord & { version: number }>();
  let versions = 0;
  const locks = localLock();
  return {
    kind: 'memory',
    // Records are kept as objects: a DPoP key stays a non-extractable CryptoKey.
    keepsCryptoKeys: true,
    async get(id) {
      return records.get(id);
    },
    async set(id, record, options) {
      const expected = options?.expectedVersion;
      if (expected !== undefined && (records.get(id)?.version ?? null) !== expected) {
        throw new TokenWardenError(
          'ERR_STORE_CONFLICT',
          `The record of "${id}" changed since it was read; it was not overwritten.`,
          { credentialId: id },
        );
      }
      const version = ++versions;
      records.set(id, { ...record, version });
      return version;
    },
    async delete(id) {
      records.delete(id);
    },
    async list() {
      return [...records.keys()];
    },
    lock: (id, options) => locks.acquire(id, options),
    async close() {
      records.clear();
    },
    toString: () => REDACTED,
    toJSON: () => ({ kind: 'memory' }),
    [INSPECT]: () => 'MemoryStore [REDACTED]',
  } as TokenStore;
}
