// redisStore without a server: argument errors, and how it treats a client that is not connected,
// that stops answering, or that fails. The behaviour against a real redis-server is tested in
// test/integration/redis-*.test.ts.
import { EventEmitter } from 'node:events';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TokenWardenError } from '../../../src/errors.js';
import type { RedisClient, RedisSubscriber } from '../../../src/redis/index.js';
import { redisStore } from '../../../src/redis/index.js';
import { redisBackend } from '../../../src/redis/redis-store.js';
import { TokenSet } from '../../../src/token.js';
import { SENTINEL } from '../../support/sentinel.js';

const KEY = new Uint8Array(32).fill(1);

/** A client double: records the commands it is sent and answers with `answer`. */
class FakeClient extends EventEmitter implements RedisClient {
  status = 'ready';
  options: { keyPrefix?: string } = {};
  sent: { command: string; args: (string | number)[] }[] = [];
  connects = 0;
  answer: (command: string, args: (string | number)[]) => Promise<unknown> = async () => [];

  evalsha(sha1: string, numkeys: number, ...args: (string | number)[]): Promise<unknown> {
    this.sent.push({ command: 'evalsha', args: [sha1, numkeys, ...args] });
    return this.answer('evalsha', args);
  }
  eval(script: string, numkeys: number, ...args: (string | number)[]): Promise<unknown> {
    this.sent.push({ command: 'eval', args: [script, numkeys, ...args] });
    return this.answer('eval', args);
  }
  duplicate(): RedisSubscriber {
    const sub = new EventEmitter() as EventEmitter & RedisSubscriber;
    Object.assign(sub, {
      status: 'ready',
      subscribe: async () => 1,
      quit: async () => 'OK',
      disconnect: () => {},
    });
    return sub;
  }
  async connect(): Promise<void> {
    this.connects++;
  }
}

const code = async (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: unknown) => (error as TokenWardenError).code,
  );

describe('redisStore arguments', () => {
  it.each([
    ['no options', undefined],
    ['no client', { key: KEY }],
    ['a client without eval', { client: { evalsha() {} }, key: KEY }],
    ['no key', { client: new FakeClient() }],
    ['a prefix that is not a string', { client: new FakeClient(), key: KEY, prefix: 7 }],
    ['a malformed timeout', { client: new FakeClient(), key: KEY, timeout: 'soon' }],
    ['a zero timeout', { client: new FakeClient(), key: KEY, timeout: 0 }],
  ])('refuses %s with ERR_INVALID_ARGUMENT', (_name, options) => {
    expect(() => redisStore(options as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', name: 'InvalidArgumentError' }),
    );
  });

  it('asks Redis Cluster clients for a hash tag in the prefix', () => {
    const cluster = Object.assign(new FakeClient(), { nodes: () => [] });
    expect(() => redisStore({ client: cluster, key: KEY })).toThrow(/hash tag/);
    expect(() => redisStore({ client: cluster, key: KEY, prefix: '{tw}:' })).not.toThrow();
  });

  it('prints neither its key nor its client', () => {
    const store = redisStore({ client: new FakeClient(), key: KEY });
    const shown = [String(store), JSON.stringify(store), inspect(store, { depth: 5 })].join('\n');
    expect(shown).toContain('redis');
    expect(shown).not.toMatch(/FakeClient|AQEBAQ/);
  });
});

describe('a client that is not ready', () => {
  it('sends nothing while disconnected and fails within the timeout', async () => {
    const client = new FakeClient();
    client.status = 'reconnecting';
    const store = redisStore({ client, key: KEY, timeout: 60 });
    const started = Date.now();
    expect(await code(store.get('x'))).toBe('ERR_STORE_UNAVAILABLE');
    expect(await code(store.lock!('x', { ttlMs: 1_000 }))).toBe('ERR_STORE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(500);
    expect(client.sent).toEqual([]);
    // One readiness listener shared by every waiting operation, removed with the wait.
    expect(client.listenerCount('ready')).toBeLessThanOrEqual(1);
    await store.close?.();
    expect(client.listenerCount('ready')).toBe(0);
  });

  it('runs the command once the client becomes ready within the timeout', async () => {
    const client = new FakeClient();
    client.status = 'connecting';
    const store = redisStore({ client, key: KEY, timeout: 1_000 });
    const pending = store.get('x');
    setTimeout(() => {
      client.status = 'ready';
      client.emit('ready');
    }, 30);
    expect(await pending).toBeUndefined();
    expect(client.sent).toHaveLength(1);
  });

  it('connects a lazyConnect client itself', async () => {
    const client = new FakeClient();
    client.status = 'wait';
    const store = redisStore({ client, key: KEY, timeout: 50 });
    await store.get('x').catch(() => {});
    expect(client.connects).toBe(1);
  });

  it('fails at once when the client was closed', async () => {
    const client = new FakeClient();
    client.status = 'end';
    const store = redisStore({ client, key: KEY, timeout: 5_000 });
    const started = Date.now();
    expect(await code(store.list())).toBe('ERR_STORE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(100);
  });

  it('fails a command Redis does not answer within the timeout', async () => {
    const client = new FakeClient();
    client.answer = () => new Promise(() => {});
    const store = redisStore({ client, key: KEY, timeout: 50 });
    const error = await store.get('x').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TokenWardenError);
    expect((error as TokenWardenError).code).toBe('ERR_STORE_UNAVAILABLE');
    expect((error as TokenWardenError).message).toMatch(/no answer within 50 ms/);
  });
});

describe('commands', () => {
  it('runs scripts by SHA-1 and loads them with EVAL only when Redis does not know them', async () => {
    const client = new FakeClient();
    let loaded = false;
    client.answer = async (command) => {
      if (command === 'evalsha' && !loaded) {
        throw new Error('NOSCRIPT No matching script. Please use EVAL.');
      }
      loaded = true;
      return [];
    };
    const store = redisStore({ client, key: KEY });
    await store.get('a');
    await store.get('b');
    expect(client.sent.map((s) => s.command)).toEqual(['evalsha', 'eval', 'evalsha']);
    expect(client.sent[0]?.args[0]).toMatch(/^[0-9a-f]{40}$/);
  });

  it('reports a refused command by its Redis error code, without the sealed record it carried', async () => {
    const client = new FakeClient();
    client.answer = async (_command, args) => {
      const error = new Error(
        `NOPERM this user has no permissions to run the 'evalsha' command ${args.join(' ')}`,
      );
      Object.assign(error, { command: { name: 'evalsha', args } });
      throw error;
    };
    const store = redisStore({ client, key: KEY });
    const now = Date.now();
    const error = (await store
      .set('x', {
        tokens: new TokenSet({
          accessToken: SENTINEL.accessToken,
          expiresAt: now + 60_000,
          issuedAt: now,
        }),
        meta: { createdAt: now, refreshedAt: now, uses: 0, refreshes: 1 },
      })
      .catch((caught: unknown) => caught)) as TokenWardenError;
    expect(error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(error.message).toContain('NOPERM');
    const sealed = String(client.sent[0]?.args[6]);
    expect(sealed.split('.')).toHaveLength(5);
    const rendered = [error.message, error.stack, inspect(error, { showHidden: true, depth: 5 })];
    for (const text of rendered) expect(text).not.toContain(sealed.slice(20, 60));
    expect(error.cause).toBeUndefined();
  });

  it('keeps records, locks and the channel under the prefix', async () => {
    const client = new FakeClient();
    const backend = redisBackend({ client, prefix: 'svc:' });
    client.answer = async () => 5;
    expect(await backend.write('a', 'sealed')).toBe(5);
    client.answer = async () => [1, 0];
    const lease = await backend.lock!('a', { ttlMs: 1_000 });
    const keysAndArgs = client.sent.map((s) => s.args.slice(2));
    expect(keysAndArgs[0]).toEqual([
      'svc:version',
      'svc:ids',
      'svc:record:a',
      'a',
      'sealed',
      expect.any(String),
      'svc:changes',
      '*',
    ]);
    expect(keysAndArgs[1]?.[0]).toBe('svc:lock:a');
    client.answer = async () => 1;
    await lease.release();
    expect(client.sent.at(-1)?.args.slice(2)).toEqual([
      'svc:lock:a',
      keysAndArgs[1]?.[1],
      'svc:changes',
      'a',
    ]);
    await backend.close?.();
  });
});
