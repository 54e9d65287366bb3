// The `store-error` event: every failed read, write or delete of a credential's record is
// reported, with a coded error that carries no secret, and the credential goes on from memory.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  createWarden,
  customSource,
  memoryStore,
  type StoreErrorEvent,
  type TokenStore,
  TokenWardenError,
} from '../../src/index.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const API = 'https://api.example.com';

/** A memory store whose operations fail while `failing` names them. */
function failingStore(failing: Set<'get' | 'set' | 'delete'>, error: () => unknown): TokenStore {
  const inner = memoryStore();
  return {
    ...inner,
    kind: 'flaky',
    get: async (id) => {
      if (failing.has('get')) throw error();
      return inner.get(id);
    },
    set: async (id, record, options) => {
      if (failing.has('set')) throw error();
      return inner.set(id, record, options);
    },
    delete: async (id) => {
      if (failing.has('delete')) throw error();
      return inner.delete(id);
    },
  };
}

function setup(failing: Set<'get' | 'set' | 'delete'>, error: () => unknown) {
  const warden = createWarden({ store: failingStore(failing, error) });
  const events: StoreErrorEvent[] = [];
  warden.on('store-error', (event) => events.push(event));
  const perCredential: StoreErrorEvent[] = [];
  let issued = 0;
  const cred = warden.register('billing', {
    source: customSource(async () => ({
      accessToken: `${SENTINEL.accessToken}${++issued}`,
      refreshToken: SENTINEL.refreshToken,
      expiresIn: 300,
    })),
    origins: [API],
  });
  cred.on('store-error', (event) => perCredential.push(event));
  return { warden, cred, events, perCredential };
}

describe('store-error', () => {
  it('reports a failed write, and the new token is still used from memory', async () => {
    const failing = new Set<'get' | 'set' | 'delete'>(['set']);
    const { warden, cred, events, perCredential } = setup(
      failing,
      () => new Error(`disk full while writing ${SENTINEL.accessToken}1`),
    );
    const token = await cred.getToken();
    expect(token.reveal()).toBe(`${SENTINEL.accessToken}1`);
    // The write is retried a few times under the lock (a rotated refresh token must not be
    // lost); each failed attempt is reported.
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(new Set(events.map((e) => e.operation))).toEqual(new Set(['write']));
    const [event] = events as [StoreErrorEvent];
    expect(event).toMatchObject({
      id: 'billing',
      store: 'flaky',
      operation: 'write',
      code: 'ERR_STORE_UNAVAILABLE',
    });
    expect(event.error).toBeInstanceOf(TokenWardenError);
    expect(event.error.message).toMatch(
      /flaky store failed to write the record of credential "billing"/,
    );
    expect(perCredential).toEqual(events);
    // The foreign error is the cause (the store's own error); the event and its error's own
    // fields carry no token.
    const { cause: _cause, ...fields } = event.error;
    expect(
      findLeaks(
        [{ ...event, error: fields }, event.error.message, event.error.stack, inspect(fields)],
        Object.values(SENTINEL),
      ),
    ).toEqual([]);
    await warden.close();
  });

  it('reports a failed read with the store error passed through as it is', async () => {
    const failing = new Set<'get' | 'set' | 'delete'>(['get']);
    const unavailable = new TokenWardenError('ERR_STORE_UNAVAILABLE', 'Redis did not answer.');
    const { warden, cred, events } = setup(failing, () => unavailable);
    await cred.getToken().catch(() => {});
    expect(events[0]).toMatchObject({ operation: 'read', code: 'ERR_STORE_UNAVAILABLE' });
    expect(events[0]?.error).toBe(unavailable);
    await warden.close();
  });

  it('reports a failed delete on forget() and revoke(), which still wipe memory', async () => {
    const failing = new Set<'get' | 'set' | 'delete'>();
    const { warden, cred, events } = setup(
      failing,
      () => new TokenWardenError('ERR_KEY_UNAVAILABLE', 'no key'),
    );
    await cred.getToken();
    failing.add('delete');
    await cred.forget();
    await cred.revoke();
    expect(events.map((e) => [e.operation, e.code])).toEqual([
      ['delete', 'ERR_KEY_UNAVAILABLE'],
      ['delete', 'ERR_KEY_UNAVAILABLE'],
    ]);
    expect(cred.status().state).toBe('empty');
    await warden.close();
  });

  it('is silent while the store works', async () => {
    const { warden, cred, events } = setup(new Set(), () => new Error('unused'));
    await cred.getToken();
    await cred.forget();
    await cred.getToken();
    expect(events).toEqual([]);
    await warden.close();
  });
});
