// What the Redis store does when Redis stops answering: every operation fails within its timeout
// with ERR_STORE_UNAVAILABLE (nothing hangs, nothing waits in the client's offline queue), no
// refresh happens while the lock cannot be taken, valid tokens keep being used, and everything
// resumes when Redis is back. Against a real redis-server that the test stops and restarts, and
// the real oidc fixture.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createWarden, type TokenWardenError } from '../../src/index.js';
import { redisBackend, redisStore } from '../../src/redis/redis-store.js';
import { collect, refreshCredential, tokenCountsSince, useOidcServer } from '../support/harness.js';
import { useRedisServer } from '../support/redis-server.js';

const redis = useRedisServer();
const server = useOidcServer({ ttl: { accessToken: 4 } });
const KEY = new Uint8Array(32).fill(8);
const clients: Redis[] = [];

function client(
  options: { enableOfflineQueue?: boolean; maxRetriesPerRequest?: number } = {},
): Redis {
  const created = new Redis({
    port: redis().port,
    host: '127.0.0.1',
    // Reconnect quickly once the server is back, so the test does not wait for a long backoff.
    retryStrategy: () => 50,
    ...options,
  });
  // Connection errors show in the operations' results; ioredis would also print each one.
  created.on('error', () => {});
  clients.push(created);
  return created;
}

afterAll(async () => {
  for (const c of clients.splice(0)) c.disconnect();
});

const codeOf = (error: unknown) => (error as TokenWardenError).code;

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; result: T | unknown }> {
  const started = Date.now();
  const result = await run().catch((error: unknown) => error);
  return { ms: Date.now() - started, result };
}

describe('Redis unreachable', () => {
  it('fails operations on a server that stopped answering within the timeout, and undoes a late lock', async () => {
    const b = redisBackend({ client: client(), prefix: 'paused:', timeout: 250 });
    await b.write('x', 'sealed');
    const admin = client();
    await admin.call('CLIENT', 'PAUSE', '1000', 'ALL');
    const read = await timed(() => b.read('x'));
    expect(codeOf(read.result)).toBe('ERR_STORE_UNAVAILABLE');
    expect(read.ms).toBeGreaterThanOrEqual(240);
    expect(read.ms).toBeLessThan(600);
    const lock = await timed(() => b.lock!('x', { ttlMs: 60_000 }));
    expect(codeOf(lock.result)).toBe('ERR_STORE_UNAVAILABLE');
    expect(lock.ms).toBeLessThan(600);
    // The SET of the timed-out lock runs once the server resumes; the release sent after it
    // with the same owner token removes it again, so no lock blocks the fleet for its TTL.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await admin.exists('paused:lock:x')).toBe(0);
    expect(await b.read('x')).toBe('sealed');
    await b.close?.();
  });

  it.each([
    ['enableOfflineQueue: false', { enableOfflineQueue: false, maxRetriesPerRequest: 1 }],
    ["ioredis's defaults", {}],
  ] as const)(
    'fails fast on a stopped server with %s, and resumes when it is back',
    async (_name, options) => {
      const b = redisBackend({ client: client(options), prefix: 'down:', timeout: 300 });
      await b.write('x', 'sealed');
      await redis().stop();
      try {
        const operations: (() => Promise<unknown>)[] = [
          () => b.read('x'),
          () => b.lock!('x', { ttlMs: 10_000 }),
          () => b.write('x', 'other'),
        ];
        for (const operation of operations) {
          const { ms, result } = await timed(operation);
          expect(codeOf(result)).toBe('ERR_STORE_UNAVAILABLE');
          expect(ms).toBeLessThan(700);
        }
      } finally {
        await redis().restart();
      }
      // The restarted server is empty (it persists nothing); the store works again at once.
      const lease = await b.lock!('x', { ttlMs: 10_000 });
      await lease.release();
      expect(await b.read('x')).toBeUndefined();
      await b.close?.();
    },
  );

  it('keeps serving a valid token, never refreshes while Redis is away, and recovers after', async () => {
    const op = server();
    const minted = await op.mintRefreshToken();
    const store = redisStore({ client: client(), key: KEY, prefix: 'fleet:', timeout: 300 });
    const warden = createWarden({ store });
    const errors = collect(warden, 'refresh-error');
    const cred = refreshCredential(op, warden, 'crm', minted, {
      backoff: { initial: 200, max: 500 },
      timeout: '2s',
      lockTtl: '5s',
    });
    try {
      const first = await cred.fetch(`${op.resource.origin}/v1/me`);
      expect(first.status).toBe(200);
      const expiresAt = cred.status().expiresAt as number;
      const counts = tokenCountsSince(op, 'refresh_token');

      await redis().stop();
      // Still valid: requests go on with the token held, though its proactive refresh fails.
      const during = await cred.fetch(`${op.resource.origin}/v1/me`);
      expect(during.status).toBe(200);
      // Past its expiry: requests fail fast with the store's code instead of hanging.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now())));
      const failed = await timed(() => cred.fetch(`${op.resource.origin}/v1/me`));
      expect(codeOf(failed.result)).toBe('ERR_STORE_UNAVAILABLE');
      expect(failed.ms).toBeLessThan(1_000);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((e) => e.code === 'ERR_STORE_UNAVAILABLE')).toBe(true);
      // No token request at all while the lock could not be taken.
      expect(counts().total).toBe(0);

      await redis().restart();
      const deadline = Date.now() + 5_000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = await cred.fetch(`${op.resource.origin}/v1/me`).then(
          (res) => res.status,
          () => 0,
        );
      }
      expect(status).toBe(200);
      expect(counts()).toMatchObject({ total: 1, ok: 1, errors: {} });
    } finally {
      await warden.close();
    }
  }, 30_000);

  it('reports the failed read of a credential registered while Redis is away (store-error)', async () => {
    const op = server();
    const minted = await op.mintRefreshToken();
    const store = redisStore({ client: client(), key: KEY, prefix: 'away:', timeout: 300 });
    const warden = createWarden({ store });
    const storeErrors = collect(warden, 'store-error');
    await redis().stop();
    try {
      const cred = refreshCredential(op, warden, 'late', minted, { timeout: '2s' });
      const counts = tokenCountsSince(op, 'refresh_token');
      const failed = await timed(() => cred.getToken());
      expect(codeOf(failed.result)).toBe('ERR_STORE_UNAVAILABLE');
      expect(storeErrors[0]).toMatchObject({
        id: 'late',
        store: 'redis',
        operation: 'read',
        code: 'ERR_STORE_UNAVAILABLE',
      });
      // The configured refresh token was not redeemed: the stored one may be newer.
      expect(counts().total).toBe(0);
    } finally {
      await redis().restart();
      await warden.close();
    }
  }, 30_000);
});
