/**
 * A Redis token store for fleets of Node processes: sealed records, versioned compare-and-swap
 * writes, a distributed refresh lock and change announcements, so that a fleet redeems a
 * rotating refresh token once per rotation. Bring your own `ioredis` client (an optional peer
 * dependency, never imported by tokenwarden).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createWarden } from 'tokenwarden';
 * import { envKey } from 'tokenwarden/node';
 * import { redisStore } from 'tokenwarden/redis';
 * const redis = new Redis(process.env.REDIS_URL!, { enableOfflineQueue: false });
 * const warden = createWarden({ store: redisStore({ client: redis, key: envKey('TOKENWARDEN_KEY') }) });
 * ```
 * @packageDocumentation
 */
export type { RedisClient, RedisSubscriber } from './client.js';
export { type RedisStoreOptions, redisStore } from './redis-store.js';
