// The refresh lock of the IndexedDB store where the browser has Web Locks: one exclusive
// `navigator.locks` lock per credential, shared by every tab, worker and store object of the
// origin that uses the same database name.
//
// Web Locks die with their holder: the browser releases the locks of a tab that closes, crashes
// or navigates away, so no lease ever needs to expire for a dead holder. What they do not cover
// is a holder that is alive but stuck (a promise that never settles). For that the lease keeps
// the TTL contract of every other store: the holder's own lease expires after `ttlMs` (its
// signal aborts, which aborts a token request still running, and the lock is let go). A waiter
// never steals (`steal: true`) a lock: stealing from a live holder whose token request has
// already reached the server would redeem the same refresh token twice, the one thing the lock
// exists to prevent. A waiter gives up with `ERR_LOCK_TIMEOUT` after twice the TTL instead (a
// holder the browser froze, e.g. a background tab, keeps its lock until it thaws or is
// discarded), and the credential retries later with backoff.
import { TokenWardenError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import type { StoreLease, StoreLockOptions } from '../stores/types.js';
import { errorName } from './indexeddb-key.js';

/** How many TTLs a waiter waits for a lock before giving up. */
export const WAIT_TTLS = 2;

/** Rejects a TTL that is not a positive number of milliseconds. */
export function checkTtl(ttlMs: unknown): string | undefined {
  return typeof ttlMs === 'number' && Number.isFinite(ttlMs) && ttlMs > 0
    ? undefined
    : 'lock ttlMs must be a positive number.';
}

/** The error of a waiter that gave up. */
export function lockTimeout(name: string, waitedMs: number): TokenWardenError {
  return new TokenWardenError(
    'ERR_LOCK_TIMEOUT',
    `The refresh lock "${name}" was not granted within ${waitedMs} ms; another tab holds it. The refresh is retried later.`,
  );
}

/** The error that aborts a lease's signal when it outlived its TTL. */
export function leaseExpired(name: string): TokenWardenError {
  return new TokenWardenError('ERR_LOCK_TIMEOUT', `The lock "${name}" expired before release.`);
}

/**
 * Takes the Web Lock `name`, exclusively. Resolves when it is granted; the lock is held until the
 * lease is released or its TTL passes.
 * @throws {@link TokenWardenError} `ERR_ABORTED` when `signal` aborts the wait, `ERR_LOCK_TIMEOUT`
 *   after waiting twice the TTL, `ERR_INVALID_ARGUMENT` for a bad TTL, `ERR_STORE_UNAVAILABLE`
 *   when the browser refuses the request.
 */
export function webLock(
  locks: LockManager,
  name: string,
  { ttlMs, signal }: StoreLockOptions,
): Promise<StoreLease> {
  const invalid = checkTtl(ttlMs);
  if (invalid) return Promise.reject(new TokenWardenError('ERR_INVALID_ARGUMENT', invalid));
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<StoreLease>((resolve, reject) => {
    const waitMs = WAIT_TTLS * ttlMs;
    const waiting = new AbortController();
    let timedOut = false;
    const onAbort = () => waiting.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const waitTimer = setTimeout(() => {
      timedOut = true;
      waiting.abort();
    }, waitMs);
    const stopWaiting = () => {
      clearTimeout(waitTimer);
      signal?.removeEventListener('abort', onAbort);
    };

    let granted = false;
    let done: Promise<unknown> = Promise.resolve();
    done = locks
      .request(name, { mode: 'exclusive', signal: waiting.signal }, () => {
        granted = true;
        stopWaiting();
        const lost = new AbortController();
        let free!: () => void;
        const held = new Promise<void>((resolveHeld) => {
          free = resolveHeld;
        });
        const expiry = setTimeout(() => {
          lost.abort(leaseExpired(name));
          free();
        }, ttlMs);
        resolve({
          signal: lost.signal,
          async release() {
            clearTimeout(expiry);
            free();
            // Resolves once the browser has let the lock go, so the next holder can run.
            await done.catch(() => {});
          },
        });
        return held;
      })
      .catch((error: unknown) => {
        stopWaiting();
        if (granted) return;
        if (signal?.aborted) reject(abortError(signal));
        else if (timedOut) reject(lockTimeout(name, waitMs));
        else {
          reject(
            new TokenWardenError(
              'ERR_STORE_UNAVAILABLE',
              `The browser refused the Web Lock "${name}" (${errorName(error)}).`,
              { cause: error },
            ),
          );
        }
      });
  });
}
