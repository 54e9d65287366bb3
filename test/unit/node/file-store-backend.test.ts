// The file backend on its own: layout, corruption, I/O failures, the cross-process lock and
// its stale-lock recovery, and argument checks of fileStore().
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TokenWardenError } from '../../../src/errors.js';
import { fileBackend, fileStore } from '../../../src/node/file-store.js';
import type { StoredRecord } from '../../../src/stores/types.js';
import { TokenSet } from '../../../src/token.js';
import { findLeaks } from '../../support/sentinel.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tw-file-backend-'));
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

function backend(lockTimeoutMs = 2_000, staleLockMs = 30_000) {
  return fileBackend({ path, lockTimeoutMs, staleLockMs });
}

function recordOf(accessToken: string): StoredRecord {
  const now = Date.now();
  return {
    tokens: new TokenSet({ accessToken, expiresAt: now + 3_600_000, issuedAt: now }),
    meta: { createdAt: now, refreshedAt: now, uses: 0, refreshes: 1 },
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TokenWardenError);
    return (error as TokenWardenError).code;
  }
  return undefined;
}

/** A pid that is certainly dead: a child that already exited. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  if (!pid) throw new Error('no pid');
  return pid;
}

describe('file layout', () => {
  it('keeps every record in one JSON file, each with its version', async () => {
    const records = backend();
    const before = Date.now();
    const a = await records.write('billing', 'sealed-a');
    const b = await records.write('reports', 'sealed-b');
    // A new file's counter starts at the current time, so no version is ever handed out twice.
    expect(a).toBeGreaterThan(before);
    expect(b).toBe((a as number) + 1);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({
      v: 2,
      seq: b,
      records: {
        billing: { version: a, sealed: 'sealed-a' },
        reports: { version: b, sealed: 'sealed-b' },
      },
    });
    expect(await records.read('billing')).toBe('sealed-a');
    expect(await records.read('missing')).toBeUndefined();
    expect((await records.ids()).sort()).toEqual(['billing', 'reports']);
  });

  it('reads a missing file as empty, and creates nothing by reading', async () => {
    const records = backend();
    expect(await records.read('billing')).toBeUndefined();
    expect(await records.ids()).toEqual([]);
    await records.remove('billing');
    expect(existsSync(path)).toBe(false);
  });

  it('remove() drops one record; clear() removes the file', async () => {
    const records = backend();
    await records.writeMany?.(
      new Map([
        ['a', 'sealed-a'],
        ['b', 'sealed-b'],
      ]),
    );
    await records.remove('a');
    expect(await records.ids()).toEqual(['b']);
    await records.remove('b');
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ v: 2, records: {} });
    await records.write('c', 'sealed-c');
    await records.clear();
    expect(existsSync(path)).toBe(false);
    await records.clear();
    expect(await readdir(join(path, '..'))).toEqual([]);
  });

  it('keeps "__proto__" and "constructor" as plain ids, polluting nothing', async () => {
    const store = fileStore({ path, key });
    await store.set('__proto__', recordOf('proto-token'));
    await store.set('constructor', recordOf('ctor-token'));
    const reopened = fileStore({ path, key });
    expect((await reopened.list()).sort()).toEqual(['__proto__', 'constructor']);
    expect((await reopened.get('__proto__'))?.tokens.revealAccessToken()).toBe('proto-token');
    expect((await reopened.get('constructor'))?.tokens.revealAccessToken()).toBe('ctor-token');
    expect(({} as Record<string, unknown>)['tw_slot']).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('loses no write when several stores in one process write at once', async () => {
    const stores = [backend(), backend(), backend()];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => stores[i % 3]?.write(`id-${i}`, `sealed-${i}`)),
    );
    expect((await stores[0]?.ids())?.length).toBe(30);
    expect(await readdir(join(path, '..'))).toEqual(['tokens.json']);
  });
});

describe('a corrupt file', () => {
  const junk: [string, string | Buffer][] = [
    ['garbage', 'not json at all'],
    ['truncated JSON', '{"v":1,"records":{"a":"sealed'],
    ['an empty file', ''],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
    ['null', 'null'],
    ['an array', '[]'],
    ['no records', '{"v":1}'],
    ['records as an array', '{"v":1,"records":[]}'],
    ['a number record', '{"v":1,"records":{"a":5}}'],
    ['an empty record', '{"v":1,"records":{"a":""}}'],
    ['an object record', '{"v":1,"records":{"a":{"jwe":"x"}}}'],
    ['a string version', '{"v":"1","records":{}}'],
    ['an extra member', '{"v":1,"records":{},"plain":"token"}'],
    ['layout 2 without a counter', '{"v":2,"records":{}}'],
    ['layout 2 with a plain string record', '{"v":2,"seq":1,"records":{"a":"sealed"}}'],
    [
      'a record version above the counter',
      '{"v":2,"seq":1,"records":{"a":{"version":2,"sealed":"s"}}}',
    ],
    ['a negative version', '{"v":2,"seq":1,"records":{"a":{"version":-1,"sealed":"s"}}}'],
    [
      'a string version of a record',
      '{"v":2,"seq":1,"records":{"a":{"version":"1","sealed":"s"}}}',
    ],
    [
      'an extra member in a record',
      '{"v":2,"seq":1,"records":{"a":{"version":1,"sealed":"s","plain":"token"}}}',
    ],
    ['a record without sealed', '{"v":2,"seq":1,"records":{"a":{"version":1}}}'],
  ];

  it.each(junk)('read() of %s throws ERR_STORE_CORRUPT', async (_, content) => {
    await writeFile(path, content);
    const records = backend();
    expect(await codeOf(records.read('a'))).toBe('ERR_STORE_CORRUPT');
    // Listing is not a read of a record: nothing readable is stored.
    expect(await records.ids()).toEqual([]);
  });

  it.each(junk)('through the sealed store, %s is wiped and reported', async (_, content) => {
    await writeFile(path, content);
    const tampered: string[] = [];
    const store = fileStore({ path, key });
    store.bind?.({ tamper: (id) => tampered.push(id) });
    expect(await store.get('a')).toBeUndefined();
    expect(tampered).toEqual(['a']);
    expect(existsSync(path)).toBe(false);
  });

  it('is replaced by a write rather than failing it', async () => {
    await writeFile(path, '{"v":1,"records":{"a":');
    const store = fileStore({ path, key });
    await store.set('b', recordOf('fresh'));
    expect((await store.get('b'))?.tokens.revealAccessToken()).toBe('fresh');
  });

  it('from a newer layout is left alone: ERR_STORE_UNAVAILABLE, not wiped', async () => {
    const newer = '{"v":3,"records":{"a":"future"}}';
    await writeFile(path, newer);
    const records = backend();
    expect(await codeOf(records.read('a'))).toBe('ERR_STORE_UNAVAILABLE');
    expect(await codeOf(records.write('b', 'sealed'))).toBe('ERR_STORE_UNAVAILABLE');
    expect(await codeOf(fileStore({ path, key }).get('a'))).toBe('ERR_STORE_UNAVAILABLE');
    expect(await readFile(path, 'utf8')).toBe(newer);
  });
});

describe('I/O failures', () => {
  it('a directory at the path: ERR_STORE_UNAVAILABLE naming the path', async () => {
    await mkdir(path);
    const records = backend();
    const error = await records.read('a').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    expect((error as Error).message).toContain(path);
    expect(await codeOf(records.write('a', 'sealed'))).toBe('ERR_STORE_UNAVAILABLE');
  });

  it('a file where the directory should be: ERR_STORE_UNAVAILABLE', async () => {
    const blocker = join(path, '..', 'blocker');
    await writeFile(blocker, 'x');
    const records = fileBackend({
      path: join(blocker, 'tokens.json'),
      lockTimeoutMs: 1_000,
      staleLockMs: 30_000,
    });
    expect(await codeOf(records.write('a', 'sealed'))).toBe('ERR_STORE_UNAVAILABLE');
    expect(await codeOf(records.read('a'))).toBe('ERR_STORE_UNAVAILABLE');
  });
});

describe('the lock', () => {
  const lockOf = () => `${path}.lock`;
  const writeLock = async (content: object | string, ageMs = 0) => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(lockOf(), typeof content === 'string' ? content : JSON.stringify(content));
    if (ageMs > 0) {
      const then = new Date(Date.now() - ageMs);
      await utimes(lockOf(), then, then);
    }
  };
  const holder = (pid: number, extra: object = {}) => ({
    pid,
    host: hostname(),
    owner: randomBytes(16).toString('hex'),
    at: Date.now(),
    ...extra,
  });

  it('waits for a live holder, then fails with ERR_STORE_UNAVAILABLE naming the lock', async () => {
    await writeLock(holder(process.ppid));
    const started = Date.now();
    const error = await backend(300)
      .write('a', 'sealed')
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(error).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    expect((error as Error).message).toContain(lockOf());
    expect((error as Error).message).toContain(`process ${process.ppid}`);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(lockOf())).toBe(true);
  });

  it('proceeds as soon as a live holder releases the lock', async () => {
    await writeLock(holder(process.ppid));
    const write = backend(5_000).write('a', 'sealed');
    setTimeout(() => void rm(lockOf()), 100);
    await write;
    expect(await backend().read('a')).toBe('sealed');
  });

  it('breaks the lock of a dead process on this host at once', async () => {
    await writeLock(holder(deadPid()));
    await backend(200).write('a', 'sealed');
    expect(await backend().read('a')).toBe('sealed');
    expect(existsSync(lockOf())).toBe(false);
  });

  it('breaks a lock naming this process with an owner it does not hold', async () => {
    await writeLock(holder(process.pid));
    await backend(200).write('a', 'sealed');
    expect(existsSync(lockOf())).toBe(false);
  });

  it("trusts another host's lock until it is older than staleLockAfter", async () => {
    await writeLock(holder(deadPid(), { host: 'another-host.example' }));
    expect(await codeOf(backend(200).write('a', 'sealed'))).toBe('ERR_STORE_UNAVAILABLE');
    await writeLock(
      holder(process.ppid, { host: 'another-host.example', at: Date.now() - 60_000 }),
    );
    await backend(200, 30_000).write('a', 'sealed');
    expect(await backend().read('a')).toBe('sealed');
  });

  it('breaks an unreadable lock only once it is old', async () => {
    await writeLock('', 0);
    expect(await codeOf(backend(200).write('a', 'sealed'))).toBe('ERR_STORE_UNAVAILABLE');
    await writeLock('{"pid":', 60_000);
    await backend(200, 30_000).write('a', 'sealed');
    expect(await backend().read('a')).toBe('sealed');
  });

  it('sweeps temp files of dead writers, and keeps those of live ones', async () => {
    await backend().write('a', 'sealed');
    const folder = join(path, '..');
    const name = basename(path);
    const hex = () => randomBytes(8).toString('hex');
    const dead = deadPid();
    const orphans = [
      `${name}.${dead}-${hex()}.tmp`,
      `${name}.lock.${dead}-${hex()}.tmp`,
      `${name}.lock.${dead}-${hex()}.stale`,
    ];
    const live = `${name}.${process.ppid}-${hex()}.tmp`;
    const unrelated = `${name}.backup`;
    for (const file of [...orphans, live, unrelated]) await writeFile(join(folder, file), 'x');
    await backend().write('b', 'sealed');
    expect((await readdir(folder)).sort()).toEqual([live, name, unrelated].sort());
  });

  it('holds the lock only while writing: none is left after writes and failures', async () => {
    const records = backend();
    await records.write('a', 'sealed');
    await records.remove('a');
    await records.clear();
    expect(existsSync(lockOf())).toBe(false);
    await writeFile(path, '{"v":9,"records":{}}');
    await records.write('a', 'sealed').catch(() => {});
    expect(existsSync(lockOf())).toBe(false);
  });
});

describe('fileStore options', () => {
  it.each([
    ['no options', undefined],
    ['no path', { key: randomBytes(32) }],
    ['an empty path', { path: ' ', key: randomBytes(32) }],
    ['a NUL in the path', { path: 'a\u0000b', key: randomBytes(32) }],
    ['no key', { path: 'tokens.json' }],
    ['a short key', { path: 'tokens.json', key: randomBytes(16) }],
    [
      'a key that is not base64url',
      { path: 'tokens.json', key: 'x'.repeat(43).replace(/x$/, '!') },
    ],
    ['a malformed lockTimeout', { path: 'tokens.json', key: randomBytes(32), lockTimeout: 'soon' }],
    [
      'a negative staleLockAfter',
      { path: 'tokens.json', key: randomBytes(32), staleLockAfter: -1 },
    ],
  ])('rejects %s with ERR_INVALID_ARGUMENT', (_, options) => {
    expect(() => fileStore(options as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });

  it('prints without its key', () => {
    const keyBytes = randomBytes(32);
    const b64 = keyBytes.toString('base64url');
    const store = fileStore({ path, key: b64 });
    const printed = [inspect(store), JSON.stringify(store), String(store)];
    expect(printed.join(' ')).toContain('file');
    expect(findLeaks(printed, [b64, keyBytes.toString('base64')])).toEqual([]);
  });
});
