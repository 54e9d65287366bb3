import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createWarden,
  customSource,
  refreshToken,
  sealedStore,
  type TamperEvent,
  type TokenStore,
} from '../../../src/index.js';
import { type MapBackend, mapBackend } from '../../support/map-backend.js';

const KEY = new Uint8Array(32).fill(3);
const AUTH = 'https://auth.example.test';
const API = 'https://api.example.test';

let rotation = 0;
const redeemed: string[] = [];
const server = setupServer(
  http.post(`${AUTH}/token`, async ({ request }) => {
    const form = new URLSearchParams(await request.text());
    redeemed.push(form.get('refresh_token') ?? '');
    rotation++;
    return HttpResponse.json({
      access_token: `at-${rotation}`,
      refresh_token: `rt-${rotation}`,
      token_type: 'Bearer',
      expires_in: 3600,
    });
  }),
  http.get(`${API}/*`, () => HttpResponse.json({ ok: true })),
);
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  rotation = 0;
  redeemed.length = 0;
});

function counting() {
  const calls = { n: 0 };
  const source = customSource(async () => {
    calls.n++;
    return { accessToken: `tok-${calls.n}`, expiresIn: 3600 };
  });
  return { calls, source };
}

describe('a warden with a persistent store', () => {
  let backend: MapBackend;
  beforeEach(() => {
    backend = mapBackend();
  });

  it('reuses a valid stored token after a restart without a token request', async () => {
    const first = counting();
    const w1 = createWarden({ store: sealedStore(backend, KEY) });
    const token = await w1.register('svc', { source: first.source, origins: [API] }).getToken();
    await w1.close();

    const second = counting();
    const w2 = createWarden({ store: sealedStore(backend, KEY) });
    const again = await w2.register('svc', { source: second.source, origins: [API] }).getToken();
    expect(again.reveal()).toBe(token.reveal());
    expect(second.calls.n).toBe(0);
    await w2.close();
  });

  it('redeems the stored, rotated refresh token rather than the configured one it superseded', async () => {
    const options = () => ({
      source: refreshToken({
        tokenEndpoint: `${AUTH}/token`,
        clientId: 'spa',
        refreshToken: 'rt-0',
      }),
      origins: [API],
    });
    const w1 = createWarden({ store: sealedStore(backend, KEY) });
    await w1.register('user', options()).getToken();
    await w1.close();
    // The app restarts with the same configuration; rt-0 was rotated out by the server.
    const w2 = createWarden({ store: sealedStore(backend, KEY) });
    await w2.register('user', options()).getToken({ forceRefresh: true });
    expect(redeemed).toEqual(['rt-0', 'rt-1']);
    await w2.close();
  });

  it('hands out a new token only after its record is durably stored', async () => {
    const inner = sealedStore(backend, KEY);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow: TokenStore = {
      ...inner,
      kind: inner.kind,
      get: (id) => inner.get(id),
      set: async (id, record) => {
        await gate;
        await inner.set(id, record);
      },
    };
    const warden = createWarden({ store: slow });
    const { source } = counting();
    let resolved = false;
    const pending = warden
      .register('svc', { source, origins: [API] })
      .getToken()
      .then((token) => {
        resolved = true;
        return token;
      });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(resolved).toBe(false);
    expect(backend.records.size).toBe(0);
    release();
    await pending;
    expect(backend.records.size).toBe(1);
    await warden.close();
  });

  it('persists usage in batches, not per request, and flushes on close', async () => {
    const store = sealedStore(backend, KEY);
    const warden = createWarden({ store });
    const { source } = counting();
    const credential = warden.register('svc', {
      source,
      origins: [API],
      metadataFlushInterval: 200,
    });
    for (let i = 0; i < 20; i++) await credential.fetch(`${API}/x`);
    expect(backend.writes).toBe(1); // the token set itself
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(backend.writes).toBe(2); // one batched usage write
    for (let i = 0; i < 5; i++) await credential.fetch(`${API}/x`);
    await warden.close();
    expect(backend.writes).toBe(3);
    const stored = await sealedStore(backend, KEY).get('svc');
    expect(stored?.meta).toMatchObject({ uses: 25, refreshes: 1 });
    expect(stored?.meta.lastUsedAt).toBeGreaterThan(0);

    // Usage history continues across restarts.
    const w2 = createWarden({ store: sealedStore(backend, KEY) });
    const again = w2.register('svc', { source, origins: [API] });
    await again.fetch(`${API}/x`);
    await w2.close();
    expect((await sealedStore(backend, KEY).get('svc'))?.meta).toMatchObject({ uses: 26 });
  });

  it('emits tamper for a corrupted record and fetches a fresh token instead of using it', async () => {
    const first = counting();
    const w1 = createWarden({ store: sealedStore(backend, KEY) });
    await w1.register('svc', { source: first.source, origins: [API] }).getToken();
    await w1.close();
    const sealed = backend.records.get('svc') as string;
    backend.records.set('svc', `${sealed.slice(0, -10)}AAAAAAAAAA`);

    const events: TamperEvent[] = [];
    const w2 = createWarden({ store: sealedStore(backend, KEY) });
    w2.on('tamper', (event) => events.push(event));
    const second = counting();
    const token = await w2.register('svc', { source: second.source, origins: [API] }).getToken();
    expect(events).toEqual([{ id: 'svc', store: 'map' }]);
    expect(second.calls.n).toBe(1);
    expect(token.reveal()).toBe('tok-1');
    await w2.close();
  });
});
