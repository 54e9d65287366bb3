// DPoP keys at rest: a sealed store seals an extractable key's private JWK with the tokens; a
// backend that keeps CryptoKeys keeps a non-extractable pair itself, bound to the sealed record
// by its thumbprint. A swapped or missing pair discards the record, like a tampered one.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  clientCredentials,
  createWarden,
  customSource,
  DpopKey,
  memoryStore,
  type Warden,
} from '../../../src/index.js';
import { fileStore } from '../../../src/node/index.js';
import { sealedStore } from '../../../src/stores/sealed.js';
import type { RecordBackend, StoredRecord } from '../../../src/stores/types.js';
import { TokenSet } from '../../../src/token.js';
import { mapBackend } from '../../support/map-backend.js';
import { SENTINEL } from '../../support/sentinel.js';

const KEY = new Uint8Array(32).fill(5);

function record(dpopKey?: DpopKey): StoredRecord {
  return {
    tokens: new TokenSet({
      accessToken: SENTINEL.accessToken,
      tokenType: 'DPoP',
      expiresAt: Date.now() + 3_600_000,
      issuedAt: Date.now(),
    }),
    meta: { createdAt: 1, refreshedAt: 2, uses: 0, refreshes: 1 },
    ...(dpopKey ? { dpopKey } : {}),
  };
}

/** A map backend that also keeps CryptoKey pairs, as IndexedDB does. */
function pairKeepingBackend() {
  const backend = mapBackend();
  const pairs = new Map<string, CryptoKeyPair>();
  const keeping: RecordBackend & { pairs: Map<string, CryptoKeyPair> } = {
    ...backend,
    pairs,
    async writeKeyPair(id, pair) {
      pairs.set(id, pair);
    },
    async readKeyPair(id) {
      return pairs.get(id);
    },
    async removeKeyPair(id) {
      pairs.delete(id);
    },
  };
  return { backend, keeping };
}

describe('DPoP keys in sealed stores', () => {
  it('seals an extractable key with the tokens and opens it to the same key', async () => {
    const backend = mapBackend();
    const store = sealedStore(backend, KEY);
    expect(store.keepsCryptoKeys).toBeUndefined();
    const key = await DpopKey.generate('ES256', true);
    await store.set('api', record(key));
    const raw = backend.records.get('api') ?? '';
    // The private member is sealed, never readable at rest.
    expect(raw).not.toContain(key.exportPrivateJwk()?.d);
    const opened = await store.get('api');
    expect(opened?.dpopKey?.thumbprint).toBe(key.thumbprint);
    expect(opened?.dpopKey?.algorithm).toBe('ES256');
    // The rebuilt key signs proofs the original public key verifies.
    const proof = await opened?.dpopKey?.sign({ htm: 'GET', htu: 'https://a.example/x', iat: 1 });
    const { jwtVerify, EmbeddedJWK } = await import('jose');
    const verified = await jwtVerify(proof ?? '', EmbeddedJWK, { typ: 'dpop+jwt' });
    expect(verified.protectedHeader.jwk).toEqual(key.publicJwk);
  });

  it('keeps a non-extractable pair in a backend that can, bound by its thumbprint', async () => {
    const { backend, keeping } = pairKeepingBackend();
    const store = sealedStore(keeping, KEY);
    expect(store.keepsCryptoKeys).toBe(true);
    const key = await DpopKey.generate('EdDSA', false);
    await store.set('api', record(key));
    expect(keeping.pairs.get('api')?.privateKey.extractable).toBe(false);
    const opened = await store.get('api');
    expect(opened?.dpopKey?.thumbprint).toBe(key.thumbprint);
    expect(opened?.dpopKey?.extractable).toBe(false);
    expect(backend.records.get('api')).not.toContain('"d"');
    // Deleting the record deletes the pair too.
    await store.delete('api');
    expect(keeping.pairs.has('api')).toBe(false);
  });

  it('discards a record whose kept pair was swapped or lost, and reports it', async () => {
    const { keeping } = pairKeepingBackend();
    const store = sealedStore(keeping, KEY);
    const tampered: string[] = [];
    store.bind?.({ tamper: (id) => tampered.push(id) });
    await store.set('api', record(await DpopKey.generate('ES256', false)));
    keeping.pairs.set('api', (await DpopKey.generate('ES256', false)).pair);
    expect(await store.get('api')).toBeUndefined();
    await store.set('other', record(await DpopKey.generate('ES256', false)));
    keeping.pairs.delete('other');
    expect(await store.get('other')).toBeUndefined();
    expect(tampered).toEqual(['api', 'other']);
  });

  it('creates the key before the first token, so the first record carries both', async () => {
    const store = memoryStore();
    const warden = createWarden({ store });
    const credential = warden.register('custom', {
      source: customSource(async () => ({
        accessToken: SENTINEL.accessToken,
        tokenType: 'DPoP',
        expiresIn: 300,
      })),
      origins: ['https://api.example.com'],
      dpop: true,
    });
    await credential.getToken();
    const stored = await store.get('custom');
    expect(stored?.dpopKey?.thumbprint).toBeDefined();
    expect(stored?.dpopKey?.thumbprint).toBe(credential.status().dpop?.thumbprint);
    await warden.close();
  });

  it('refuses a non-extractable key where it cannot be kept', async () => {
    const store = sealedStore(mapBackend(), KEY);
    await expect(
      store.set('api', record(await DpopKey.generate('ES256', false))),
    ).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
  });
});

describe('a DPoP-bound credential over a file store', () => {
  const ISSUER = 'https://auth.example.com';
  const API = 'https://api.example.com';
  const jkts: string[] = [];
  const server = setupServer(
    http.post(`${ISSUER}/token`, async ({ request }) => {
      const { decodeProtectedHeader, calculateJwkThumbprint } = await import('jose');
      const header = decodeProtectedHeader(request.headers.get('dpop') ?? '');
      jkts.push(await calculateJwkThumbprint(header.jwk ?? {}));
      return HttpResponse.json({
        access_token: `${SENTINEL.accessToken}-${jkts.length}`,
        token_type: 'DPoP',
        expires_in: 300,
      });
    }),
    http.get(`${API}/*`, async ({ request }) => {
      const { decodeProtectedHeader, calculateJwkThumbprint } = await import('jose');
      const header = decodeProtectedHeader(request.headers.get('dpop') ?? '');
      return HttpResponse.json({ jkt: await calculateJwkThumbprint(header.jwk ?? {}) });
    }),
  );
  let dir: string;
  const wardens: Warden[] = [];
  beforeAll(async () => {
    server.listen({ onUnhandledRequest: 'error' });
    dir = await mkdtemp(join(tmpdir(), 'tw-dpop-'));
  });
  afterEach(async () => {
    await Promise.all(wardens.splice(0).map((w) => w.close()));
  });
  afterAll(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  function register(path: string) {
    const warden = createWarden({ store: fileStore({ path, key: KEY }) });
    wardens.push(warden);
    return warden.register('api', {
      source: clientCredentials({
        tokenEndpoint: `${ISSUER}/token`,
        clientId: 'svc',
        clientSecret: SENTINEL.clientSecret,
      }),
      origins: [API],
      dpop: true,
    });
  }

  it('stores the key sealed, and a restarted instance signs with the same key', async () => {
    const path = join(dir, 'tokens.json');
    const first = register(path);
    const seen = (await (await first.fetch(`${API}/a`)).json()) as { jkt: string };
    expect(seen.jkt).toBe(jkts[0]);
    const file = await readFile(path, 'utf8');
    expect(file).not.toContain(SENTINEL.accessToken);
    expect(file).not.toContain('"crv"');
    await Promise.all(wardens.splice(0).map((w) => w.close()));
    // A new warden over the same file: no token request, the same key.
    const second = register(path);
    const again = (await (await second.fetch(`${API}/b`)).json()) as { jkt: string };
    expect(again.jkt).toBe(seen.jkt);
    expect(jkts).toHaveLength(1);
    expect(second.status().dpop?.thumbprint).toBe(seen.jkt);
  });
});
