// The Redis store against a real redis-server (started per file, see test/support/redis-server.ts):
// versions and compare-and-swap, the refresh lock (exclusivity, expiry, compare-and-delete, loss),
// change announcements between store instances, and that Redis only ever sees sealed records
// (SECURITY-CHECKLIST items 20, 21, 37).
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TokenWardenError } from '../../src/errors.js';
import { redisBackend, redisStore } from '../../src/redis/redis-store.js';
import type {
  RecordBackend,
  StoreChange,
  StoredRecord,
  TokenStore,
} from '../../src/stores/types.js';
import { TokenSet } from '../../src/token.js';
import { useRedisServer } from '../support/redis-server.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const redis = useRedisServer();
const KEY = new Uint8Array(32).fill(3);

const clients: Redis[] = [];
const stores: { close?: () => Promise<void> }[] = [];
let prefixes = 0;

/** A client of its own per store instance: instances stand for processes of a fleet. */
function client(options: { keyPrefix?: string } = {}): Redis {
  const created = new Redis({
    port: redis().port,
    host: '127.0.0.1',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    ...options,
  });
  // Connection errors show in the operations' results; ioredis would also print each one.
  created.on('error', () => {});
  clients.push(created);
  return created;
}

/** A fresh prefix per test, so that tests never see each other's keys. */
/** A plain client for the test's own reads and writes, with ioredis's default offline queue. */
function raw(): Redis {
  const created = new Redis({ port: redis().port, host: '127.0.0.1' });
  // Connection errors show in the operations' results; ioredis would also print each one.
  created.on('error', () => {});
  clients.push(created);
  return created;
}

function freshPrefix(): string {
  prefixes++;
  return `tw-test-${prefixes}:`;
}

function store(prefix: string, extra: { timeout?: number } = {}): TokenStore {
  const created = redisStore({ client: client(), key: KEY, prefix, ...extra });
  stores.push(created);
  return created;
}

function backend(prefix: string, extra: { timeout?: number } = {}): RecordBackend {
  const created = redisBackend({ client: client(), prefix, ...extra });
  stores.push(created);
  return created;
}

function record(
  access: string = SENTINEL.accessToken,
  refresh = SENTINEL.refreshToken,
): StoredRecord {
  const now = Date.now();
  return {
    tokens: new TokenSet({
      accessToken: access,
      refreshToken: refresh,
      expiresAt: now + 3_600_000,
      issuedAt: now,
    }),
    meta: { createdAt: now, refreshedAt: now, uses: 0, refreshes: 1 },
  };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await wait(5);
  }
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close?.()));
});

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
});

describe('records and versions', () => {
  it('keeps only sealed records in Redis, and announces only sealed records', async () => {
    const prefix = freshPrefix();
    const watcher = raw();
    const announced: string[] = [];
    const sub = watcher.duplicate();
    clients.push(sub);
    sub.on('message', (_channel: string, message: string) => announced.push(message));
    await sub.subscribe(`${prefix}changes`);

    const s = store(prefix);
    const version = await s.set('billing', record());
    expect(version).toBeGreaterThan(0);
    const read = await s.get('billing');
    expect(read?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    expect(read?.tokens.revealRefreshToken()).toBe(SENTINEL.refreshToken);
    expect(read?.version).toBe(version);
    await until(() => announced.length === 1);

    const keys = (await watcher.keys(`${prefix}*`)).sort();
    expect(keys).toEqual([`${prefix}ids`, `${prefix}record:billing`, `${prefix}version`]);
    const hash = await watcher.hgetall(`${prefix}record:billing`);
    expect(Object.keys(hash).sort()).toEqual(['s', 'v']);
    expect(hash['v']).toBe(String(version));
    expect(hash['s']?.split('.')).toHaveLength(5); // a compact JWE
    expect(JSON.parse(announced[0] as string)).toMatchObject({ t: 'w', id: 'billing', v: version });
    const secrets = [SENTINEL.accessToken, SENTINEL.refreshToken];
    expect(
      findLeaks([hash, keys, announced, await watcher.smembers(`${prefix}ids`)], secrets),
    ).toEqual([]);
  });

  it('gives every write a new version and refuses stale compare-and-swap writes', async () => {
    const b = backend(freshPrefix());
    expect(await b.readVersioned?.('a')).toBeUndefined();
    expect(await b.compareAndWrite?.('a', 'sealed-1', 5)).toBe(false);
    const v1 = (await b.compareAndWrite?.('a', 'sealed-1', null)) as number;
    expect(v1).toBeGreaterThan(0);
    expect(await b.readVersioned?.('a')).toEqual({ sealed: 'sealed-1', version: v1 });
    expect(await b.compareAndWrite?.('a', 'sealed-x', null)).toBe(false);
    const v2 = (await b.compareAndWrite?.('a', 'sealed-2', v1)) as number;
    expect(v2).toBeGreaterThan(v1);
    // The writer that read v1 lost the race: its write is refused.
    expect(await b.compareAndWrite?.('a', 'sealed-stale', v1)).toBe(false);
    const v3 = await b.write('a', 'sealed-3');
    expect(v3).toBeGreaterThan(v2);
    expect(await b.read('a')).toBe('sealed-3');
    // Versions never repeat, even across a delete: a writer that read before the delete can
    // never match the record written after it.
    await b.remove('a');
    expect(await b.readVersioned?.('a')).toBeUndefined();
    const v4 = (await b.compareAndWrite?.('a', 'sealed-4', null)) as number;
    expect(v4).toBeGreaterThan(v3 as number);
    expect(await b.compareAndWrite?.('a', 'sealed-5', v3 as number)).toBe(false);
    expect(await b.read('a')).toBe('sealed-4');
  });

  it('fails a stale expectedVersion with ERR_STORE_CONFLICT through the sealed store', async () => {
    const prefix = freshPrefix();
    const a = store(prefix);
    const b = store(prefix);
    const first = await a.set('user', record('at-1'), { expectedVersion: null });
    const seenByB = await b.get('user');
    expect(seenByB?.version).toBe(first);
    await a.set('user', record('at-2'), { expectedVersion: first ?? null });
    const conflict = await b
      .set('user', record('at-stale'), { expectedVersion: seenByB?.version ?? null })
      .catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(TokenWardenError);
    expect((conflict as TokenWardenError).code).toBe('ERR_STORE_CONFLICT');
    expect((await b.get('user'))?.tokens.revealAccessToken()).toBe('at-2');
  });

  it('lists, rotates the key of and clears records', async () => {
    const prefix = freshPrefix();
    const s = redisStore({ client: client(), key: KEY, prefix });
    stores.push(s);
    await s.set('one', record('at-one'));
    await s.set('two', record('at-two'));
    expect((await s.list()).sort()).toEqual(['one', 'two']);
    const before = await raw().hget(`${prefix}record:one`, 's');
    await s.rotateKey(new Uint8Array(32).fill(4));
    const after = await raw().hget(`${prefix}record:one`, 's');
    expect(after).not.toBe(before);
    expect((await s.get('one'))?.tokens.revealAccessToken()).toBe('at-one');
    await s.delete('one');
    expect(await s.list()).toEqual(['two']);
    const b = backend(prefix);
    await b.clear();
    expect(await s.list()).toEqual([]);
    expect(await raw().exists(`${prefix}record:two`)).toBe(0);
  });

  it('discards a key that is not a record and reports it as tamper, for that record only', async () => {
    const prefix = freshPrefix();
    const s = store(prefix);
    const tampered: string[] = [];
    s.bind?.({ tamper: (id) => tampered.push(id) });
    await s.set('good', record('at-good'));
    const rawClient = raw();
    await rawClient.set(`${prefix}record:junk`, 'not a hash');
    await rawClient.sadd(`${prefix}ids`, 'junk');
    await rawClient.hset(`${prefix}record:half`, 'v', '1');
    expect(await s.get('junk')).toBeUndefined();
    expect(await s.get('half')).toBeUndefined();
    expect(tampered).toEqual(['junk', 'half']);
    expect(await rawClient.exists(`${prefix}record:junk`, `${prefix}record:half`)).toBe(0);
    expect((await s.get('good'))?.tokens.revealAccessToken()).toBe('at-good');
    // A record sealed for another slot does not open either.
    const sealed = await rawClient.hget(`${prefix}record:good`, 's');
    await rawClient.hset(`${prefix}record:other`, 'v', '99', 's', sealed as string);
    expect(await s.get('other')).toBeUndefined();
    expect(tampered).toEqual(['junk', 'half', 'other']);
  });

  it("honours the client's keyPrefix", async () => {
    const prefix = freshPrefix();
    const prefixed = client({ keyPrefix: 'app:' });
    const s = redisStore({ client: prefixed, key: KEY, prefix });
    stores.push(s);
    await s.set('x', record('at-x'));
    expect(await raw().exists(`app:${prefix}record:x`)).toBe(1);
    expect(await s.list()).toEqual(['x']);
    await s.rotateKey(new Uint8Array(32).fill(5));
    expect((await s.get('x'))?.tokens.revealAccessToken()).toBe('at-x');
    expect(await raw().keys(`${prefix}*`)).toEqual([]);
  });
});

describe('the refresh lock', () => {
  it('is exclusive, and a release wakes the next waiter without waiting for a poll', async () => {
    const prefix = freshPrefix();
    const a = backend(prefix);
    const b = backend(prefix);
    const leaseA = await a.lock!('cred', { ttlMs: 10_000 });
    let acquiredAt = 0;
    const waiting = b.lock!('cred', { ttlMs: 10_000 }).then((lease) => {
      acquiredAt = Date.now();
      return lease;
    });
    // Long enough for the waiter's polls to back off to several hundred milliseconds.
    await wait(1_500);
    expect(acquiredAt).toBe(0);
    const releasedAt = Date.now();
    await leaseA.release();
    const leaseB = await waiting;
    expect(acquiredAt - releasedAt).toBeLessThan(250);
    expect(leaseB.signal.aborted).toBe(false);
    await leaseB.release();
    expect(await raw().exists(`${prefix}lock:cred`)).toBe(0);
  });

  it('expires after its TTL: the holder is told, and a waiter takes over right after', async () => {
    const prefix = freshPrefix();
    const a = backend(prefix);
    const b = backend(prefix);
    const started = Date.now();
    const leaseA = await a.lock!('cred', { ttlMs: 400 });
    const lostAt = new Promise<number>((resolve) =>
      leaseA.signal.addEventListener('abort', () => resolve(Date.now())),
    );
    const leaseB = await b.lock!('cred', { ttlMs: 5_000 });
    const takenAt = Date.now();
    expect(takenAt - started).toBeGreaterThanOrEqual(390);
    expect(takenAt - started).toBeLessThan(400 + 250);
    // The holder learns it lost the lock no later than Redis expired it.
    expect((await lostAt) - started).toBeLessThanOrEqual(400);
    expect((leaseA.signal.reason as TokenWardenError).code).toBe('ERR_LOCK_TIMEOUT');

    // Compare-and-delete: the expired holder's release leaves its successor's lock alone.
    await leaseA.release();
    expect(await raw().exists(`${prefix}lock:cred`)).toBe(1);
    const c = backend(prefix);
    const blocked = await c.lock!('cred', { ttlMs: 1_000, signal: AbortSignal.timeout(200) }).catch(
      (error: unknown) => error,
    );
    expect((blocked as TokenWardenError).code).toBe('ERR_ABORTED');
    expect(leaseB.signal.aborted).toBe(false);
    await leaseB.release();
    expect(await raw().exists(`${prefix}lock:cred`)).toBe(0);
  });

  it("aborts the holder's signal when another owner is found holding its lock", async () => {
    const prefix = freshPrefix();
    const a = backend(prefix);
    const lease = await a.lock!('cred', { ttlMs: 1_500 });
    // The key is lost (a failover to a replica that never saw it, an eviction) and another
    // instance takes the lock.
    const rawClient = raw();
    await rawClient.del(`${prefix}lock:cred`);
    const other = await backend(prefix).lock!('cred', { ttlMs: 5_000 });
    const started = Date.now();
    await until(() => lease.signal.aborted, 1_500);
    expect(Date.now() - started).toBeLessThanOrEqual(1_000);
    expect((lease.signal.reason as TokenWardenError).code).toBe('ERR_LOCK_TIMEOUT');
    await lease.release();
    expect(await rawClient.exists(`${prefix}lock:cred`)).toBe(1);
    await other.release();
  });

  it('stops waiting when the signal aborts, leaving no lock behind', async () => {
    const prefix = freshPrefix();
    const holder = await backend(prefix).lock!('cred', { ttlMs: 5_000 });
    const waiter = backend(prefix);
    const controller = new AbortController();
    const pending = waiter.lock!('cred', { ttlMs: 5_000, signal: controller.signal });
    await wait(100);
    controller.abort();
    const error = await pending.catch((caught: unknown) => caught);
    expect((error as TokenWardenError).code).toBe('ERR_ABORTED');
    await holder.release();
    expect(await raw().exists(`${prefix}lock:cred`)).toBe(0);
  });

  it('rejects a waiter with ERR_CLOSED when its store closes', async () => {
    const prefix = freshPrefix();
    const holder = await backend(prefix).lock!('cred', { ttlMs: 5_000 });
    const waiter = redisBackend({ client: client(), prefix });
    const pending = waiter.lock!('cred', { ttlMs: 5_000 }).catch((caught: unknown) => caught);
    await wait(50);
    const closedAt = Date.now();
    await waiter.close?.();
    expect(((await pending) as TokenWardenError).code).toBe('ERR_CLOSED');
    expect(Date.now() - closedAt).toBeLessThan(100);
    await holder.release();
  });

  it('hands the lock to exactly one of many waiters at a time', async () => {
    const prefix = freshPrefix();
    const instances = Array.from({ length: 6 }, () => backend(prefix));
    let inside = 0;
    let most = 0;
    await Promise.all(
      instances.flatMap((instance) =>
        Array.from({ length: 3 }, async () => {
          const lease = await instance.lock!('cred', { ttlMs: 5_000 });
          inside++;
          most = Math.max(most, inside);
          await wait(5);
          inside--;
          await lease.release();
        }),
      ),
    );
    expect(most).toBe(1);
  });
});

describe('change announcements', () => {
  it("delivers other instances' writes and deletes, never an instance's own", async () => {
    const prefix = freshPrefix();
    const a = store(prefix);
    const b = store(prefix);
    const seenByA: StoreChange[] = [];
    const seenByB: StoreChange[] = [];
    a.watch?.('user', (change) => seenByA.push(change));
    b.watch?.('user', (change) => seenByB.push(change));
    b.watch?.('other', () => {
      throw new Error('not watched');
    });
    await wait(100); // the subscriber connections subscribe
    const version = await b.set('user', record('at-from-b'));
    await until(() => seenByA.length === 1);
    expect(seenByA[0]?.record?.tokens.revealAccessToken()).toBe('at-from-b');
    expect(seenByA[0]?.record?.version).toBe(version);
    await b.delete('user');
    await until(() => seenByA.length === 2);
    expect(seenByA[1]).toEqual({ id: 'user', record: undefined });
    await a.set('user', record('at-from-a'));
    await until(() => seenByB.length === 1);
    expect(seenByB[0]?.record?.tokens.revealAccessToken()).toBe('at-from-a');
    await wait(50);
    expect(seenByA).toHaveLength(2);
    expect(seenByB).toHaveLength(1);
  });

  it('drops an announcement older than a version already read', async () => {
    const prefix = freshPrefix();
    const a = backend(prefix);
    const seen: (number | undefined)[] = [];
    a.watch?.('user', (_sealed, version) => seen.push(version));
    await wait(100);
    const rawClient = raw();
    // Written behind the store's back: no announcement, as when a read overtakes one.
    await rawClient.hset(`${prefix}record:user`, 'v', '10', 's', 'sealed');
    const latest = (await a.readVersioned?.('user'))?.version as number;
    expect(latest).toBe(10);
    // An announcement that a read overtook (older than what was read) is not news.
    const announce = (v: number) =>
      rawClient.publish(
        `${prefix}changes`,
        JSON.stringify({ t: 'w', o: 'elsewhere', id: 'user', v, s: 'x' }),
      );
    await announce(latest - 1);
    await announce(latest);
    await announce(latest + 5);
    await announce(latest + 2);
    await until(() => seen.length > 0);
    await wait(50);
    expect(seen).toEqual([latest + 5]);
  });

  it('closes its subscriber connection, and leaves the client open', async () => {
    const prefix = freshPrefix();
    const mine = client();
    const rawClient = raw();
    const count = async () =>
      String(await rawClient.client('LIST'))
        .split('\n')
        .filter((line) => line.includes('sub=1')).length;
    const before = await count();
    const s = redisStore({ client: mine, key: KEY, prefix });
    s.watch?.('user', () => {});
    await wait(100);
    expect(await count()).toBe(before + 1);
    await s.close?.();
    await wait(50);
    expect(await count()).toBe(before);
    expect(await mine.ping()).toBe('PONG');
  });
});
