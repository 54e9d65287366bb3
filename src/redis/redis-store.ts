import { type InvalidArgumentError, invalidArgument, TokenWardenError } from '../errors.js';
import { type Duration, toMs } from '../internal/duration.js';
import type { KeyInput } from '../stores/keys.js';
import { type SealedStore, sealedStore } from '../stores/sealed.js';
import type { RecordBackend } from '../stores/types.js';
import type { RedisClient } from './client.js';
import { changes } from './internal/changes.js';
import { connection, unavailable } from './internal/connection.js';
import { acquire } from './internal/lock.js';
import { CLEAR, IDS, READ, REMOVE, WRITE, WRITE_MANY } from './internal/scripts.js';

/**
 * Options of {@link redisStore}.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { envKey } from 'tokenwarden/node';
 * import { redisStore, type RedisStoreOptions } from 'tokenwarden/redis';
 * const options: RedisStoreOptions = {
 *   client: new Redis(process.env.REDIS_URL!, { enableOfflineQueue: false }),
 *   key: envKey('TOKENWARDEN_KEY'),
 *   prefix: 'billing-service:tokens:',
 * };
 * const store = redisStore(options);
 * ```
 */
export interface RedisStoreOptions {
  /**
   * The Redis client: an `ioredis` `Redis` (or `Cluster`) instance, or any client with the
   * methods of {@link RedisClient}. It stays yours: the store never closes it. Every instance of
   * the fleet must reach the same Redis (the same primary).
   */
  client: RedisClient;
  /**
   * The sealing key: 32 bytes, their base64url form, or a key provider (`envKey('NAME')` from
   * `tokenwarden/node`). Every instance sharing the records needs the same key; Redis only ever
   * holds sealed records.
   */
  key: KeyInput;
  /**
   * The prefix of every key and of the pub/sub channel the store uses. Give each application (or
   * each set of credentials that must not see each other's) its own. With Redis Cluster, put a
   * hash tag in it (`'{tokenwarden}:'`) so that the store's keys share a slot, as its scripts
   * require.
   * @default 'tokenwarden:'
   */
  prefix?: string | undefined;
  /**
   * How long one store operation (a read, a write, one attempt to take the lock) waits for Redis
   * — for the client to be connected, then for the answer — before it fails with
   * `ERR_STORE_UNAVAILABLE`.
   * @default '3s'
   */
  timeout?: Duration | undefined;
}

/** The names of the store's keys under its prefix. */
interface Layout {
  /** Prefix of declared keys; `ioredis` adds its own `keyPrefix` to those. */
  readonly prefix: string;
  /** Prefix of record keys that scripts build themselves, so including the client's keyPrefix. */
  readonly rawRecordPrefix: string;
  readonly channel: string;
}

/**
 * A token store in Redis for a fleet of Node processes that share credentials: every record is
 * sealed (JWE, AES-256-GCM, bound to its credential id) before it reaches Redis, and refreshes
 * are coordinated so that a rotating refresh token is redeemed once per rotation by the whole
 * fleet.
 *
 * - **Versions.** Each record is a hash `{ v, s }` (version, sealed record) at
 *   `<prefix>record:<id>`. Every write takes a new version from one counter per store and is a
 *   Lua script, so a compare-and-swap write (`expectedVersion`) is atomic and an older writer
 *   never overwrites a newer token set (`ERR_STORE_CONFLICT`).
 * - **Lock.** `lock(id)` is `SET <prefix>lock:<id> <random owner> NX PX <ttl>`; release is a
 *   compare-and-delete script, so a holder whose lock expired cannot delete its successor's.
 *   Waiters wake on the holder's release announcement and poll with jittered, doubling delays
 *   (up to 1 s, and never later than the holder's expiry), so a holder that died is taken over
 *   right after its TTL. The lease's signal aborts when the TTL elapses or another owner is found.
 * - **Changes.** Every write and delete is published on `<prefix>changes` in the same script;
 *   `watch()` delivers other instances' changes through one subscriber connection
 *   (`client.duplicate()`), so instances take over a refreshed token without a refresh of their
 *   own, and a sign-out reaches every instance.
 * - **Redis unavailable.** Each operation waits at most `timeout`, and commands are only sent
 *   while the client is connected, so nothing waits in the client's offline queue. Reads and
 *   writes then fail with `ERR_STORE_UNAVAILABLE`, and so does `lock()`: **no instance refreshes
 *   while it cannot take the lock**, so no refresh token is ever redeemed twice. Requests keep
 *   using tokens that are still valid; once they expire, requests fail with
 *   `ERR_STORE_UNAVAILABLE` (each credential emits `refresh-error` with that code and retries
 *   with backoff) until Redis answers again.
 *
 * Two windows no client can close, documented so that operators can size them: a command that
 * timed out may still run later on the server (a lock it took then expires after its TTL; a
 * compare-and-swap write still checks its version), and an instance killed after the
 * authorization server rotated its refresh token but before the new one was stored loses that
 * token: the grant must be re-authorised. Keep `timeout` short against the token request
 * (the credential's `timeout`), and the lock TTL (`lockTtl`) longer than it.
 *
 * Recommended `ioredis` options: `enableOfflineQueue: false` (fail at once while disconnected),
 * and a `maxRetriesPerRequest` of 1 or 2 so that commands in flight during a disconnect are not
 * replayed much later. The store works with the defaults too.
 *
 * @param options - The client, the key, and optionally the prefix and the timeout.
 * @returns A {@link SealedStore} of kind `redis`, with `lock`, `watch` and `rotateKey()`.
 * @throws An {@link InvalidArgumentError} (`ERR_INVALID_ARGUMENT`) for a missing client or key, a
 *   malformed prefix or timeout, or a Redis Cluster client whose prefix has no hash tag. Its
 *   methods reject as {@link index!TokenStore} says, with `ERR_STORE_UNAVAILABLE` when Redis does
 *   not answer in time.
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createWarden, refreshToken } from 'tokenwarden';
 * import { envKey } from 'tokenwarden/node';
 * import { redisStore } from 'tokenwarden/redis';
 *
 * const redis = new Redis(process.env.REDIS_URL!, { enableOfflineQueue: false });
 * const warden = createWarden({ store: redisStore({ client: redis, key: envKey('TOKENWARDEN_KEY') }) });
 * const crm = warden.register('crm', {
 *   source: refreshToken({ issuer: 'https://auth.example.com', clientId, clientSecret, refreshToken }),
 *   origins: ['https://crm.example.com'],
 * });
 * // ... on shutdown: the warden closes the store (its subscriber); the client is still yours.
 * await warden.close();
 * await redis.quit();
 * ```
 */
export function redisStore(options: RedisStoreOptions): SealedStore {
  if (options === null || typeof options !== 'object') {
    throw invalidArgument('redisStore(options): options must be an object with client and key.');
  }
  if (options.key === undefined || options.key === null) {
    throw invalidArgument(
      "redisStore(options): key is required: 32 bytes, their base64url form, or a key provider such as envKey('TOKENWARDEN_KEY').",
    );
  }
  return sealedStore(redisBackend(options), options.key);
}

/**
 * The Redis backend under {@link redisStore}: sealed records, versions, the lock and change
 * announcements. Exported for tests; applications use {@link redisStore}, which seals records
 * before they get here.
 */
export function redisBackend(options: Omit<RedisStoreOptions, 'key'>): RecordBackend {
  const client = options.client;
  for (const method of ['evalsha', 'eval', 'duplicate', 'once', 'removeListener'] as const) {
    if (typeof client?.[method] !== 'function') {
      throw invalidArgument(
        `redisStore(options): client must be an ioredis client (or one with the same methods); it has no ${method}().`,
      );
    }
  }
  const prefix = options.prefix ?? 'tokenwarden:';
  if (typeof prefix !== 'string')
    throw invalidArgument('redisStore(options): prefix must be a string.');
  if (typeof (client as { nodes?: unknown }).nodes === 'function' && !/\{[^}]+\}/.test(prefix)) {
    throw invalidArgument(
      "redisStore(options): with Redis Cluster, the prefix needs a hash tag such as '{tokenwarden}:' so that the store's keys share a slot.",
    );
  }
  const timeoutMs = toMs(options.timeout ?? '3s', 'timeout');
  if (timeoutMs <= 0) throw invalidArgument('redisStore(options): timeout must be positive.');
  const keyPrefix = client.options?.keyPrefix ?? '';
  const layout: Layout = {
    prefix,
    rawRecordPrefix: `${keyPrefix}${prefix}record:`,
    channel: `${prefix}changes`,
  };
  const counter = `${prefix}version`;
  const index = `${prefix}ids`;
  const recordKey = (id: string) => `${prefix}record:${id}`;
  const instance = crypto.randomUUID();
  const conn = connection(client, timeoutMs);
  const feed = changes(client, layout.channel, instance);
  const closing = new AbortController();
  const pending = new Set<Promise<unknown>>();

  /** Tracks operations so that close() waits for them. */
  const track = <T>(run: Promise<T>): Promise<T> => {
    if (closing.signal.aborted) {
      run.catch(() => {});
      return Promise.reject(unavailable('run a command', 'the store was closed'));
    }
    pending.add(run);
    const done = () => pending.delete(run);
    run.then(done, done);
    return run;
  };

  const versionOf = (reply: unknown): number => {
    const version = Number(reply);
    if (!Number.isSafeInteger(version) || version < 0) {
      throw new TokenWardenError(
        'ERR_STORE_UNAVAILABLE',
        'The Redis store got an unexpected reply to a write.',
      );
    }
    return version;
  };

  const readVersioned = async (id: string) => {
    const reply = await conn.run(READ, [recordKey(id)], []);
    if (!Array.isArray(reply) || reply.length === 0) return undefined;
    const [version, sealed] = reply as unknown[];
    const parsed = Number(version);
    if (typeof sealed !== 'string' || !Number.isSafeInteger(parsed)) {
      // Not a record this store wrote: handed on as an unopenable one, which the sealed store
      // discards and reports as tamper (this record only, not the whole store).
      return { sealed: '', version: 0 };
    }
    feed.saw(id, parsed);
    return { sealed, version: parsed };
  };

  const write = async (id: string, sealed: string, expected: string): Promise<number> => {
    const version = versionOf(
      await conn.run(
        WRITE,
        [counter, index, recordKey(id)],
        [id, sealed, instance, layout.channel, expected],
      ),
    );
    if (version > 0) feed.saw(id, version);
    return version;
  };

  return {
    kind: 'redis',
    shared: true,
    read: (id) => track(readVersioned(id).then((found) => found?.sealed)),
    readVersioned: (id) => track(readVersioned(id)),
    write: (id, sealed) => track(write(id, sealed, '*')),
    compareAndWrite: (id, sealed, expected) =>
      track(
        write(id, sealed, expected === null ? '' : String(expected)).then((version) =>
          version === 0 ? false : version,
        ),
      ),
    writeMany: (records) =>
      track(
        (async () => {
          if (records.size === 0) return;
          const args: string[] = [layout.rawRecordPrefix, instance, layout.channel];
          for (const [id, sealed] of records) args.push(id, sealed);
          await conn.run(WRITE_MANY, [counter, index], args);
        })(),
      ),
    remove: (id) =>
      track(
        (async () => {
          await conn.run(REMOVE, [counter, index, recordKey(id)], [id, instance, layout.channel]);
        })(),
      ),
    ids: () =>
      track(
        (async () => {
          const reply = await conn.run(IDS, [index], [layout.rawRecordPrefix]);
          return Array.isArray(reply)
            ? reply.filter((id): id is string => typeof id === 'string')
            : [];
        })(),
      ),
    clear: () =>
      track(
        (async () => {
          await conn.run(
            CLEAR,
            [counter, index],
            [layout.rawRecordPrefix, instance, layout.channel],
          );
        })(),
      ),
    lock: (id, lockOptions) =>
      track(
        acquire(
          {
            conn,
            changes: feed,
            channel: layout.channel,
            lockKey: (lockId) => `${prefix}lock:${lockId}`,
            closing: closing.signal,
          },
          id,
          lockOptions,
        ),
      ),
    watch: (id, listener) => feed.watch(id, listener),
    async close() {
      if (closing.signal.aborted) return;
      closing.abort();
      // Commands already sent get their answers; nothing new is sent, nothing waits for readiness.
      conn.close();
      await Promise.allSettled([...pending]);
      await feed.close();
    },
  };
}
