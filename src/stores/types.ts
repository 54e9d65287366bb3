import type { TokenSet } from '../token.js';

/**
 * The store contract: a small async key-value interface for token sets, keyed by credential id.
 * Persistent stores seal every record with the encryption envelope; the memory store keeps
 * objects as they are.
 *
 * @example
 * ```ts
 * import { createWarden, memoryStore } from 'tokenwarden';
 * const warden = createWarden({ store: memoryStore() });
 * ```
 */
export interface TokenStore {
  /** A short name for events and inventories, e.g. `memory`. */
  readonly kind: string;
  /**
   * Reads the token set of a credential.
   * @param id - The credential id.
   * @returns The token set, or `undefined` when absent (or unreadable).
   */
  get(id: string): Promise<TokenSet | undefined>;
  /**
   * Writes the token set of a credential; resolves once the write is durable.
   * @param id - The credential id.
   * @param tokens - The token set.
   */
  set(id: string, tokens: TokenSet): Promise<void>;
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
  /** Releases resources (connections, handles). Optional. */
  close?(): Promise<void>;
}
