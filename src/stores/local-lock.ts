import { TokenWardenError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import type { StoreLease, StoreLockOptions } from './types.js';

/** Per-key mutexes with a TTL, for one JavaScript realm. */
export interface LocalLock {
  acquire(key: string, options: StoreLockOptions): Promise<StoreLease>;
}

/**
 * A lock that serialises holders of one key inside this realm. A holder that does not release
 * within the TTL loses the lock (its lease's signal aborts) so one stuck holder cannot block the
 * others forever, mirroring what a Redis or file lock does when its holder dies.
 */
export function localLock(): LocalLock {
  const tails = new Map<string, Promise<void>>();
  return {
    acquire(key, { ttlMs, signal }) {
      if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
        return Promise.reject(
          new TokenWardenError('ERR_INVALID_ARGUMENT', 'lock ttlMs must be a positive number.'),
        );
      }
      const previous = tails.get(key) ?? Promise.resolve();
      let free!: () => void;
      const mine = new Promise<void>((resolve) => {
        free = resolve;
      });
      const tail = previous.then(() => mine);
      tails.set(key, tail);
      const cleanup = () => {
        if (tails.get(key) === tail) tails.delete(key);
      };
      return new Promise<StoreLease>((resolve, reject) => {
        let settled = false;
        const onAbort = () => {
          if (settled) return;
          settled = true;
          // Give the turn away at once: waiters behind this one must not wait for it.
          free();
          cleanup();
          reject(abortError(signal as AbortSignal));
        };
        if (signal?.aborted) {
          onAbort();
          return;
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        previous.then(() => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          const lost = new AbortController();
          let released = false;
          const release = async () => {
            if (released) return;
            released = true;
            clearTimeout(timer);
            free();
            cleanup();
          };
          const timer = setTimeout(() => {
            lost.abort(
              new TokenWardenError(
                'ERR_LOCK_TIMEOUT',
                `The lock on "${key}" expired before release.`,
              ),
            );
            void release();
          }, ttlMs);
          (timer as { unref?: () => void }).unref?.();
          resolve({ signal: lost.signal, release });
        });
      });
    },
  };
}
