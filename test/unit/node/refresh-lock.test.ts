// The file store's per-credential refresh lock: exclusive, held across a token request without
// blocking writes, recovered at once from a dead holder and after the lease from a hung one,
// released only by its holder (compare-and-delete), with a lease signal that reports a lost
// lock (issue 4; SECURITY-CHECKLIST item 37, as it applies to a shared file).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileBackend, fileStore } from '../../../src/node/file-store.js';
import { refreshLockPath } from '../../../src/node/internal/refresh-lock.js';
import type { StoreLease } from '../../../src/stores/types.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tw-refresh-lock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let path: string;
beforeEach(async () => {
  path = join(await mkdtemp(join(dir, 'case-')), 'tokens.json');
});

const backend = () => fileBackend({ path, lockTimeoutMs: 2_000, staleLockMs: 30_000 });
const lockOf = (id: string) => refreshLockPath(path, id);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function take(id: string, ttlMs = 10_000, signal?: AbortSignal): Promise<StoreLease> {
  const lock = backend().lock;
  if (!lock) throw new Error('the file backend has no lock');
  return lock(id, { ttlMs, ...(signal && { signal }) });
}

/** A pid that is certainly dead: a child that already exited. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  if (!pid) throw new Error('no pid');
  return pid;
}

/** Writes a refresh lock as another process would have left it. */
async function plant(
  id: string,
  holder: { pid: number; at?: number; ttl?: number; host?: string },
) {
  await mkdir(join(path, '..'), { recursive: true });
  const content = {
    pid: holder.pid,
    host: holder.host ?? hostname(),
    owner: randomBytes(16).toString('hex'),
    at: holder.at ?? Date.now(),
    ttl: holder.ttl ?? 60_000,
  };
  await writeFile(lockOf(id), JSON.stringify(content));
  return JSON.stringify(content);
}

async function timed<T>(promise: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await promise;
  return { value, ms: Date.now() - started };
}

describe('the refresh lock', () => {
  it('is a lock file per credential next to the token file, naming its holder and lease', async () => {
    const lease = await take('billing', 5_000);
    const name = basename(lockOf('billing'));
    expect(name).toMatch(/^tokens\.json\.[0-9a-f]{32}\.refresh\.lock$/);
    expect(lockOf('billing')).not.toBe(lockOf('reports'));
    // The name tells nothing about the credential.
    expect(name).not.toContain('billing');
    const content = JSON.parse(await readFile(lockOf('billing'), 'utf8'));
    expect(content).toMatchObject({ pid: process.pid, host: hostname(), ttl: 5_000 });
    expect(content.owner).toMatch(/^[0-9a-f]{32}$/);
    await lease.release();
    expect(await readdir(join(path, '..'))).toEqual([]);
  });

  it('creates the missing directory of the token file', async () => {
    path = join(path, '..', 'not', 'yet', 'tokens.json');
    const lease = await take('billing');
    expect(existsSync(lockOf('billing'))).toBe(true);
    await lease.release();
  });

  it('is exclusive: holders of one credential never overlap, others do not wait', async () => {
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const lease = await take('billing');
        inside++;
        most = Math.max(most, inside);
        order.push(i);
        await sleep(15);
        inside--;
        await lease.release();
      }),
    );
    expect(most).toBe(1);
    expect(order).toHaveLength(6);
    // Another credential's lock is independent.
    const held = await take('billing');
    const other = await timed(take('reports'));
    expect(other.ms).toBeLessThan(500);
    await Promise.all([held.release(), other.value.release()]);
  });

  it('waits for a live holder and proceeds soon after its release', async () => {
    const first = await take('billing');
    const second = timed(take('billing'));
    await sleep(300);
    await first.release();
    const { value, ms } = await second;
    expect(ms).toBeGreaterThanOrEqual(290);
    // Waiters poll with backoff capped near 100 ms.
    expect(ms).toBeLessThan(300 + 400);
    await value.release();
  });

  it('does not block writes, of this credential or others, while held', async () => {
    const records = backend();
    const lease = await take('billing');
    const { ms } = await timed(
      Promise.all([records.write('billing', 'sealed-a'), records.write('reports', 'sealed-b')]),
    );
    expect(ms).toBeLessThan(1_000);
    expect(await records.read('billing')).toBe('sealed-a');
    await lease.release();
  });

  it('is taken over at once from a holder whose process is dead, whatever its lease', async () => {
    await plant('billing', { pid: deadPid(), ttl: 600_000 });
    const { value, ms } = await timed(take('billing'));
    expect(ms).toBeLessThan(500);
    expect(JSON.parse(await readFile(lockOf('billing'), 'utf8')).pid).toBe(process.pid);
    await value.release();
    expect(existsSync(lockOf('billing'))).toBe(false);
  });

  it('is taken by one waiter at a time when many find a dead holder at once', async () => {
    for (let round = 0; round < 5; round++) {
      await plant('billing', { pid: deadPid() });
      let inside = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          const lease = await take('billing');
          inside++;
          most = Math.max(most, inside);
          await sleep(5);
          expect(lease.signal.aborted).toBe(false);
          inside--;
          await lease.release();
        }),
      );
      expect(most).toBe(1);
      expect(existsSync(lockOf('billing'))).toBe(false);
    }
  });

  it('is taken over from a live holder only once its lease has passed', async () => {
    await plant('billing', { pid: process.ppid, ttl: 400 });
    const { value, ms } = await timed(take('billing'));
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(1_500);
    await value.release();
    // A lease that ran out long ago is no obstacle at all.
    await plant('billing', { pid: process.ppid, at: Date.now() - 10_000, ttl: 1_000 });
    const late = await timed(take('billing'));
    expect(late.ms).toBeLessThan(500);
    await late.value.release();
  });

  it("trusts another host's holder until its lease has passed, dead pid or not", async () => {
    await plant('billing', { pid: deadPid(), host: 'another-host.example', ttl: 400 });
    const { value, ms } = await timed(take('billing'));
    expect(ms).toBeGreaterThanOrEqual(350);
    await value.release();
  });

  it("breaks an unreadable lock only once it is older than the waiter's TTL", async () => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(lockOf('billing'), '{"pid":');
    const { value, ms } = await timed(take('billing', 400));
    expect(ms).toBeGreaterThanOrEqual(350);
    await value.release();
  });

  it('stops waiting when its signal aborts: ERR_ABORTED, nothing left behind', async () => {
    const planted = await plant('billing', { pid: process.ppid });
    const controller = new AbortController();
    const waiting = take('billing', 10_000, controller.signal).catch((e: unknown) => e);
    await sleep(150);
    controller.abort();
    const started = Date.now();
    expect(await waiting).toMatchObject({ code: 'ERR_ABORTED' });
    expect(Date.now() - started).toBeLessThan(100);
    // Only the live holder's lock remains, untouched.
    expect(await readdir(join(path, '..'))).toEqual([basename(lockOf('billing'))]);
    expect(await readFile(lockOf('billing'), 'utf8')).toBe(planted);
    await expect(
      take('billing', 1_000, AbortSignal.abort()).catch((e: unknown) => Promise.reject(e)),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('rejects a TTL that is not a positive number', async () => {
    for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(take('billing', ttlMs)).rejects.toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
      });
    }
  });

  it('release removes only its own lock (compare-and-delete), and the lease reports the loss', async () => {
    const lease = await take('billing', 2_000);
    expect(lease.signal.aborted).toBe(false);
    // The lock is taken over under the holder (say, it was paused past its lease).
    const successor = await plant('billing', { pid: process.ppid });
    // A periodic check finds it: the lease's signal aborts well before the lease runs out.
    await sleep(700);
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toMatchObject({ code: 'ERR_LOCK_TIMEOUT' });
    await lease.release();
    expect(await readFile(lockOf('billing'), 'utf8')).toBe(successor);
    expect(await readdir(join(path, '..'))).toEqual([basename(lockOf('billing'))]);
  });

  it('aborts the lease signal when the lease runs out before release', async () => {
    const lease = await take('billing', 300);
    const aborted = new Promise<number>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(Date.now()), { once: true }),
    );
    const started = Date.now();
    const at = await aborted;
    expect(at - started).toBeGreaterThanOrEqual(250);
    expect(at - started).toBeLessThan(800);
    expect(lease.signal.reason).toMatchObject({ code: 'ERR_LOCK_TIMEOUT' });
    // A waiter may now take it; the late release leaves the new holder's lock alone.
    const next = await timed(take('billing'));
    expect(next.ms).toBeLessThan(500);
    const successor = await readFile(lockOf('billing'), 'utf8');
    await lease.release();
    expect(await readFile(lockOf('billing'), 'utf8')).toBe(successor);
    await next.value.release();
  });

  it('is what the sealed file store hands out as store.lock', async () => {
    const store = fileStore({ path, key: randomBytes(32) });
    expect(typeof store.lock).toBe('function');
    const lease = await store.lock?.('billing', { ttlMs: 1_000 });
    expect(existsSync(lockOf('billing'))).toBe(true);
    await lease?.release();
    expect(existsSync(lockOf('billing'))).toBe(false);
  });

  it('leaves no lock helper behind, and sweeps those of dead processes', async () => {
    const records = backend();
    await records.write('a', 'sealed');
    const folder = join(path, '..');
    const dead = deadPid();
    const helper = `${basename(lockOf('billing'))}.${dead}-${randomBytes(8).toString('hex')}.tmp`;
    await writeFile(join(folder, helper), 'x');
    // A fresh backend sweeps on its first write.
    await backend().write('b', 'sealed');
    expect((await readdir(folder)).sort()).toEqual(['tokens.json']);
  });
});
