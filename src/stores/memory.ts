import { INSPECT, REDACTED } from '../internal/redact.js';
import type { StoredRecord, TokenStore } from './types.js';

/**
 * A store that keeps token sets in memory only: nothing survives a restart, and nothing is ever
 * written anywhere. The default store of {@link createWarden}.
 *
 * @returns A {@link TokenStore}.
 * @example
 * ```ts
 * import { createWarden, memoryStore } from 'tokenwarden';
 * const warden = createWarden({ store: memoryStore() });
 * ```
 */
export function memoryStore(): TokenStore {
  const records = new Map<string, StoredRecord>();
  return {
    kind: 'memory',
    async get(id) {
      return records.get(id);
    },
    async set(id, record) {
      records.set(id, record);
    },
    async delete(id) {
      records.delete(id);
    },
    async list() {
      return [...records.keys()];
    },
    async close() {
      records.clear();
    },
    toString: () => REDACTED,
    toJSON: () => ({ kind: 'memory' }),
    [INSPECT]: () => 'MemoryStore [REDACTED]',
  } as TokenStore;
}
