/**
 * Browser-only stores: tokens in IndexedDB, sealed under a non-extractable WebCrypto key.
 *
 * @example
 * ```ts
 * import { indexedDbStore } from 'tokenwarden/browser';
 * const warden = createWarden({ store: indexedDbStore() });
 * ```
 * @packageDocumentation
 */
export { type IndexedDbKeyOptions, indexedDbKey } from './indexeddb-key.js';
export { type IndexedDbStoreOptions, indexedDbStore } from './indexeddb-store.js';
