// Feature detection for the browser stores, in one place. Nothing here runs at import time:
// the stores call `requireSupport()` when they are used, so importing `tokenwarden/browser`
// during server-side rendering or in a test runner never fails.
import { TokenWardenError } from '../errors.js';

/** The platform features a browser store needs that this runtime lacks; empty when none. */
export function missingFeatures(): string[] {
  const missing: string[] = [];
  let factory: unknown;
  try {
    // Reading `indexedDB` throws a SecurityError in sandboxed frames and some privacy modes.
    factory = (globalThis as { indexedDB?: unknown }).indexedDB;
  } catch {
    factory = undefined;
  }
  if (typeof (factory as IDBFactory | undefined)?.open !== 'function') missing.push('IndexedDB');
  const subtle = (globalThis as { crypto?: { subtle?: Partial<SubtleCrypto> } }).crypto?.subtle;
  // Browsers expose crypto.subtle only in secure contexts (HTTPS, localhost, 127.0.0.1).
  if (typeof subtle?.generateKey !== 'function' || typeof subtle.encrypt !== 'function') {
    missing.push('WebCrypto (crypto.subtle, which browsers offer only on HTTPS or localhost)');
  }
  return missing;
}

/**
 * Throws `ERR_UNSUPPORTED` when IndexedDB or WebCrypto is missing.
 * @throws {@link TokenWardenError} `ERR_UNSUPPORTED`.
 */
export function requireSupport(): void {
  const missing = missingFeatures();
  if (missing.length === 0) return;
  throw new TokenWardenError(
    'ERR_UNSUPPORTED',
    `indexedDbStore() cannot work here: this runtime lacks ${missing.join(' and ')} (as some private browsing modes and insecure contexts do). Use indexedDbStore({ fallback: 'memory' }) or memoryStore() in such environments.`,
  );
}

/**
 * The Web Locks API of this runtime, or `undefined` where it is missing (older browsers, some
 * web views, insecure contexts, Node). Read when a store first takes a lock.
 */
export function webLocks(): LockManager | undefined {
  try {
    const locks = (globalThis as { navigator?: { locks?: Partial<LockManager> } }).navigator?.locks;
    return typeof locks?.request === 'function' ? (locks as LockManager) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this runtime has `BroadcastChannel` (Safari before 15.4 does not). */
export function hasBroadcastChannel(): boolean {
  return typeof (globalThis as { BroadcastChannel?: unknown }).BroadcastChannel === 'function';
}
