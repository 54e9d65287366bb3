import { TokenWardenError } from '../../errors.js';
import { abortError } from '../../internal/abort.js';
import type { StoreLease, StoreLockOptions } from '../../stores/types.js';
import type { Changes } from './changes.js';
import type { Connection } from './connection.js';
import { CHECK, LOCK, UNLOCK } from './scripts.js';

/** First poll of a contended lock; each further poll waits twice as long, up to the maximum. */
const FIRST_POLL_MS = 20;
const MAX_POLL_MS = 1_000;
/** Never poll more often than this, whatever the lock's remaining time says. */
const MIN_POLL_MS = 5;

export interface LockContext {
  readonly conn: Connection;
  readonly changes: Changes;
  readonly channel: string;
  lockKey(id: string): string;
  /** Aborts when the store closes: waiters stop at once. */
  readonly closing: AbortSignal;
}

/** A random owner token: only the instance that set a lock can release it. */
function ownerToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function unref(timer: unknown): void {
  (timer as { unref?: () => void }).unref?.();
}

function closedError(): TokenWardenError {
  return new TokenWardenError('ERR_CLOSED', 'The Redis store was closed while waiting for a lock.');
}

/**
 * Takes the refresh lock of `id`: `SET NX PX` with a random owner token. While another instance
 * holds it, waits for its release announcement or polls with jittered, doubling delays (never
 * past the moment the holder's lock expires), until it is taken or `signal` aborts.
 */
export async function acquire(
  ctx: LockContext,
  id: string,
  { ttlMs, signal }: StoreLockOptions,
): Promise<StoreLease> {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new TokenWardenError('ERR_INVALID_ARGUMENT', 'lock ttlMs must be a positive number.');
  }
  const ttl = Math.ceil(ttlMs);
  const key = ctx.lockKey(id);
  const owner = ownerToken();
  let wake: (() => void) | undefined;
  let stopListening: (() => void) | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      if (ctx.closing.aborted) throw closedError();
      const sentAt = Date.now();
      let reply: unknown;
      try {
        reply = await ctx.conn.run(LOCK, [key], [owner, ttl]);
      } catch (error) {
        // The SET may still run after the timeout; a release with our owner token then undoes it.
        void ctx.conn.run(UNLOCK, [key], [owner, ctx.channel, id]).catch(() => {});
        throw error;
      }
      const [taken = Number.NaN, remaining = -1] = Array.isArray(reply) ? reply.map(Number) : [];
      if (taken === 1) {
        if (signal?.aborted || ctx.closing.aborted) {
          await ctx.conn.run(UNLOCK, [key], [owner, ctx.channel, id]).catch(() => {});
          throw signal?.aborted ? abortError(signal) : closedError();
        }
        return lease(ctx, id, key, owner, ttl, sentAt);
      }
      if (taken !== 0) {
        throw new TokenWardenError(
          'ERR_STORE_UNAVAILABLE',
          'The Redis store got an unexpected reply to its lock command.',
        );
      }
      // Listen for the holder's release from the first failed attempt on. A release announced
      // before the subscription is active is caught by the next poll.
      stopListening ??= ctx.changes.onUnlock(id, () => wake?.());
      const backoff = Math.min(MAX_POLL_MS, FIRST_POLL_MS * 2 ** attempt);
      // Equal jitter spreads the waiters; a poll just after the holder's expiry takes over a lock
      // whose holder died.
      const jittered = backoff * (0.5 + Math.random() * 0.5);
      const untilExpiry = remaining >= 0 ? remaining + 1 + Math.random() * 10 : jittered;
      await sleep(
        Math.max(MIN_POLL_MS, Math.min(jittered, untilExpiry)),
        signal,
        ctx.closing,
        (fn) => {
          wake = fn;
        },
      );
      wake = undefined;
    }
  } finally {
    stopListening?.();
  }
}

/** Waits `ms`, or less when woken or when the store closes; rejects when `signal` aborts. */
function sleep(
  ms: number,
  signal: AbortSignal | undefined,
  closing: AbortSignal,
  onWake: (wake: () => void) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      closing.removeEventListener('abort', done);
    };
    const done = () => {
      cleanup();
      resolve();
    };
    const aborted = () => {
      cleanup();
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', aborted, { once: true });
    closing.addEventListener('abort', done, { once: true });
    onWake(done);
  });
}

/**
 * A held lock. Its signal aborts when the lock is known to be lost: at its TTL (counted from
 * before the SET was sent, less Redlock's clock-drift allowance, so never after Redis expires it),
 * or when a periodic check finds another owner (the key was lost in a failover or evicted).
 * A check that cannot reach Redis aborts nothing: the holder's token request may already be at
 * the authorization server, and abandoning it could discard a rotated refresh token.
 */
function lease(
  ctx: LockContext,
  id: string,
  key: string,
  owner: string,
  ttl: number,
  sentAt: number,
): StoreLease {
  const lost = new AbortController();
  let released = false;
  const drift = Math.ceil(ttl * 0.01) + 2;
  const expire = () =>
    lost.abort(
      new TokenWardenError(
        'ERR_LOCK_TIMEOUT',
        `The refresh lock of "${id}" expired before it was released.`,
        { credentialId: id },
      ),
    );
  const deadline = setTimeout(expire, Math.max(0, sentAt + ttl - drift - Date.now()));
  unref(deadline);
  const interval = Math.max(MIN_POLL_MS * 10, Math.floor(ttl / 3));
  const check = setInterval(() => {
    ctx.conn.run(CHECK, [key], [owner]).then(
      (remaining) => {
        if (!released && Number(remaining) === -2) {
          lost.abort(
            new TokenWardenError(
              'ERR_LOCK_TIMEOUT',
              `The refresh lock of "${id}" was taken over before it was released.`,
              { credentialId: id },
            ),
          );
          stop();
        }
      },
      () => {},
    );
  }, interval);
  unref(check);
  const stop = () => {
    clearTimeout(deadline);
    clearInterval(check);
  };
  lost.signal.addEventListener('abort', stop, { once: true });
  return {
    signal: lost.signal,
    async release() {
      if (released) return;
      released = true;
      stop();
      // Compare-and-delete: after an expiry this deletes nothing, not a successor's lock.
      await ctx.conn.run(UNLOCK, [key], [owner, ctx.channel, id]);
    },
  };
}
