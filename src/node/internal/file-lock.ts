import { randomBytes } from 'node:crypto';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { TokenWardenError } from '../../errors.js';
import { abortError, delay } from '../../internal/abort.js';

/**
 * A cross-process lock file on one machine: an exclusive lock file naming its holder (pid, host,
 * a random owner token, when taken, and optionally the lease it claims). Both locks of the file
 * store are made of it: the short write lock `<file>.lock` and the per-credential refresh locks.
 *
 * - Taken atomically by hard-linking a fully written temp file to the lock name, so no process
 *   ever sees a half-written lock (a holder killed between `open` and `write` would leave an
 *   empty, unattributable one).
 * - Broken when stale: its holder's pid is dead (same host), or it is older than the lease the
 *   holder claimed (`ttl`), or, without one, than the waiter's `staleMs`.
 * - Removed (broken, or released) only if it is still the lock judged: compare-and-delete. With
 *   a `guard` (a mutex every remover of this lock takes), that is exact: the lock is looked at
 *   and unlinked under the guard, and since nobody else removes it meanwhile and nobody can
 *   create one while it exists, the lock unlinked is the lock looked at. Without a guard, the
 *   lock is moved aside, checked, and linked back if it was another one; two breakers racing
 *   with a third taker can then lose a fresh lock, which the write lock's holders catch with
 *   `verify()` right before they commit, but a refresh lock (held across a token request that
 *   cannot be undone) must have a guard.
 * - A holder can check that the lock still names it (`verify`) right before committing, so a
 *   lock broken under a hung holder costs that holder a retry, not a lost write.
 */

/** Owner tokens of the locks this process holds: a lock naming this pid and another owner is stale. */
const HELD = new Set<string>();

/** How a lock is taken. */
export interface LockOptions {
  /** How long to wait for the lock before failing, in milliseconds. Omitted: until `signal`. */
  readonly timeoutMs?: number | undefined;
  /** Age after which a lock whose holder cannot be shown alive is broken, in milliseconds. */
  readonly staleMs: number;
  /**
   * The lease this holder claims, in milliseconds, written into the lock: waiters break the lock
   * once it is older than that, whatever their own `staleMs`.
   */
  readonly ttlMs?: number | undefined;
  /** Stops waiting: the wait fails with `ERR_ABORTED`. */
  readonly signal?: AbortSignal | undefined;
  /** Longest pause between two attempts, in milliseconds (the pauses grow from ~1 ms). */
  readonly maxBackoffMs?: number | undefined;
  /**
   * Runs each removal of this lock (breaking a stale one, releasing) under a mutex that every
   * process removing it takes. See the module notes.
   */
  readonly guard?: (<T>(task: () => Promise<T>) => Promise<T>) | undefined;
}

/** A lock this process holds. */
export interface HeldLock {
  /** Whether a stale lock was broken to take this one (leftovers of a crash may lie around). */
  readonly brokeStale: boolean;
  /** When the lock was taken, epoch ms, as written in it (its lease runs from here). */
  readonly takenAt: number;
  /** Throws {@link LockLostError} unless the lock file still names this holder. */
  verify(): Promise<void>;
  /** Releases the lock if this holder still has it (compare-and-delete). Never throws. */
  release(): Promise<void>;
}

/** The lock was broken (judged stale) while held; the work done under it must be redone. */
export class LockLostError extends TokenWardenError {
  constructor(lockPath: string) {
    super(
      'ERR_STORE_UNAVAILABLE',
      `The lock ${lockPath} was taken over while held (the holder was too slow or paused).`,
    );
  }
}

interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly owner: string;
  readonly at: number;
  readonly ttl: number | undefined;
}

/** What a look at the lock found: its raw text (its identity) and, when well-formed, its holder. */
interface Seen {
  readonly raw: string;
  readonly info: LockInfo | undefined;
  readonly mtimeMs: number;
}

/** The names of a lock's helper files: `<lock>.<pid>-<hex>.tmp` and `<lock>.<pid>-<hex>.stale`. */
export function lockHelperName(lockPath: string, suffix: 'tmp' | 'stale'): string {
  return `${lockPath}.${process.pid}-${randomBytes(8).toString('hex')}.${suffix}`;
}

/**
 * Takes the lock at `lockPath`, waiting with jittered backoff until it is free or stale, up to
 * `timeoutMs` (or until `signal` aborts).
 * @throws {@link TokenWardenError} `ERR_STORE_UNAVAILABLE` on timeout or an I/O error,
 *   `ERR_ABORTED` when `signal` aborts.
 */
export async function acquireLock(lockPath: string, options: LockOptions): Promise<HeldLock> {
  const { signal } = options;
  if (signal?.aborted) throw abortError(signal);
  const host = hostname();
  const owner = randomBytes(16).toString('hex');
  const temp = lockHelperName(lockPath, 'tmp');
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  const maxBackoff = options.maxBackoffMs ?? 50;
  const { guard } = options;
  const remove = (raw: string) =>
    guard ? guard(() => unlinkIfUnchanged(lockPath, raw)) : removeIfUnchanged(lockPath, raw);
  let brokeStale = false;
  let takenAt = 0;
  let content = '';
  let flag = 'wx';
  // The lease runs from the moment the lock is taken, not from when the wait began: the temp
  // file is rewritten with a fresh time before an attempt when the last one is getting old.
  const prepare = async () => {
    const now = Date.now();
    if (content !== '' && now - takenAt < 200) return;
    takenAt = now;
    content = JSON.stringify({
      pid: process.pid,
      host,
      owner,
      at: takenAt,
      ...(options.ttlMs !== undefined && { ttl: options.ttlMs }),
    });
    try {
      await writeFile(temp, content, { mode: 0o600, flag });
      flag = 'w';
    } catch (error) {
      throw ioError(`create a lock file next to ${lockPath}`, error);
    }
  };
  // Known as ours before the lock can name it: another waiter in this process must never judge
  // it stale in the moment between the link and the return.
  HELD.add(owner);
  try {
    await prepare();
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      await prepare();
      if (await tryLink(temp, lockPath)) break;
      const seen = await look(lockPath);
      if (seen === undefined) continue; // released between our two looks: try again at once
      if (isStale(seen, host, options.staleMs)) {
        if (await remove(seen.raw)) brokeStale = true;
        if (deadline === undefined || Date.now() < deadline) continue;
      }
      const remaining = deadline === undefined ? maxBackoff : deadline - Date.now();
      if (remaining <= 0) {
        throw timeout(lockPath, options.timeoutMs as number, seen.info, host);
      }
      // Start short (a write holds its lock for milliseconds) and back off to maxBackoff, with
      // jitter so that waiters do not retry in lockstep.
      const backoff = Math.min(maxBackoff, 2 ** Math.min(attempt, 7)) * (0.5 + Math.random());
      await delay(Math.min(backoff, remaining), signal);
    }
  } catch (error) {
    HELD.delete(owner);
    throw error;
  } finally {
    await unlink(temp).catch(() => {});
  }
  let released = false;
  return {
    brokeStale,
    takenAt,
    async verify() {
      const seen = await look(lockPath).catch(() => undefined);
      if (seen?.raw !== content) throw new LockLostError(lockPath);
    },
    async release() {
      if (released) return;
      released = true;
      // Only our own lock is removed: if it went stale and was re-taken, it is someone else's.
      await remove(content).catch(() => {});
      HELD.delete(owner);
    },
  };
}

/** Tells whether a process is alive. EPERM means it exists but belongs to another user. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function tryLink(temp: string, lockPath: string): Promise<boolean> {
  try {
    await link(temp, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError(`take the lock ${lockPath}`, error);
  }
}

async function look(lockPath: string): Promise<Seen | undefined> {
  let raw: string;
  let mtimeMs: number;
  try {
    raw = await readFile(lockPath, 'utf8');
    mtimeMs = (await stat(lockPath)).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`read the lock ${lockPath}`, error);
  }
  return { raw, info: parseLock(raw), mtimeMs };
}

function parseLock(raw: string): LockInfo | undefined {
  try {
    const json: unknown = JSON.parse(raw);
    if (typeof json !== 'object' || json === null) return undefined;
    const { pid, host, owner, at, ttl } = json as Record<string, unknown>;
    if (!Number.isSafeInteger(pid) || (pid as number) <= 0) return undefined;
    if (typeof host !== 'string' || typeof owner !== 'string' || typeof at !== 'number') {
      return undefined;
    }
    const lease = typeof ttl === 'number' && Number.isFinite(ttl) && ttl > 0 ? ttl : undefined;
    return { pid: pid as number, host, owner, at, ttl: lease };
  } catch {
    return undefined;
  }
}

function isStale(seen: Seen, host: string, staleMs: number): boolean {
  const { info } = seen;
  // Age by the holder's own clock when it wrote one, else by the file system's; the holder's
  // claimed lease, when it wrote one, else the waiter's own limit.
  const age = Date.now() - (info?.at ?? seen.mtimeMs);
  if (age > (info?.ttl ?? staleMs)) return true;
  // A pid only means something on the host that wrote it (and in its pid namespace, which a
  // host name usually tells apart: containers get their own).
  if (!info || info.host !== host) return false;
  if (info.pid === process.pid) return !HELD.has(info.owner);
  return !isAlive(info.pid);
}

/**
 * Removes the lock if it still holds exactly `raw`. Exact only under a guard that every remover
 * takes (see the module notes).
 * @returns Whether the lock with that content was removed (by us).
 */
async function unlinkIfUnchanged(lockPath: string, raw: string): Promise<boolean> {
  const seen = await look(lockPath);
  if (seen?.raw !== raw) return false;
  try {
    await unlink(lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`remove the lock ${lockPath}`, error);
  }
}

/**
 * Removes the lock if it still holds exactly `raw`, without a guard: it is moved aside
 * atomically, checked, and linked back if it turned out to be another one.
 * @returns Whether the lock with that content was removed (by us).
 */
async function removeIfUnchanged(lockPath: string, raw: string): Promise<boolean> {
  const aside = lockHelperName(lockPath, 'stale');
  try {
    await rename(lockPath, aside);
  } catch (error) {
    // Removed by someone else first.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`remove the lock ${lockPath}`, error);
  }
  let moved = '';
  try {
    moved = await readFile(aside, 'utf8');
  } catch {
    // Unreadable right after the rename: treat it as not the one we judged.
    moved = '\u0000';
  }
  if (moved === raw) {
    await unlink(aside).catch(() => {});
    return true;
  }
  // We moved a lock taken after our look: put it back. Should a third process have taken the
  // free name meanwhile, the two holders' verify() tells the loser that it lost.
  await link(aside, lockPath).catch(() => {});
  await unlink(aside).catch(() => {});
  return false;
}

function timeout(
  lockPath: string,
  timeoutMs: number,
  holder: LockInfo | undefined,
  host: string,
): TokenWardenError {
  const by = holder
    ? ` held by process ${holder.pid}${holder.host === host ? '' : ` on ${holder.host}`}`
    : '';
  return new TokenWardenError(
    'ERR_STORE_UNAVAILABLE',
    `Timed out after ${timeoutMs} ms waiting for the lock ${lockPath}${by}. If no process using this token file is running, delete the lock file.`,
  );
}

/** An I/O failure as a coded error; the cause is Node's error (a path and a syscall, no secret). */
export function ioError(what: string, cause: unknown): TokenWardenError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new TokenWardenError(
    'ERR_STORE_UNAVAILABLE',
    `Could not ${what}${code ? ` (${code})` : ''}. Check the path, its permissions and the free space.`,
    { cause },
  );
}
