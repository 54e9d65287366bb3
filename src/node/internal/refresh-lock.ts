import { createHash } from 'node:crypto';
import { TokenWardenError } from '../../errors.js';
import type { StoreLease, StoreLockOptions } from '../../stores/types.js';
import { acquireLock, LockLostError } from './file-lock.js';

/**
 * The per-credential refresh lock of the file store: a lock file next to the token file,
 * `<file>.<hash of the id>.refresh.lock`, held across a whole token request. It is separate from
 * the file's write lock (`<file>.lock`), which is held for one read-modify-write only, so a
 * refresh in progress never blocks other credentials' writes, nor usage writes of this one.
 *
 * - The lock names its holder (pid, host, owner token) and the lease it claims (`ttlMs`). It is
 *   broken as soon as its holder's pid is dead (same host), or once the lease has passed.
 * - Waiters poll with jittered backoff (from about a millisecond up to 100 ms) until they get it
 *   or their signal aborts; a lock is never waited for with a timeout of its own, since the
 *   holder's lease bounds the wait.
 * - The lease's signal aborts when the lease runs out, or when a periodic check finds the lock
 *   no longer naming this holder (broken or deleted by hand): the token request under it stops.
 * - Release deletes the lock only if it still names this holder (compare-and-delete).
 * - Every removal (breaking a stale lock, releasing) runs under `guard`, the token file's write
 *   lock, taken for the few milliseconds of one look and one unlink: so when several waiters
 *   find a dead holder at once, exactly the dead holder's lock is removed, never the fresh lock
 *   one of them took a moment later (which would let two processes redeem one refresh token).
 */

/** Longest pause between two attempts to take a refresh lock, in milliseconds. */
const MAX_BACKOFF_MS = 100;
/** Longest pause between two checks that a held refresh lock is still ours, in milliseconds. */
const MAX_CHECK_MS = 1_000;

/**
 * The refresh lock path of one credential of the token file `file`. The id is hashed: it may
 * hold any character, and the name says nothing about which credential it is.
 */
export function refreshLockPath(file: string, id: string): string {
  const digest = createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 32);
  return `${file}.${digest}.refresh.lock`;
}

/**
 * Takes a refresh lock and returns its lease.
 * @throws {@link TokenWardenError} `ERR_INVALID_ARGUMENT` for a bad TTL, `ERR_ABORTED` when the
 *   signal aborts the wait, `ERR_STORE_UNAVAILABLE` on an I/O error.
 */
export async function takeRefreshLock(
  lockPath: string,
  { ttlMs, signal }: StoreLockOptions,
  guard: <T>(task: () => Promise<T>) => Promise<T>,
): Promise<StoreLease> {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new TokenWardenError('ERR_INVALID_ARGUMENT', 'lock ttlMs must be a positive number.');
  }
  const held = await acquireLock(lockPath, {
    staleMs: ttlMs,
    ttlMs,
    signal,
    maxBackoffMs: MAX_BACKOFF_MS,
    guard,
  });
  const lost = new AbortController();
  let expiry: ReturnType<typeof setTimeout> | undefined;
  let check: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    clearTimeout(expiry);
    clearTimeout(check);
  };
  const lose = (message: string) => {
    stop();
    if (!lost.signal.aborted) lost.abort(new TokenWardenError('ERR_LOCK_TIMEOUT', message));
  };
  // Others may break the lock once its lease has passed: from then on this holder must not act
  // on it.
  expiry = setTimeout(
    () => lose(`The refresh lock ${lockPath} expired before release.`),
    Math.max(0, held.takenAt + ttlMs - Date.now()),
  );
  expiry.unref?.();
  const every = Math.max(25, Math.min(MAX_CHECK_MS, ttlMs / 4));
  let released = false;
  const schedule = () => {
    if (released || lost.signal.aborted) return;
    check = setTimeout(() => {
      held.verify().then(schedule, (error: unknown) => {
        if (released) return;
        if (error instanceof LockLostError) {
          lose(`The refresh lock ${lockPath} was taken over or removed while held.`);
        } else {
          schedule();
        }
      });
    }, every);
    check.unref?.();
  };
  schedule();
  return {
    signal: lost.signal,
    async release() {
      if (released) return;
      released = true;
      stop();
      await held.release();
    },
  };
}
