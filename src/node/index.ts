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
export {
  type KeychainKeyOptions,
  type KeychainStoreOptions,
  keychainKey,
  keychainStore,
} from './keychain.js';
