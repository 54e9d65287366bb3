import { randomBytes } from 'node:crypto';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { TokenWardenError } from '../../errors.js';

/**
 * A cross-process lock for one file on one machine: an exclusive `<file>.lock` naming its holder
 * (pid, host, a random owner token, when taken).
 *
 * - Taken atomically by hard-linking a fully written temp file to the lock name, so no process
 *   ever sees a half-written lock (a holder killed between `open` and `write` would leave an
 *   empty, unattributable one).
 * - Broken when stale: its holder's pid is dead (same host), or it is older than `staleMs`.
 *   Breaking renames the lock aside and checks that the moved file is the one judged stale; a
 *   fresh lock moved by mistake is linked back.
 * - A holder checks that the lock still names it right before committing, so a lock broken
 *   under a hung holder costs that holder a retry, not a lost write.
 */

/** Owner tokens of the locks this process holds: a lock naming this pid and another owner is stale. */
const HELD = new Set<string>();

/** How a lock is taken. */
export interface LockOptions {
  /** How long to wait for the lock before failing, in milliseconds. */
  readonly timeoutMs: number;
  /** Age after which a lock whose holder cannot be shown alive is broken, in milliseconds. */
  readonly staleMs: number;
}

/** A lock this process holds. */
export interface HeldLock {
  /** Whether a stale lock was broken to take this one (leftovers of a crash may lie around). */
  readonly brokeStale: boolean;
  /** Throws {@link LockLostError} unless the lock file still names this holder. */
  verify(): Promise<void>;
  /** Releases the lock if this holder still has it. Never throws. */
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
 * Takes the lock at `lockPath`, waiting with jittered backoff up to `timeoutMs`.
 * @throws {@link TokenWardenError} `ERR_STORE_UNAVAILABLE` on timeout or an I/O error.
 */
export async function acquireLock(lockPath: string, options: LockOptions): Promise<HeldLock> {
  const host = hostname();
  const owner = randomBytes(16).toString('hex');
  const content = JSON.stringify({ pid: process.pid, host, owner, at: Date.now() });
  const temp = lockHelperName(lockPath, 'tmp');
  const deadline = Date.now() + options.timeoutMs;
  let brokeStale = false;
  let last: Seen | undefined;
  try {
    await writeFile(temp, content, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    throw ioError(`create a lock file next to ${lockPath}`, error);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      if (await tryLink(temp, lockPath)) break;
      last = await look(lockPath);
      if (last === undefined) continue; // released between our two looks: try again at once
      if (isStale(last, host, options.staleMs)) {
        if (await breakLock(lockPath, last)) brokeStale = true;
        if (Date.now() < deadline) continue;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw timeout(lockPath, options.timeoutMs, last.info, host);
      // Holds last milliseconds (one small file write), so start short and back off to 50 ms.
      const backoff = Math.min(50, 2 ** Math.min(attempt, 6)) * (0.5 + Math.random());
      await sleep(Math.min(backoff, remaining));
    }
  } finally {
    await unlink(temp).catch(() => {});
  }
  HELD.add(owner);
  let released = false;
  return {
    brokeStale,
    async verify() {
      const seen = await look(lockPath).catch(() => undefined);
      if (seen?.info?.owner !== owner) throw new LockLostError(lockPath);
    },
    async release() {
      if (released) return;
      released = true;
      HELD.delete(owner);
      const seen = await look(lockPath).catch(() => undefined);
      // Only our own lock is removed: if it was broken and re-taken, it is someone else's now.
      if (seen?.info?.owner === owner) await unlink(lockPath).catch(() => {});
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
    const { pid, host, owner, at } = json as Record<string, unknown>;
    if (!Number.isSafeInteger(pid) || (pid as number) <= 0) return undefined;
    if (typeof host !== 'string' || typeof owner !== 'string' || typeof at !== 'number') {
      return undefined;
    }
    return { pid: pid as number, host, owner, at };
  } catch {
    return undefined;
  }
}

function isStale(seen: Seen, host: string, staleMs: number): boolean {
  const { info } = seen;
  // Age by the holder's own clock when it wrote one, else by the file system's.
  const age = Date.now() - (info?.at ?? seen.mtimeMs);
  if (age > staleMs) return true;
  // A pid only means something on the host that wrote it (and in its pid namespace, which a
  // host name usually tells apart: containers get their own).
  if (!info || info.host !== host) return false;
  if (info.pid === process.pid) return !HELD.has(info.owner);
  return !isAlive(info.pid);
}

/**
 * Removes a stale lock unless it changed since it was judged stale.
 * @returns Whether the stale lock was removed (by us).
 */
async function breakLock(lockPath: string, stale: Seen): Promise<boolean> {
  const aside = lockHelperName(lockPath, 'stale');
  try {
    await rename(lockPath, aside);
  } catch (error) {
    // Another process broke it first.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`break the stale lock ${lockPath}`, error);
  }
  let moved = '';
  try {
    moved = await readFile(aside, 'utf8');
  } catch {
    // Unreadable right after the rename: treat it as not the one we judged.
    moved = '\u0000';
  }
  if (moved === stale.raw) {
    await unlink(aside).catch(() => {});
    return true;
  }
  // We moved a lock taken after our look: put it back. Should a third process have taken the
  // free name meanwhile, the two holders' verify() before commit tells the loser to retry.
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
