/**
 * Node-only stores and key providers: an encrypted file store, the OS keychain, and keys from
 * the environment or the keychain.
 *
 * @example
 * ```ts
 * import { fileStore, keychainKey } from 'tokenwarden/node';
 * const store = fileStore({ path: './tokens.jwe', key: keychainKey({ service: 'my-app' }) });
 * ```
 * @packageDocumentation
 */
export { envKey } from './env-key.js';
export { type FileStoreOptions, fileStore } from './file-store.js';
export {
  type KeychainKeyOptions,
  type KeychainStoreOptions,
  keychainKey,
  keychainStore,
} from './keychain.js';
