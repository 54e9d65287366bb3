// The file store under a warden: what reaches the disk, and what happens when the disk lies
// (SECURITY-CHECKLIST items 1-4; issue 3, "Node file store").
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { HttpResponse, http } from 'msw';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TamperEvent } from '../../../src/events.js';
import { fileStore } from '../../../src/node/file-store.js';
import { customSource } from '../../../src/sources/custom.js';
import { refreshToken } from '../../../src/sources/refresh-token.js';
import { TokenSet } from '../../../src/token.js';
import { createWarden, type Warden } from '../../../src/warden.js';
import { findLeaks, SENTINEL } from '../../support/sentinel.js';
import { TOKEN_ENDPOINT, useMsw } from '../sources/support.js';

const API = 'https://api.example.test';
const posix = process.platform !== 'win32';
const server = useMsw();

interface StoreFile {
  v: number;
  seq: number;
  records: Record<string, { version: number; sealed: string }>;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tw-file-store-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh file path per test, and the key it is sealed with. */
let path: string;
let key: string;
beforeEach(async () => {
  const sub = await mkdtemp(join(dir, 'case-'));
  path = join(sub, 'tokens.json');
  key = randomBytes(32).toString('base64url');
});

/** A source that mints distinct tokens and counts its calls. */
function minting(prefix: string, extra: { refreshToken?: string } = {}) {
  const state = { calls: 0 };
  const source = customSource(async () => {
    state.calls++;
    return { accessToken: `${prefix}-${state.calls}`, expiresIn: 3600, ...extra };
  });
  return { source, state };
}

const open: Warden[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((warden) => warden.close()));
});

/** A warden over the test's file, recording tamper events. */
function wardenOn(keyInput: string = key) {
  const tampered: TamperEvent[] = [];
  const warden = createWarden({ store: fileStore({ path, key: keyInput }) });
  warden.on('tamper', (event) => tampered.push(event));
  open.push(warden);
  return { warden, tampered };
}

async function readStoreFile(): Promise<StoreFile> {
  return JSON.parse(await readFile(path, 'utf8')) as StoreFile;
}

async function editRecord(id: string, edit: (sealed: string) => string): Promise<void> {
  const file = await readStoreFile();
  const entry = file.records[id];
  if (entry === undefined) throw new Error(`no record ${id}`);
  entry.sealed = edit(entry.sealed);
  await writeFile(path, JSON.stringify(file));
}

/** Stores a token for 'billing' through a first warden, then closes it. */
async function storeBilling(): Promise<string> {
  const { warden } = wardenOn();
  const first = minting('stored');
  const billing = warden.register('billing', { source: first.source, origins: [API] });
  const token = (await billing.getToken()).reveal();
  await warden.close();
  return token;
}

describe('fileStore with a warden', () => {
  it('writes no token, in any encoding, and no key to the file', async () => {
    const { warden } = wardenOn();
    const source = customSource(async () => ({
      accessToken: SENTINEL.accessToken,
      refreshToken: SENTINEL.refreshToken,
      expiresIn: 3600,
    }));
    await warden.register('billing', { source, origins: [API] }).getToken();
    await warden.close();

    const bytes = await readFile(path);
    const file = JSON.parse(bytes.toString('utf8')) as StoreFile;
    // The check below can fail: the record is there, just sealed.
    expect(Object.keys(file.records)).toEqual(['billing']);
    const sealed = file.records['billing']?.sealed as string;
    expect(sealed.split('.')).toHaveLength(5);
    expect(decodeProtectedHeader(sealed)).toMatchObject({
      alg: 'dir',
      enc: 'A256GCM',
      tw_slot: 'billing',
    });
    const secrets = [SENTINEL.accessToken, SENTINEL.refreshToken, key];
    expect(findLeaks([bytes.toString('utf8'), bytes.toString('latin1')], secrets)).toEqual([]);
  });

  it.skipIf(!posix)('creates the file 0600 and missing directories 0700', async () => {
    const nested = join(path, '..', 'a', 'b', 'tokens.json');
    const store = fileStore({ path: nested, key });
    const { source } = minting('t');
    const warden = createWarden({ store });
    open.push(warden);
    await warden.register('billing', { source, origins: [API] }).getToken();
    expect((await stat(nested)).mode & 0o777).toBe(0o600);
    expect((await stat(join(nested, '..'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(nested, '..', '..'))).mode & 0o777).toBe(0o700);
  });

  it.skipIf(!posix)('leaves an existing directory alone and tightens a loose file', async () => {
    const shared = join(path, '..', 'shared');
    await mkdir(shared, { mode: 0o755 });
    const loose = join(shared, 'tokens.json');
    const store = fileStore({ path: loose, key });
    const record = recordOf('loose');
    await store.set('a', record);
    await chmod(loose, 0o644);
    // A read tightens it ...
    expect(await store.get('a')).toBeDefined();
    expect((await stat(loose)).mode & 0o777).toBe(0o600);
    // ... and so does every write, which replaces the file with a 0600 one.
    await chmod(loose, 0o664);
    await store.set('b', record);
    expect((await stat(loose)).mode & 0o777).toBe(0o600);
    expect((await stat(shared)).mode & 0o777).toBe(0o755);
  });

  it('reuses the stored token after a restart, with no token request', async () => {
    const stored = await storeBilling();
    const { warden, tampered } = wardenOn();
    const second = minting('second');
    const token = await warden
      .register('billing', { source: second.source, origins: [API] })
      .getToken();
    expect(token.reveal()).toBe(stored);
    expect(second.state.calls).toBe(0);
    expect(tampered).toEqual([]);
  });

  // Segments of a compact JWE: header, encrypted key (empty for dir), IV, ciphertext, tag.
  it.each([
    ['protected header', 0],
    ['IV', 2],
    ['ciphertext', 3],
    ['authentication tag', 4],
  ])('discards a record with a flipped %s: tamper event, fresh token', async (_, segment) => {
    const stored = await storeBilling();
    await editRecord('billing', (sealed) => {
      const parts = sealed.split('.');
      const part = parts[segment] as string;
      // A middle character: the last one of a segment may carry only padding bits.
      const at = Math.floor(part.length / 2);
      parts[segment] = part.slice(0, at) + (part[at] === 'A' ? 'B' : 'A') + part.slice(at + 1);
      return parts.join('.');
    });
    const { warden, tampered } = wardenOn();
    const fresh = minting('fresh');
    const token = await warden
      .register('billing', { source: fresh.source, origins: [API] })
      .getToken();
    expect(token.reveal()).toBe('fresh-1');
    expect(token.reveal()).not.toBe(stored);
    expect(fresh.state.calls).toBe(1);
    expect(tampered).toEqual([{ id: 'billing', store: 'file' }]);
    // The fresh token replaced the bad record, under a valid seal.
    expect(
      decodeProtectedHeader((await readStoreFile()).records['billing']?.sealed as string),
    ).toMatchObject({
      tw_slot: 'billing',
    });
  });

  it.each([
    ['to half its length', (size: number) => Math.floor(size / 2)],
    ['by its last two bytes', (size: number) => size - 2],
    ['to nothing', () => 0],
  ])('discards a file truncated %s: tamper event, fresh token', async (_, length) => {
    await storeBilling();
    await truncate(path, length((await stat(path)).size));
    const { warden, tampered } = wardenOn();
    const fresh = minting('fresh');
    const token = await warden
      .register('billing', { source: fresh.source, origins: [API] })
      .getToken();
    expect(token.reveal()).toBe('fresh-1');
    expect(tampered).toEqual([{ id: 'billing', store: 'file' }]);
    expect(Object.keys((await readStoreFile()).records)).toEqual(['billing']);
  });

  it('discards a file with a byte flipped in its JSON: tamper event, fresh token', async () => {
    await storeBilling();
    const bytes = await readFile(path);
    const at = bytes.indexOf('"records"');
    bytes[at] = 0x7b; // '"' -> '{'
    await writeFile(path, bytes);
    const { warden, tampered } = wardenOn();
    const fresh = minting('fresh');
    await warden.register('billing', { source: fresh.source, origins: [API] }).getToken();
    expect(fresh.state.calls).toBe(1);
    expect(tampered).toEqual([{ id: 'billing', store: 'file' }]);
  });

  it("never uses a record copied into another credential's slot", async () => {
    const { warden: first } = wardenOn();
    const billing = minting('billing');
    const reports = minting('reports');
    await first.register('billing', { source: billing.source, origins: [API] }).getToken();
    await first.register('reports', { source: reports.source, origins: [API] }).getToken();
    await first.close();
    const file = await readStoreFile();
    file.records['reports'] = file.records['billing'] as StoreFile['records'][string];
    await writeFile(path, JSON.stringify(file));

    const { warden, tampered } = wardenOn();
    const billing2 = minting('billing2');
    const reports2 = minting('reports2');
    const reportsToken = await warden
      .register('reports', { source: reports2.source, origins: [API] })
      .getToken();
    expect(reportsToken.reveal()).toBe('reports2-1');
    expect(tampered).toEqual([{ id: 'reports', store: 'file' }]);
    // The original in its own slot is untouched and still used.
    const billingToken = await warden
      .register('billing', { source: billing2.source, origins: [API] })
      .getToken();
    expect(billingToken.reveal()).toBe('billing-1');
    expect(billing2.state.calls).toBe(0);
  });

  it('never opens a record with another key, nor deletes it: the read fails loudly', async () => {
    const stored = await storeBilling();
    const before = await readFile(path);
    const otherKey = randomBytes(32).toString('base64url');
    const { warden, tampered } = wardenOn(otherKey);
    const fresh = minting('fresh');
    const billing = warden.register('billing', { source: fresh.source, origins: [API] });
    await expect(billing.getToken()).rejects.toMatchObject({
      code: 'ERR_KEY_UNAVAILABLE',
      message: expect.stringMatching(/same key, or, if that key is lost for good, delete/),
    });
    // Another process sharing the file may hold the right key: nothing was fetched to replace
    // the record, and nothing was deleted; the wrong key is reported.
    expect(fresh.state.calls).toBe(0);
    expect(tampered.map((event) => event.id)).toContain('billing');
    await warden.close();
    expect(await readFile(path)).toEqual(before);
    expect((await fileStore({ path, key }).get('billing'))?.tokens.revealAccessToken()).toBe(
      stored,
    );
  });

  it('redeems the stored (rotated) refresh token, not the configured one', async () => {
    const redeemed: string[] = [];
    server.use(
      http.post(TOKEN_ENDPOINT, async ({ request }) => {
        const form = new URLSearchParams(await request.text());
        redeemed.push(form.get('refresh_token') ?? '');
        const n = redeemed.length;
        return HttpResponse.json({
          access_token: `at-${n}`,
          token_type: 'Bearer',
          expires_in: 3600,
          refresh_token: `rt-${n}`,
        });
      }),
    );
    const configured = () =>
      refreshToken({ tokenEndpoint: TOKEN_ENDPOINT, clientId: 'app', refreshToken: 'rt-0' });

    const { warden: first } = wardenOn();
    expect(
      (await first.register('user', { source: configured(), origins: [API] }).getToken()).reveal(),
    ).toBe('at-1');
    await first.close();
    expect(redeemed).toEqual(['rt-0']);

    // A restart with the same (now rotated-out) configuration: the stored set is used, and the
    // next refresh redeems the stored refresh token.
    const { warden: second } = wardenOn();
    const user = second.register('user', { source: configured(), origins: [API] });
    expect((await user.getToken()).reveal()).toBe('at-1');
    expect(redeemed).toEqual(['rt-0']);
    expect((await user.getToken({ forceRefresh: true })).reveal()).toBe('at-2');
    expect(redeemed).toEqual(['rt-0', 'rt-1']);
    await second.close();

    // An expired stored set still carries the latest refresh token.
    const now = Date.now();
    await fileStore({ path, key }).set('user', {
      tokens: new TokenSet({
        accessToken: 'expired',
        expiresAt: now - 1000,
        issuedAt: now - 3_601_000,
        refreshToken: 'rt-stored',
      }),
      meta: { createdAt: now, refreshedAt: now, uses: 0, refreshes: 1 },
    });
    const { warden: third } = wardenOn();
    expect(
      (await third.register('user', { source: configured(), origins: [API] }).getToken()).reveal(),
    ).toBe('at-3');
    expect(redeemed).toEqual(['rt-0', 'rt-1', 'rt-stored']);
  });

  it('seals each write with a fresh IV: one token written twice differs', async () => {
    const store = fileStore({ path, key });
    const record = recordOf('same');
    await store.set('billing', record);
    const first = (await readStoreFile()).records['billing']?.sealed as string;
    await store.set('billing', record);
    const second = (await readStoreFile()).records['billing']?.sealed as string;
    expect(second).not.toBe(first);
    expect(second.split('.')[2]).not.toBe(first.split('.')[2]);
    expect(second.split('.')[3]).not.toBe(first.split('.')[3]);
    expect((await store.get('billing'))?.tokens.revealAccessToken()).toBe('same');
  });

  it('rotateKey re-seals every record; the old key opens none of them', async () => {
    const store = fileStore({ path, key });
    const ids = ['billing', 'reports', 'user'];
    for (const id of ids) await store.set(id, recordOf(`token-${id}`));
    const before = (await readStoreFile()).records;
    const oldKid = decodeProtectedHeader(before['billing']?.sealed as string).kid;

    const newKey = randomBytes(32).toString('base64url');
    await store.rotateKey(newKey);
    const after = (await readStoreFile()).records;
    expect(Object.keys(after).sort()).toEqual(ids);
    const kids = new Set(ids.map((id) => decodeProtectedHeader(after[id]?.sealed as string).kid));
    expect(kids.size).toBe(1);
    expect(kids.has(oldKid)).toBe(false);
    for (const id of ids) expect(after[id]?.sealed).not.toBe(before[id]?.sealed);
    // The rotating store goes on with the new key.
    expect((await store.get('user'))?.tokens.revealAccessToken()).toBe('token-user');

    const reopened = fileStore({ path, key: newKey });
    for (const id of ids) {
      expect((await reopened.get(id))?.tokens.revealAccessToken()).toBe(`token-${id}`);
    }
    // The old key opens none of them, and deletes none of them either.
    const withOldKey = fileStore({ path, key });
    for (const id of ids) {
      await expect(withOldKey.get(id)).rejects.toMatchObject({ code: 'ERR_KEY_UNAVAILABLE' });
    }
    expect(Object.keys((await readStoreFile()).records).sort()).toEqual(ids);
  });
});

function recordOf(accessToken: string) {
  const now = Date.now();
  return {
    tokens: new TokenSet({ accessToken, expiresAt: now + 3_600_000, issuedAt: now }),
    meta: { createdAt: now, refreshedAt: now, uses: 0, refreshes: 1 },
  };
}
