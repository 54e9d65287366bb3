// The refresh lock of the IndexedDB store where the browser has no Web Locks (Safari before
// 15.4, some embedded web views): a lease record per credential in the database
// `<name>-locks`, { owner, expires }.
//
// - Taken in one readwrite transaction that reads the lease and writes a new one only when there
//   is none, it has expired, or it is this waiter's own. IndexedDB runs readwrite transactions
//   on one store one at a time, across every tab of the origin, so two waiters can never both
//   see the lease free: at most one tab holds a live lease, and only the holder of a live lease
//   redeems the refresh token.
// - A holder that dies (a closed or crashed tab) cannot release it; its lease expires after the
//   TTL and the next waiter takes it over. The holder's own lease ends at the same moment: its
//   signal aborts (aborting a token request still running) and its release deletes nothing that
//   is not its own (compare owner, then delete, in one transaction).
// - Waiters poll with jittered exponential backoff (tens of milliseconds at first, at most a
//   quarter of a second) and give up with `ERR_LOCK_TIMEOUT` after twice the TTL.
// - Expiry is wall-clock time (`Date.now()`), the one clock that tabs share; a clock set
//   forward while a lease is held can end it early, as it would for a Redis or file lock.
import { TokenWardenError } from '../errors.js';
import { abortError, delay } from '../internal/abort.js';
import type { StoreLease, StoreLockOptions } from '../stores/types.js';
import { type Connection, inTransaction } from './connection.js';
import { errorName } from './indexeddb-key.js';
import { checkTtl, leaseExpired, lockTimeout, WAIT_TTLS } from './web-lock.js';

/** The name of the lease database of a store called `name`. */
export function lockDatabaseName(name: string): string {
  return `${name}-locks`;
}

/** The object store of the lease records. */
export const LEASE_STORE = 'leases';

/** A lease as stored. */
interface Lease {
  readonly owner: string;
  /** Epoch ms. */
  readonly expires: number;
}

/** First and longest pause between two attempts to take a lease, in milliseconds. */
const FIRST_PAUSE = 10;
const LONGEST_PAUSE = 250;

/** Leases in IndexedDB, for one database. */
export interface LeaseLock {
  acquire(id: string, options: StoreLockOptions): Promise<StoreLease>;
}

/**
 * Builds the lease lock over `connection` (the `leases` store of the lock database).
 * @throws {@link TokenWardenError} from `acquire`: `ERR_ABORTED`, `ERR_LOCK_TIMEOUT`,
 *   `ERR_INVALID_ARGUMENT` for a bad TTL, `ERR_STORE_UNAVAILABLE` when IndexedDB fails.
 */
export function leaseLock(connection: Connection): LeaseLock {
  const run = async <T>(operation: Parameters<Connection['run']>[0]): Promise<T> => {
    try {
      return (await connection.run(operation)) as T;
    } catch (error) {
      if (error instanceof TokenWardenError) throw error;
      throw new TokenWardenError(
        'ERR_STORE_UNAVAILABLE',
        `The refresh lock in IndexedDB database "${connection.database}" could not be used (${errorName(error)}).`,
        { cause: error },
      );
    }
  };

  /** Takes the lease if it is free, expired or already ours; its expiry when taken. */
  const take = (id: string, owner: string, ttlMs: number) =>
    run<number | undefined>((use) =>
      use('readwrite', (store) =>
        inTransaction<number | undefined>(store, (settle) => {
          const read = store.get(id);
          read.onsuccess = () => {
            const now = Date.now();
            const current = asLease(read.result);
            if (current && current.expires > now && current.owner !== owner) return;
            const expires = now + ttlMs;
            store.put({ owner, expires } satisfies Lease, id);
            settle(expires);
          };
        }),
      ),
    );

  /** Deletes the lease if it is still ours. */
  const giveBack = (id: string, owner: string) =>
    run<void>((use) =>
      use('readwrite', (store) =>
        inTransaction<void>(store, () => {
          const read = store.get(id);
          read.onsuccess = () => {
            if (asLease(read.result)?.owner === owner) store.delete(id);
          };
        }),
      ),
    );

  return {
    async acquire(id, { ttlMs, signal }) {
      const invalid = checkTtl(ttlMs);
      if (invalid) throw new TokenWardenError('ERR_INVALID_ARGUMENT', invalid);
      const name = `${connection.database}/${id}`;
      const owner = randomOwner();
      const waitMs = WAIT_TTLS * ttlMs;
      const deadline = Date.now() + waitMs;
      let expires: number | undefined;
      for (let attempt = 0; ; attempt++) {
        if (signal?.aborted) throw abortError(signal);
        expires = await take(id, owner, ttlMs);
        if (expires !== undefined) break;
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw lockTimeout(name, waitMs);
        const ceiling = Math.min(LONGEST_PAUSE, FIRST_PAUSE * 2 ** attempt);
        // Jitter spreads out waiters that woke together, so they do not retry in lockstep.
        await delay(Math.min(remaining, ceiling / 2 + Math.random() * (ceiling / 2)), signal);
      }
      if (signal?.aborted) {
        await giveBack(id, owner).catch(() => {});
        throw abortError(signal);
      }
      const lost = new AbortController();
      let released = false;
      // Measured from the expiry written in the transaction, so the holder never believes it
      // holds a lease that the other tabs already see as expired.
      const expiry = setTimeout(
        () => lost.abort(leaseExpired(name)),
        Math.max(0, expires - Date.now()),
      );
      return {
        signal: lost.signal,
        async release() {
          clearTimeout(expiry);
          if (released) return;
          released = true;
          // Deletes the lease only if no waiter took it over. One that cannot be deleted expires
          // on its own, so release never fails.
          await giveBack(id, owner).catch(() => {});
        },
      };
    },
  };
}

function asLease(value: unknown): Lease | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { owner, expires } = value as Partial<Lease>;
  return typeof owner === 'string' && typeof expires === 'number' ? { owner, expires } : undefined;
}

function randomOwner(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
