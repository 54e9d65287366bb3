// Record versions of the file store: every write gets a new one, conditional writes compare
// them (SECURITY-CHECKLIST item 21), layout-1 files are read at version 0 and migrated, and
// credentials of several stores over one file refresh once between them (issue 4).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpResponse, http } from 'msw';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileBackend, fileStore } from '../../../src/node/file-store.js';
import { refreshToken } from '../../../src/sources/refresh-token.js';
import type { StoredRecord } from '../../../src/stores/types.js';
import { TokenSet } from '../../../src/token.js';
import { createWarden, type Warden } from '../../../src/warden.js';
import { TOKEN_ENDPOINT, useMsw } from '../sources/support.js';

const API = 'https://api.example.test';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tw-file-versions-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let path: string;
let key: string;
beforeEach(async () => {
  path = join(await mkdtemp(join(dir, 'case-')), 'tokens.json');
  key = randomBytes(32).toString('base64url');
});

const backend = () => fileBackend({ path, lockTimeoutMs: 5_000, staleLockMs: 30_000 });

function recordOf(accessToken: string, refresh?: string): StoredRecord {
  const now = Date.now();
  return {
    tokens: new TokenSet({
      accessToken,
      expiresAt: now + 3_600_000,
      issuedAt: now,
      ...(refresh !== undefined && { refreshToken: refresh }),
    }),
    meta: { createdAt: now, refreshedAt: now, uses: 0, refreshes: 1 },
  };
}

describe('record versions', () => {
  it('grow with every write, and readVersioned returns them', async () => {
    const records = backend();
    expect(await records.readVersioned?.('a')).toBeUndefined();
    const first = await records.write('a', 'sealed-1');
    const other = await records.write('b', 'sealed-b');
    const second = await records.write('a', 'sealed-2');
    expect(typeof first).toBe('number');
    expect(other).toBeGreaterThan(first as number);
    expect(second).toBeGreaterThan(other as number);
    expect(await records.readVersioned?.('a')).toEqual({ sealed: 'sealed-2', version: second });
    expect(await records.readVersioned?.('b')).toEqual({ sealed: 'sealed-b', version: other });
    // Another backend over the file sees the same versions.
    expect(await backend().readVersioned?.('a')).toEqual({ sealed: 'sealed-2', version: second });
  });

  it('compareAndWrite writes only over the expected version', async () => {
    const records = backend();
    const cas = records.compareAndWrite as NonNullable<typeof records.compareAndWrite>;
    // null: only when there is no record.
    const created = await cas('a', 'sealed-1', null);
    expect(created).not.toBe(false);
    expect(await cas('a', 'sealed-x', null)).toBe(false);
    expect(await cas('missing', 'sealed-x', 5)).toBe(false);
    expect(await records.read('missing')).toBeUndefined();
    // A stale version fails and leaves the file as it was.
    const before = await readFile(path, 'utf8');
    expect(await cas('a', 'sealed-old', (created as number) - 1)).toBe(false);
    expect(await readFile(path, 'utf8')).toBe(before);
    const next = await cas('a', 'sealed-2', created as number);
    expect(next).toBeGreaterThan(created as number);
    expect(await records.readVersioned?.('a')).toEqual({ sealed: 'sealed-2', version: next });
    // The version that just succeeded is stale now.
    expect(await cas('a', 'sealed-3', created as number)).toBe(false);
    expect(await records.read('a')).toBe('sealed-2');
  });

  it('never hands out a version twice for a record: not after remove(), nor after clear()', async () => {
    const records = backend();
    const seen = new Set<number>();
    const note = (version: unknown) => {
      expect(typeof version).toBe('number');
      expect(seen.has(version as number)).toBe(false);
      seen.add(version as number);
      return version as number;
    };
    const first = note(await records.write('a', 'sealed-1'));
    await records.remove('a');
    const second = note(await records.write('a', 'sealed-2'));
    expect(second).toBeGreaterThan(first);
    await records.clear();
    // A wiped file starts its counter at the current time, past every version handed out.
    const third = note(await records.write('a', 'sealed-3'));
    expect(third).toBeGreaterThan(second);
    expect(await records.compareAndWrite?.('a', 'sealed-4', first)).toBe(false);
  });

  it('loses no update when 3 backends increment one record with compare-and-swap', async () => {
    const backends = [backend(), backend(), backend()];
    await backends[0]?.write('n', '0');
    const increment = async (records: ReturnType<typeof backend>) => {
      for (;;) {
        const current = await records.readVersioned?.('n');
        const value = Number(current?.sealed);
        const written = await records.compareAndWrite?.(
          'n',
          String(value + 1),
          current?.version ?? null,
        );
        if (written !== false) return;
      }
    };
    await Promise.all(Array.from({ length: 30 }, (_, i) => increment(backends[i % 3] as never)));
    expect(await backends[1]?.read('n')).toBe('30');
  });

  it('writeMany gives the records of one batch one new version', async () => {
    const records = backend();
    const before = (await records.write('x', 'sealed-x')) as number;
    await records.writeMany?.(
      new Map([
        ['a', 'sealed-a'],
        ['b', 'sealed-b'],
      ]),
    );
    const a = await records.readVersioned?.('a');
    const b = await records.readVersioned?.('b');
    expect(a?.version).toBe(before + 1);
    expect(b?.version).toBe(before + 1);
  });
});

describe('a layout-1 file', () => {
  it('is read with every record at version 0, and rewritten as layout 2 by a write', async () => {
    await writeFile(path, JSON.stringify({ v: 1, records: { a: 'sealed-a', b: 'sealed-b' } }));
    const records = backend();
    expect(await records.readVersioned?.('a')).toEqual({ sealed: 'sealed-a', version: 0 });
    expect(await records.read('b')).toBe('sealed-b');
    expect(await records.compareAndWrite?.('a', 'sealed-x', null)).toBe(false);
    const version = await records.compareAndWrite?.('a', 'sealed-a2', 0);
    expect(version).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({
      v: 2,
      seq: version,
      records: {
        a: { version, sealed: 'sealed-a2' },
        b: { version: 0, sealed: 'sealed-b' },
      },
    });
  });

  it('keeps its records readable through the sealed store across the migration', async () => {
    const store = fileStore({ path, key });
    await store.set('billing', recordOf('legacy-token'));
    await store.set('reports', recordOf('other-token'));
    // Turn the file into what the previous release wrote.
    const current = JSON.parse(await readFile(path, 'utf8')) as {
      records: Record<string, { sealed: string }>;
    };
    const legacy = Object.fromEntries(
      Object.entries(current.records).map(([id, entry]) => [id, entry.sealed]),
    );
    await writeFile(path, JSON.stringify({ v: 1, records: legacy }));
    const reopened = fileStore({ path, key });
    const found = await reopened.get('billing');
    expect(found?.tokens.revealAccessToken()).toBe('legacy-token');
    expect(found?.version).toBe(0);
    const next = await reopened.set('billing', recordOf('new-token'), { expectedVersion: 0 });
    expect(next).toBeGreaterThan(0);
    expect((await reopened.get('billing'))?.version).toBe(next);
    expect((await reopened.get('reports'))?.tokens.revealAccessToken()).toBe('other-token');
  });
});

describe('the sealed file store', () => {
  it('reports versions and refuses a write over a newer record with ERR_STORE_CONFLICT', async () => {
    const a = fileStore({ path, key });
    const b = fileStore({ path, key });
    const v1 = await a.set('billing', recordOf('one'), { expectedVersion: null });
    expect((await b.get('billing'))?.version).toBe(v1);
    const v2 = await b.set('billing', recordOf('two'), { expectedVersion: v1 as number });
    await expect(
      a.set('billing', recordOf('stale'), { expectedVersion: v1 as number }),
    ).rejects.toMatchObject({ code: 'ERR_STORE_CONFLICT' });
    await expect(
      a.set('billing', recordOf('again'), { expectedVersion: null }),
    ).rejects.toMatchObject({ code: 'ERR_STORE_CONFLICT' });
    expect((await a.get('billing'))?.tokens.revealAccessToken()).toBe('two');
    expect((await a.get('billing'))?.version).toBe(v2);
  });
});

describe('credentials of several stores over one file', () => {
  const server = useMsw();
  const open: Warden[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((warden) => warden.close()));
  });

  /** A token endpoint with rotation and reuse detection, like a real server's. */
  function rotatingServer(delayMs = 0) {
    const state = {
      valid: new Set(['rt-0']),
      next: 1,
      redeemed: [] as string[],
      invalidGrants: 0,
      delayMs,
      onRequest: undefined as (() => Promise<void>) | undefined,
    };
    server.use(
      http.post(TOKEN_ENDPOINT, async ({ request }) => {
        const presented = new URLSearchParams(await request.text()).get('refresh_token') ?? '';
        state.redeemed.push(presented);
        await state.onRequest?.();
        if (state.delayMs) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
        if (!state.valid.has(presented)) {
          state.invalidGrants++;
          state.valid.clear(); // reuse detected: the whole grant dies
          return HttpResponse.json({ error: 'invalid_grant' }, { status: 400 });
        }
        state.valid.delete(presented);
        const n = state.next++;
        state.valid.add(`rt-${n}`);
        return HttpResponse.json({
          access_token: `at-${n}`,
          refresh_token: `rt-${n}`,
          token_type: 'Bearer',
          expires_in: 3600,
        });
      }),
      http.get(`${API}/*`, () => HttpResponse.json({ ok: true })),
    );
    return state;
  }

  function credentialOn(extra: Record<string, unknown> = {}) {
    // A store object of its own per warden: as separate processes would have.
    const warden = createWarden({ store: fileStore({ path, key }) });
    open.push(warden);
    return warden.register('user', {
      source: refreshToken({
        tokenEndpoint: TOKEN_ENDPOINT,
        clientId: 'cli',
        refreshToken: 'rt-0',
      }),
      origins: [API],
      ...extra,
    });
  }

  it('redeem the refresh token once when all of them need a first token', async () => {
    const state = rotatingServer(30);
    const credentials = Array.from({ length: 5 }, () => credentialOn());
    const tokens = await Promise.all(credentials.map((c) => c.getToken()));
    expect(new Set(tokens.map((t) => t.reveal()))).toEqual(new Set(['at-1']));
    expect(state.redeemed).toEqual(['rt-0']);
    // Forced refreshes of one failed token: still one redemption per rotation.
    for (let round = 0; round < 3; round++) {
      await Promise.all(credentials.map((c) => c.getToken({ forceRefresh: true })));
    }
    expect(state.invalidGrants).toBe(0);
    expect(new Set(state.redeemed).size).toBe(state.redeemed.length);
  });

  it("keep a rotated refresh token when another store's usage write lands during the refresh", async () => {
    const state = rotatingServer();
    const refresher = credentialOn();
    const user = credentialOn({ metadataFlushInterval: 10 });
    await refresher.getToken();
    await user.getToken(); // takes at-1 over from the file
    // While the refresher's token request is in flight, the other store writes usage
    // metadata for the same token set: the record's version moves on under the refresher.
    state.onRequest = async () => {
      state.onRequest = undefined;
      await user.fetch(`${API}/x`);
      await new Promise((resolve) => setTimeout(resolve, 60));
    };
    expect((await refresher.getToken({ forceRefresh: true })).reveal()).toBe('at-2');
    const stored = await fileStore({ path, key }).get('user');
    expect(stored?.tokens.revealRefreshToken()).toBe('rt-2');
    // The other one takes the new set over, and goes on from its refresh token.
    expect((await user.getToken({ forceRefresh: true })).reveal()).toBe('at-2');
    expect((await user.getToken({ forceRefresh: true })).reveal()).toBe('at-3');
    expect(state.redeemed).toEqual(['rt-0', 'rt-1', 'rt-2']);
    expect(state.invalidGrants).toBe(0);
  });
});
