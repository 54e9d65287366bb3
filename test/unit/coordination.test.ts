import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createWarden,
  customSource,
  memoryStore,
  type RefreshEvent,
  refreshToken,
  type TokenStore,
  type Warden,
} from '../../src/index.js';

import { rotatingServer } from '../support/rotating-server.js';

const AUTH = 'https://auth.example.test';
const API = 'https://api.example.test';

const server = rotatingServer(AUTH, API);

beforeAll(() => server.msw.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.msw.close());
beforeEach(() => server.reset());

/** Several wardens over one store stand for several tabs or processes sharing it. */
function fleet(store: TokenStore, size: number, extra: Record<string, unknown> = {}) {
  const wardens: Warden[] = [];
  const refreshes: RefreshEvent[] = [];
  const credentials = Array.from({ length: size }, () => {
    const warden = createWarden({ store });
    wardens.push(warden);
    warden.on('refresh', (event) => refreshes.push(event));
    return warden.register('user', {
      source: refreshToken({
        tokenEndpoint: `${AUTH}/token`,
        clientId: 'spa',
        refreshToken: 'rt-0',
      }),
      origins: [API],
      ...extra,
    });
  });
  return {
    credentials,
    refreshes,
    close: () => Promise.all(wardens.map((warden) => warden.close())),
  };
}

describe('one refresh per rotation across credentials sharing a store', () => {
  let close: (() => Promise<unknown>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('redeems the refresh token once when every instance needs a first token', async () => {
    const group = fleet(memoryStore(), 6);
    close = group.close;
    server.setDelay(20);
    const tokens = await Promise.all(group.credentials.map((c) => c.getToken()));
    expect(new Set(tokens.map((t) => t.reveal()))).toEqual(new Set(['at-1']));
    expect(server.redeemed).toEqual(['rt-0']);
    expect(group.refreshes.filter((e) => e.reason === 'shared')).toHaveLength(5);
  });

  it('rotates ten times with concurrent forced refreshes and never redeems a token twice', async () => {
    const group = fleet(memoryStore(), 5);
    close = group.close;
    await Promise.all(group.credentials.map((c) => c.getToken()));
    for (let round = 0; round < 10; round++) {
      // Every instance saw the same token fail (a 401): each asks to recover from it.
      const failed = (await group.credentials[0]!.getToken()).reveal();
      await Promise.all(
        group.credentials.map(async (c) => {
          if ((await c.getToken()).reveal() === failed) await c.getToken({ forceRefresh: true });
        }),
      );
    }
    expect(server.invalidGrants).toEqual([]);
    expect(new Set(server.redeemed).size).toBe(server.redeemed.length);
    const final = await Promise.all(
      group.credentials.map(async (c) => (await c.getToken()).reveal()),
    );
    expect(new Set(final).size).toBe(1);
  });

  it('a usage write never overwrites a token set that another instance rotated meanwhile', async () => {
    const store = memoryStore();
    const group = fleet(store, 2, { metadataFlushInterval: 20 });
    close = group.close;
    const [a, b] = group.credentials as [
      (typeof group.credentials)[0],
      (typeof group.credentials)[0],
    ];
    await a.getToken();
    await b.getToken(); // takes over at-1 from the store
    await a.fetch(`${API}/x`); // usage to flush later, based on the record of at-1
    await b.getToken({ forceRefresh: true }); // b rotates to rt-2 and stores it
    await new Promise((resolve) => setTimeout(resolve, 60)); // a's usage flush runs
    expect((await store.get('user'))?.tokens.revealRefreshToken()).toBe('rt-2');
    expect((await a.getToken()).reveal()).toBe('at-2'); // a took over b's set
    await a.getToken({ forceRefresh: true });
    expect(server.invalidGrants).toEqual([]);
  });

  it('a holder that never finishes loses the lock after its TTL and the others go on', async () => {
    const store = memoryStore();
    let hang = true;
    const calls: string[] = [];
    const make = (name: string) => {
      const warden = createWarden({ store });
      return {
        warden,
        credential: warden.register('svc', {
          source: customSource(async ({ signal }) => {
            calls.push(name);
            if (hang && name === 'stuck') {
              await new Promise((_, reject) =>
                signal.addEventListener('abort', () => reject(signal.reason)),
              );
            }
            return { accessToken: `tok-${name}`, expiresIn: 3600 };
          }),
          origins: [API],
          timeout: 100,
          lockTtl: 300,
        }),
      };
    };
    const stuck = make('stuck');
    const healthy = make('healthy');
    close = () => Promise.all([stuck.warden.close(), healthy.warden.close()]);
    const pending = stuck.credential.getToken().catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    const token = await healthy.credential.getToken();
    expect(token.reveal()).toBe('tok-healthy');
    expect(Date.now() - started).toBeLessThan(1_000);
    hang = false;
    expect(await pending).toMatchObject({ code: expect.stringMatching(/^ERR_/) });
  });

  it('rejects a lock TTL that a live holder could outlast', () => {
    const warden = createWarden();
    expect(() =>
      warden.register('x', {
        source: customSource(async () => ({ accessToken: 'a', expiresIn: 60 })),
        origins: [API],
        timeout: '30s',
        lockTtl: '10s',
      }),
    ).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

describe('forget()', () => {
  it('wipes the stored record and asks a refresh-token credential to sign in again', async () => {
    const store = memoryStore();
    const group = fleet(store, 1);
    const [credential] = group.credentials as [(typeof group.credentials)[0]];
    await credential.getToken();
    await credential.forget();
    expect(await store.get('user')).toBeUndefined();
    expect(credential.status().state).toBe('reauth-required');
    await expect(credential.fetch(`${API}/x`)).rejects.toMatchObject({
      code: 'ERR_REAUTH_REQUIRED',
    });
    expect(server.redeemed).toEqual(['rt-0']);
    await group.close();
  });

  it('lets a client-credentials-like credential fetch a new token on its next request', async () => {
    let n = 0;
    const warden = createWarden();
    const credential = warden.register('svc', {
      source: customSource(async () => ({ accessToken: `tok-${++n}`, expiresIn: 3600 })),
      origins: [API],
    });
    await credential.getToken();
    await credential.forget();
    expect(credential.status().state).toBe('empty');
    expect((await credential.getToken()).reveal()).toBe('tok-2');
    await warden.close();
  });
});

describe('store failures around a refresh', () => {
  it('does not refresh under the lock when the store cannot be read', async () => {
    const inner = memoryStore();
    const unreadable: TokenStore = {
      ...inner,
      kind: 'unreadable',
      lock: (id, options) => (inner.lock as NonNullable<TokenStore['lock']>)(id, options),
      get: async () => {
        throw new Error('connection refused');
      },
    };
    const group = fleet(unreadable, 1);
    const [credential] = group.credentials as [(typeof group.credentials)[0]];
    await expect(credential.getToken()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    expect(server.redeemed).toEqual([]);
    await group.close();
  });

  it('retries a failed write under the lock until the rotated set is stored', async () => {
    const inner = memoryStore();
    let failures = 2;
    const flaky: TokenStore = {
      ...inner,
      kind: 'flaky',
      get: (id) => inner.get(id),
      lock: (id, options) => (inner.lock as NonNullable<TokenStore['lock']>)(id, options),
      set: async (id, record, options) => {
        if (failures-- > 0) throw new Error('disk full');
        return inner.set(id, record, options);
      },
    };
    const group = fleet(flaky, 1);
    const [credential] = group.credentials as [(typeof group.credentials)[0]];
    await credential.getToken();
    expect((await inner.get('user'))?.tokens.revealRefreshToken()).toBe('rt-1');
    expect(failures).toBe(-1);
    await group.close();
  });

  it('reads the store again after a failed first read, without waiting for a restart', async () => {
    const inner = memoryStore();
    let down = true;
    const reads: number[] = [];
    // No lock: this store only tests the first read; a locked refresh needs a readable store.
    const { lock: _lock, ...unlocked } = inner;
    const blip: TokenStore = {
      ...unlocked,
      kind: 'blip',
      get: async (id) => {
        reads.push(Date.now());
        if (down) throw new Error('connection refused');
        return inner.get(id);
      },
    };
    const seeded = createWarden({ store: inner });
    await seeded
      .register('svc', {
        source: customSource(async () => ({ accessToken: 'stored', expiresIn: 3600 })),
        origins: [API],
      })
      .getToken();
    await seeded.close();
    const warden = createWarden({ store: blip });
    let minted = 0;
    const credential = warden.register('svc', {
      source: customSource(async () => ({ accessToken: `new-${++minted}`, expiresIn: 3600 })),
      origins: [API],
    });
    expect((await credential.getToken()).reveal()).toBe('new-1'); // the store was down
    expect(reads).toHaveLength(1);
    await credential.getToken();
    expect(reads).toHaveLength(1); // not on every request
    down = false;
    const realNow = Date.now;
    Date.now = () => realNow() + 6_000;
    try {
      await credential.getToken();
      expect(reads).toHaveLength(2);
    } finally {
      Date.now = realNow;
      await warden.close();
    }
  });
});
