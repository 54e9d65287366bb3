// keychainKey and keychainStore against a real Secret Service: gnome-keyring on a private D-Bus
// session bus, started by test/support/keyring.ts. What the tests read back from the keychain
// they read with @napi-rs/keyring itself, the way any other program of the user could.
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import * as keyring from '@napi-rs/keyring';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWarden,
  customSource,
  isTokenWardenError,
  sealedStore,
  type TamperEvent,
  TokenSet,
} from '../../src/index.js';
import { keychainKey, keychainStore } from '../../src/node/index.js';
import type { KeyringModule } from '../../src/node/internal/keyring.js';
import { deriveKid } from '../../src/stores/keys.js';
import { type SessionBus, startSecretService } from '../support/keyring.js';
import { mapBackend } from '../support/map-backend.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

// The loader's view of the library must match the installed version's types.
keyring satisfies KeyringModule;

const API = 'https://api.example.test';
const PINNED = { linux: { store: 'secret-service' } } as const;
const KEY_ACCOUNT = '__tokenwarden_key__';

let bus: SessionBus;
beforeAll(async () => {
  bus = await startSecretService();
});
afterAll(async () => {
  await bus?.stop();
});

const newService = () => `tokenwarden-test-${randomUUID()}`;
const secretOf = async (service: string, account: string) =>
  (await new keyring.AsyncEntry(service, account, PINNED).getPassword()) ?? undefined;
const setSecret = (service: string, account: string, value: string) =>
  new keyring.AsyncEntry(service, account, PINNED).setPassword(value);
const deleteSecret = (service: string, account: string) =>
  new keyring.AsyncEntry(service, account, PINNED).deleteCredential();
const accountsOf = async (service: string) =>
  (await keyring.findCredentialsAsync(service)).map((entry) => entry.account).sort();

function fromBase64Url(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

/** A customSource that counts its token requests and hands out the given tokens. */
function counting(accessToken: string = SENTINEL.accessToken) {
  const calls = { n: 0 };
  const source = customSource(async () => {
    calls.n++;
    return {
      accessToken: calls.n === 1 ? accessToken : `${accessToken}-${calls.n}`,
      refreshToken: SENTINEL.refreshToken,
      expiresIn: 3600,
    };
  });
  return { calls, source };
}

describe('keychainKey', () => {
  it('generates a key once, keeps it in the keychain, and finds it again after a restart', async () => {
    const service = newService();
    const first = keychainKey({ service });
    const key = await first.current();
    expect(await first.current()).toBe(key);

    // The pointer entry names the key id; the key entry holds base64url of 32 random bytes.
    expect(await accountsOf(service)).toEqual([KEY_ACCOUNT, `${KEY_ACCOUNT}/${key.kid}`].sort());
    expect(await secretOf(service, KEY_ACCOUNT)).toBe(key.kid);
    const secret = (await secretOf(service, `${KEY_ACCOUNT}/${key.kid}`)) as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const bytes = fromBase64Url(secret);
    expect(bytes).toHaveLength(32);
    expect(await deriveKid(bytes)).toBe(key.kid);

    // A new provider (a restarted process) uses the same key rather than generating another.
    const restarted = keychainKey({ service });
    expect((await restarted.current()).kid).toBe(key.kid);
    expect(await accountsOf(service)).toHaveLength(2);
  });

  it('uses the key only as a non-extractable CryptoKey, and never prints it', async () => {
    const service = newService();
    const provider = keychainKey({ service, account: 'file-key' });
    const { kid, key } = await provider.current();
    expect(key).toBeInstanceOf(CryptoKey);
    const cryptoKey = key as CryptoKey;
    expect(cryptoKey.extractable).toBe(false);
    expect(cryptoKey.algorithm).toMatchObject({ name: 'AES-GCM', length: 256 });
    await expect(crypto.subtle.exportKey('raw', cryptoKey)).rejects.toThrow();
    await expect(crypto.subtle.exportKey('jwk', cryptoKey)).rejects.toThrow();

    const secret = (await secretOf(service, `file-key/${kid}`)) as string;
    expect(findLeaks([provider, String(provider), inspect(provider)], [secret])).toEqual([]);
    expect(JSON.stringify(provider)).toBe('{"kind":"keychain","key":"[REDACTED]"}');
  });

  it('rotates to a new current key, keeps the old one findable until retired', async () => {
    const service = newService();
    const provider = keychainKey({ service });
    const old = await provider.current();
    const fresh = await provider.rotate();
    expect(fresh.kid).not.toBe(old.kid);
    expect(await provider.current()).toBe(fresh);
    expect((await provider.find(old.kid))?.kid).toBe(old.kid);

    // After a restart the rotated key is current and the retained one is still found.
    const restarted = keychainKey({ service });
    expect((await restarted.current()).kid).toBe(fresh.kid);
    expect((await restarted.find(old.kid))?.kid).toBe(old.kid);
    expect(await restarted.find('AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
    expect(await restarted.find('../../etc/passwd')).toBeUndefined();

    await provider.retire(old.kid);
    expect(await secretOf(service, `${KEY_ACCOUNT}/${old.kid}`)).toBeUndefined();
    expect(await provider.find(old.kid)).toBeUndefined();
    expect(await keychainKey({ service }).find(old.kid)).toBeUndefined();
    // Retiring the current key is refused silently: records are sealed under it.
    await provider.retire(fresh.kid);
    expect((await keychainKey({ service }).current()).kid).toBe(fresh.kid);

    await expect(provider.rotate(new Uint8Array(32))).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('creates a new key when the keychain entry vanished, and never reuses a damaged one', async () => {
    const service = newService();
    const old = await keychainKey({ service }).current();
    await deleteSecret(service, `${KEY_ACCOUNT}/${old.kid}`);
    const replaced = await keychainKey({ service }).current();
    expect(replaced.kid).not.toBe(old.kid);
    expect(await secretOf(service, KEY_ACCOUNT)).toBe(replaced.kid);

    // Key bytes that do not hash to the id they are filed under are not that key.
    await setSecret(service, `${KEY_ACCOUNT}/${replaced.kid}`, 'A'.repeat(43));
    const again = await keychainKey({ service }).current();
    expect(again.kid).not.toBe(replaced.kid);
  });

  it('plugs into any sealed store: a record survives a restart and dies with the key', async () => {
    const service = newService();
    const backend = mapBackend();
    const tamper: TamperEvent[] = [];
    const first = counting();
    const w1 = createWarden({ store: sealedStore(backend, keychainKey({ service })) });
    const token = await w1.register('svc', { source: first.source, origins: [API] }).getToken();
    await w1.close();
    const kid = (await keychainKey({ service }).current()).kid;
    expect(decodeProtectedHeader(backend.records.get('svc') as string).kid).toBe(kid);
    expect(findLeaks([...backend.records.values()], [SENTINEL.accessToken])).toEqual([]);

    const second = counting();
    const w2 = createWarden({ store: sealedStore(backend, keychainKey({ service })) });
    const again = await w2.register('svc', { source: second.source, origins: [API] }).getToken();
    expect(again.reveal()).toBe(token.reveal());
    expect(second.calls.n).toBe(0);
    await w2.close();

    // Without the keychain entry the record cannot be opened: it is dropped and reported.
    await deleteSecret(service, `${KEY_ACCOUNT}/${kid}`);
    const third = counting('tw-after-key-loss');
    const w3 = createWarden({ store: sealedStore(backend, keychainKey({ service })) });
    w3.on('tamper', (event) => tamper.push(event));
    const fresh = await w3.register('svc', { source: third.source, origins: [API] }).getToken();
    expect(fresh.reveal()).toBe('tw-after-key-loss');
    expect(third.calls.n).toBe(1);
    expect(tamper).toEqual([{ id: 'svc', store: 'map' }]);
    await w3.close();
    const newKid = (await keychainKey({ service }).current()).kid;
    expect(newKid).not.toBe(kid);
    expect(decodeProtectedHeader(backend.records.get('svc') as string).kid).toBe(newKid);
  });

  it("re-seals a store's records under a new keychain key and deletes the old key", async () => {
    const service = newService();
    const backend = mapBackend();
    const store = sealedStore(backend, keychainKey({ service }));
    const warden = createWarden({ store });
    await warden.register('svc', { source: counting().source, origins: [API] }).getToken();
    const before = decodeProtectedHeader(backend.records.get('svc') as string).kid as string;
    await store.rotateKey();
    const after = decodeProtectedHeader(backend.records.get('svc') as string).kid as string;
    expect(after).not.toBe(before);
    expect(await accountsOf(service)).toEqual([KEY_ACCOUNT, `${KEY_ACCOUNT}/${after}`].sort());
    expect((await store.get('svc'))?.tokens.revealAccessToken()).toBe(SENTINEL.accessToken);
    await warden.close();
  });

  it('rejects a malformed service or account synchronously with a coded error', () => {
    for (const options of [
      { service: '' },
      { service: 'a\u0000b' },
      { service: 'x'.repeat(257) },
      { service: 'app', account: 'a/b' },
      { service: 'app', account: '' },
      null,
    ]) {
      expect(() => keychainKey(options as never)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
    expect(() => keychainStore({ service: 7 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});

describe('keychainStore', () => {
  it('keeps sealed records in the keychain: a second warden reuses the token with no request', async () => {
    const service = newService();
    const store = keychainStore({ service });
    expect(store.kind).toBe('keychain');
    const first = counting();
    const w1 = createWarden({ store });
    const token = await w1.register('billing', { source: first.source, origins: [API] }).getToken();
    expect(first.calls.n).toBe(1);
    await w1.close();

    const accounts = await accountsOf(service);
    expect(accounts).toContain('record/billing');
    expect(accounts).toContain(KEY_ACCOUNT);

    const second = counting();
    const w2 = createWarden({ store: keychainStore({ service }) });
    const again = await w2
      .register('billing', { source: second.source, origins: [API] })
      .getToken();
    expect(again.reveal()).toBe(token.reveal());
    expect(second.calls.n).toBe(0);
    expect(await keychainStore({ service }).list()).toEqual(['billing']);
    await w2.close();
  });

  it('holds no token in any keychain secret, in any encoding', async () => {
    const service = newService();
    const warden = createWarden({ store: keychainStore({ service }) });
    await warden.register('a', { source: counting().source, origins: [API] }).getToken();
    const long = `${SENTINEL.accessToken}-${'j'.repeat(2600)}`;
    await warden.register('b', { source: counting(long).source, origins: [API] }).getToken();
    await warden.close();

    const everything = await keyring.findCredentialsAsync(service);
    expect(everything.length).toBeGreaterThanOrEqual(4);
    const raw = everything.flatMap((entry) => [entry.account, entry.password]);
    expect(findLeaks(raw, [SENTINEL.accessToken, SENTINEL.refreshToken, long])).toEqual([]);
    // Every record entry is a compact JWE, a pointer to its parts, or a part of a compact JWE:
    // never a readable token set.
    for (const { account, password } of everything) {
      if (!account.startsWith('record/')) continue;
      if (account.includes('#')) expect(password).toMatch(/^[A-Za-z0-9_.-]{1,1000}$/);
      else expect(password).toMatch(/^(ey[A-Za-z0-9_.-]+|#parts:[A-Za-z0-9_-]{8}:\d+)$/);
    }
  });

  it('splits a record too large for one keychain secret, and replaces and deletes every part', async () => {
    const service = newService();
    const long = `${SENTINEL.accessToken}-${'p'.repeat(3000)}`;
    const w1 = createWarden({ store: keychainStore({ service }) });
    await w1.register('big', { source: counting(long).source, origins: [API] }).getToken();
    await w1.close();
    const pointer = (await secretOf(service, 'record/big')) as string;
    const [, generation, count] = /^#parts:([A-Za-z0-9_-]{8}):(\d+)$/.exec(pointer) ?? [];
    expect(Number(count)).toBeGreaterThanOrEqual(4);
    const parts = (await accountsOf(service)).filter((a) => a.startsWith('record/big#'));
    expect(parts).toHaveLength(Number(count));
    expect(parts.every((account) => account.startsWith(`record/big#${generation}.`))).toBe(true);
    for (const account of parts) {
      expect(((await secretOf(service, account)) as string).length).toBeLessThanOrEqual(1000);
    }

    const store = keychainStore({ service });
    expect(await store.list()).toEqual(['big']);
    expect((await store.get('big'))?.tokens.revealAccessToken()).toBe(long);

    // A new large record gets new parts; the old generation's parts are deleted after the switch.
    const stored = await store.get('big');
    if (!stored) throw new Error('the record is gone');
    const longer = `${SENTINEL.accessToken}-${'q'.repeat(4500)}`;
    const bigger = new TokenSet({
      accessToken: longer,
      expiresAt: Date.now() + 3_600_000,
      issuedAt: Date.now(),
      expirySource: 'expires_in',
    });
    await store.set('big', { tokens: bigger, meta: stored.meta });
    const [, nextGeneration, nextCount] =
      /^#parts:([A-Za-z0-9_-]{8}):(\d+)$/.exec((await secretOf(service, 'record/big')) as string) ??
      [];
    expect(nextGeneration).not.toBe(generation);
    const nextParts = (await accountsOf(service)).filter((a) => a.startsWith('record/big#'));
    expect(nextParts).toHaveLength(Number(nextCount));
    expect(nextParts.every((a) => a.startsWith(`record/big#${nextGeneration}.`))).toBe(true);
    expect((await store.get('big'))?.tokens.revealAccessToken()).toBe(longer);

    // A smaller record replaces the parts: none of the old ones is left behind.
    const short = new TokenSet({
      accessToken: 'tw-short-token',
      expiresAt: Date.now() + 3_600_000,
      issuedAt: Date.now(),
      expirySource: 'expires_in',
    });
    await store.set('big', { tokens: short, meta: stored.meta });
    expect(await secretOf(service, 'record/big')).toMatch(/^ey/);
    expect((await accountsOf(service)).filter((a) => a.startsWith('record/'))).toEqual([
      'record/big',
    ]);
    expect((await store.get('big'))?.tokens.revealAccessToken()).toBe('tw-short-token');

    await store.delete('big');
    expect((await accountsOf(service)).filter((a) => a.startsWith('record/'))).toEqual([]);
    expect(await store.get('big')).toBeUndefined();
  });

  it('discards a record swapped into another slot, reports tamper, and fetches a fresh token', async () => {
    const service = newService();
    const w1 = createWarden({ store: keychainStore({ service }) });
    const alpha = await w1
      .register('alpha', { source: counting('tw-alpha-token-1').source, origins: [API] })
      .getToken();
    await w1
      .register('beta', { source: counting('tw-beta-token-1').source, origins: [API] })
      .getToken();
    await w1.close();

    await setSecret(service, 'record/beta', (await secretOf(service, 'record/alpha')) as string);

    const tamper: TamperEvent[] = [];
    const w2 = createWarden({ store: keychainStore({ service }) });
    w2.on('tamper', (event) => tamper.push(event));
    const beta = counting('tw-beta-token-2');
    const token = await w2.register('beta', { source: beta.source, origins: [API] }).getToken();
    expect(tamper).toEqual([{ id: 'beta', store: 'keychain' }]);
    expect(token.reveal()).toBe('tw-beta-token-2');
    expect(token.reveal()).not.toBe(alpha.reveal());
    expect(beta.calls.n).toBe(1);
    await w2.close();
    // The fresh token replaced the swapped record; alpha's record is untouched.
    const store = keychainStore({ service });
    expect((await store.get('beta'))?.tokens.revealAccessToken()).toBe('tw-beta-token-2');
    expect((await store.get('alpha'))?.tokens.revealAccessToken()).toBe(alpha.reveal());
  });

  it('treats a record with a missing part as tampered, never as a shorter record', async () => {
    const service = newService();
    const long = `${SENTINEL.accessToken}-${'m'.repeat(2500)}`;
    const w1 = createWarden({ store: keychainStore({ service }) });
    await w1.register('big', { source: counting(long).source, origins: [API] }).getToken();
    await w1.close();
    const [, generation] =
      /^#parts:([A-Za-z0-9_-]{8})/.exec((await secretOf(service, 'record/big')) as string) ?? [];
    await deleteSecret(service, `record/big#${generation}.1`);

    const tamper: TamperEvent[] = [];
    const w2 = createWarden({ store: keychainStore({ service }) });
    w2.on('tamper', (event) => tamper.push(event));
    const fresh = counting('tw-big-fresh');
    const token = await w2.register('big', { source: fresh.source, origins: [API] }).getToken();
    expect(tamper).toEqual([{ id: 'big', store: 'keychain' }]);
    expect(token.reveal()).toBe('tw-big-fresh');
    await w2.close();
    // Only the fresh record remains: the damaged record's remaining parts were removed.
    expect((await accountsOf(service)).filter((a) => a.startsWith('record/'))).toEqual([
      'record/big',
    ]);
  });

  it('treats a forged part pointer as tampered without chasing it', async () => {
    const service = newService();
    const store = keychainStore({ service });
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    for (const forged of ['#parts:AAAAAAAA:999', '#parts:AAAAAAAA:3', '#junk']) {
      await setSecret(service, 'record/x', forged);
      const started = Date.now();
      expect(await store.get('x')).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await secretOf(service, 'record/x')).toBeUndefined();
    }
    expect(tampered).toEqual(['x', 'x', 'x']);
  });

  it('delete removes the keychain entry and the record', async () => {
    const service = newService();
    const store = keychainStore({ service });
    const warden = createWarden({ store });
    await warden.register('one', { source: counting().source, origins: [API] }).getToken();
    await warden.register('two', { source: counting().source, origins: [API] }).getToken();
    expect((await store.list()).sort()).toEqual(['one', 'two']);
    await store.delete('one');
    expect(await secretOf(service, 'record/one')).toBeUndefined();
    expect(await store.list()).toEqual(['two']);
    expect(await store.get('one')).toBeUndefined();
    await warden.close();
  });

  it('seals records with a caller-supplied key instead of a keychain key when given one', async () => {
    const service = newService();
    const key = new Uint8Array(32).fill(5);
    const warden = createWarden({ store: keychainStore({ service, key }) });
    await warden.register('svc', { source: counting().source, origins: [API] }).getToken();
    await warden.close();
    expect(await accountsOf(service)).toEqual(['record/svc']);
    const header = decodeProtectedHeader((await secretOf(service, 'record/svc')) as string);
    expect(header.kid).toBe(await deriveKid(new Uint8Array(32).fill(5)));
    expect((await keychainStore({ service, key }).get('svc'))?.tokens.revealAccessToken()).toBe(
      SENTINEL.accessToken,
    );
  });

  it('fails with ERR_STORE_UNAVAILABLE naming the locked keyring', async () => {
    // Last in the file: the keyring stays locked (unlocking needs a desktop prompt).
    const service = newService();
    const { kid } = await keychainKey({ service }).current();
    const secret = (await secretOf(service, `${KEY_ACCOUNT}/${kid}`)) as string;
    await bus.lock();
    const error = await keychainKey({ service })
      .current()
      .catch((caught: unknown) => caught);
    expect(isTokenWardenError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    expect((error as Error).message).toMatch(/keyring is locked: unlock it/);
    expect(findLeaks([error], [secret])).toEqual([]);
  });
});
