import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { type InvalidArgumentError, invalidArgument, TokenWardenError } from '../errors.js';
import { type Duration, toMs } from '../internal/duration.js';
import type { KeyInput } from '../stores/keys.js';
import { type SealedStore, sealedStore } from '../stores/sealed.js';
import type { RecordBackend } from '../stores/types.js';
import {
  acquireLock,
  type HeldLock,
  ioError,
  isAlive,
  LockLostError,
} from './internal/file-lock.js';
import { refreshLockPath, takeRefreshLock } from './internal/refresh-lock.js';

/**
 * Options of {@link fileStore}.
 *
 * @example
 * ```ts
 * import { envKey, fileStore, type FileStoreOptions } from 'tokenwarden/node';
 * const options: FileStoreOptions = {
 *   path: `${process.env.HOME}/.config/my-cli/tokens.json`,
 *   key: envKey('MY_CLI_TOKEN_KEY'),
 *   lockTimeout: '5s',
 * };
 * const store = fileStore(options);
 * ```
 */
export interface FileStoreOptions {
  /**
   * The token file. A relative path is resolved against the working directory when the store
   * is created. Missing parent directories are created with mode 0700; existing ones are left
   * as they are, so put the file in a directory only you can enter.
   */
  path: string;
  /**
   * The sealing key: 32 bytes, their base64url form, or a key provider such as
   * `envKey('NAME')` or `keychainKey({ service })`. Without it the file is useless.
   */
  key: KeyInput;
  /**
   * How long a write waits for another process's lock on the file before failing with
   * `ERR_STORE_UNAVAILABLE`.
   * @default '10s'
   */
  lockTimeout?: Duration | undefined;
  /**
   * Age after which the file's write lock is broken when its holder cannot be shown alive: a
   * holder on another host, or one whose pid was reused. A lock whose holder died on this host
   * is broken at once. (Refresh locks live for the credential's `lockTtl` instead.)
   * @default '30s'
   */
  staleLockAfter?: Duration | undefined;
}

/**
 * The file's layout, version 2:
 * `{ "v": 2, "seq": 17, "records": { "<credential id>": { "version": 17, "sealed": "<compact JWE>" } } }`.
 * `seq` is the last version handed out; every write takes the next one. Layout 1,
 * `{ "v": 1, "records": { "<credential id>": "<compact JWE>" } }`, is read with every record at
 * version 0 and rewritten as layout 2 by the next write.
 */
const LAYOUT = 2;
/** The layout before record versions, still read. */
const LEGACY_LAYOUT = 1;
/** No real token file comes near this (a sealed record is at most 256 KiB); larger is junk. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Retries of a write whose lock was taken over while it worked. */
const LOCK_LOST_RETRIES = 3;

/**
 * A persistent token store in one file, for CLIs and services on one machine. Every record is
 * sealed (JWE, AES-256-GCM, bound to its credential id) before it reaches the file, so the file
 * holds no readable token and is useless without the key.
 *
 * - The file has mode 0600; a file found readable by others is tightened to 0600.
 * - Writes are atomic: a temp file in the same directory is written, fsynced and renamed over
 *   the file, then the directory is fsynced. A crash leaves the old file or the new one.
 * - Processes on one machine can share the file: every write re-reads it under a lock
 *   (`<path>.lock`), so none loses another's records. Reads take no lock.
 * - Every record has a version that grows with each write, and writes can be conditional on
 *   it (compare-and-swap): an older token set never overwrites a newer one.
 * - Processes sharing the file refresh a credential once between them: the refresh runs under
 *   a per-credential lock file (`<path>.<hash of the id>.refresh.lock`) held across the token
 *   request, and each process re-reads the record after taking it, so a rotating refresh token
 *   is redeemed once per rotation. A lock whose holder died is taken over at once (its pid is
 *   gone); one whose holder hangs, once the credential's `lockTtl` has passed.
 * - A corrupted file (truncated, overwritten, not the expected shape) is discarded and a
 *   `tamper` event names the credential that found it; it is never thrown at the application.
 * - A wrong or malformed key never deletes anything, since another process sharing the file may
 *   hold the right one: a record sealed under a key this process does not hold is reported
 *   (`tamper`) and kept, and reading it fails with `ERR_KEY_UNAVAILABLE`, as does every read
 *   while the key provider has no usable key. If the key is lost for good, delete the file to
 *   start over.
 *
 * @param options - The file path and the key; lock timings.
 * @returns A {@link SealedStore} of kind `file`, with `rotateKey()`.
 * @throws An {@link InvalidArgumentError} (`ERR_INVALID_ARGUMENT`) for a missing path or key, or
 * malformed durations.
 * @example
 * ```ts
 * import { createWarden } from 'tokenwarden';
 * import { envKey, fileStore } from 'tokenwarden/node';
 * const warden = createWarden({
 *   store: fileStore({ path: './.tokens/tokens.json', key: envKey('TOKENWARDEN_KEY') }),
 * });
 * ```
 */
export function fileStore(options: FileStoreOptions): SealedStore {
  if (options === null || typeof options !== 'object') {
    throw invalidArgument('fileStore(options): options must be an object with path and key.');
  }
  if (typeof options.path !== 'string' || options.path.trim() === '') {
    throw invalidArgument('fileStore(options): path must be the path of the token file.');
  }
  if (options.path.includes('\u0000')) {
    throw invalidArgument('fileStore(options): path must not contain a NUL character.');
  }
  if (options.key === undefined || options.key === null) {
    throw invalidArgument(
      "fileStore(options): key is required: 32 bytes, their base64url form, or a key provider such as envKey('TOKENWARDEN_KEY').",
    );
  }
  const backend = fileBackend({
    path: options.path,
    lockTimeoutMs: toMs(options.lockTimeout ?? '10s', 'lockTimeout'),
    staleLockMs: toMs(options.staleLockAfter ?? '30s', 'staleLockAfter'),
  });
  return sealedStore(backend, options.key);
}

/** Options of the file backend (internal: the public surface is {@link fileStore}). */
export interface FileBackendOptions {
  readonly path: string;
  readonly lockTimeoutMs: number;
  readonly staleLockMs: number;
}

/** One record in the file: its sealed form and its version. */
interface Entry {
  readonly version: number;
  readonly sealed: string;
}

/** The file's content: the last version handed out (none for a new or layout-1 file) and records. */
interface Contents {
  seq: number | undefined;
  readonly records: Map<string, Entry>;
}

/** Writes to one path, one at a time within this process (the file lock covers other processes). */
const queues = new Map<string, Promise<unknown>>();

function serialise<T>(path: string, task: () => Promise<T>): Promise<T> {
  const previous = queues.get(path) ?? Promise.resolve();
  const run = previous.then(task, task);
  const tail = run.then(
    () => {},
    () => {},
  );
  queues.set(path, tail);
  void tail.then(() => {
    if (queues.get(path) === tail) queues.delete(path);
  });
  return run;
}

/**
 * The version the next write gets. A file without a counter (new, wiped, corrupt or of layout
 * 1) starts it at the current time in milliseconds rather than at 1, so that a version is never
 * handed out twice for a record, even across a wipe: a compare-and-swap based on a version read
 * before the wipe cannot succeed by coincidence afterwards.
 */
function nextVersion(contents: Contents): number {
  const next = (contents.seq ?? Date.now()) + 1;
  contents.seq = next;
  return next;
}

/** What a read-modify-write does: the new records, `undefined` to delete the file, or `false` to
 * leave it untouched; and what the operation returns. */
interface Change<T> {
  readonly next: Contents | undefined | false;
  readonly result: T;
}

/**
 * The file backend under {@link fileStore}: sealed records in one JSON file. Exported for tests
 * only; applications use {@link fileStore}, which seals records before they get here.
 */
export function fileBackend(options: FileBackendOptions): RecordBackend {
  const file = resolve(options.path);
  const dir = dirname(file);
  const name = basename(file);
  const lockPath = `${file}.lock`;
  const lockOptions = { timeoutMs: options.lockTimeoutMs, staleMs: options.staleLockMs };
  const pending = new Set<Promise<unknown>>();
  let swept = false;

  const ensureDir = async () => {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw ioError(`create the directory ${dir}`, error);
    }
  };

  const read = async (): Promise<Contents> => {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return { seq: undefined, records: new Map() };
      }
      throw ioError(`read the token file ${file}`, error);
    }
    let bytes: Buffer;
    try {
      const info = await handle.stat();
      if (!info.isFile()) {
        throw new TokenWardenError(
          'ERR_STORE_UNAVAILABLE',
          `The token file ${file} is not a regular file. Point fileStore at a file path.`,
        );
      }
      if (info.size > MAX_FILE_BYTES) throw corrupt(file, 'is far larger than any token file');
      if ((info.mode & 0o077) !== 0 && ownedByMe(info.uid)) {
        // Sealed records are useless without the key, but the file is ours: tighten it anyway.
        await handle.chmod(0o600).catch(() => {});
      }
      bytes = await handle.readFile();
    } catch (error) {
      if (error instanceof TokenWardenError) throw error;
      throw ioError(`read the token file ${file}`, error);
    } finally {
      await handle.close().catch(() => {});
    }
    return parse(bytes, file);
  };

  const sweep = async (): Promise<void> => {
    // Temp files and lock helpers of crashed writers and lock takers. Names carry the writer's
    // pid; ours are left alone (this process's writes to the file are serialised, so none is
    // in flight, and the helpers of its refresh locks live for milliseconds).
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    const leftover = new RegExp(
      `^${escapeRegExp(name)}(?:\\.lock|\\.[0-9a-f]{32}\\.refresh\\.lock)?\\.(\\d+)-[0-9a-f]{16}\\.(?:tmp|stale)$`,
    );
    const now = Date.now();
    for (const entry of names) {
      const match = leftover.exec(entry);
      if (!match) continue;
      const pid = Number(match[1]);
      if (pid === process.pid) continue;
      const path = join(dir, entry);
      try {
        if (isAlive(pid) && now - (await stat(path)).mtimeMs <= options.staleLockMs) continue;
        await unlink(path);
      } catch {
        // Gone already, or not ours to remove: it only takes space.
      }
    }
  };

  const commit = async (contents: Contents | undefined, lock: HeldLock) => {
    if (contents === undefined) {
      await lock.verify();
      try {
        await unlink(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw ioError(`remove the token file ${file}`, error);
        }
      }
      await syncDir(dir);
      return;
    }
    // fromEntries defines members: an id such as "__proto__" stays a plain one.
    const records = Object.fromEntries(
      [...contents.records].map(([id, { version, sealed }]) => [id, { version, sealed }]),
    );
    // A file written without a change of version (a removal) keeps the counter going; one that
    // never had one gets it now.
    const seq = contents.seq ?? nextVersion(contents);
    const content = `${JSON.stringify({ v: LAYOUT, seq, records }, null, 2)}\n`;
    const temp = join(dir, `${name}.${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(temp, 'wx', 0o600);
    } catch (error) {
      throw ioError(`create a temp file in ${dir}`, error);
    }
    try {
      try {
        // The umask may have left fewer bits; never more than 0600 either way.
        if (process.platform !== 'win32') await handle.chmod(0o600);
        await handle.writeFile(content, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await lock.verify();
      await renameOver(temp, file);
    } catch (error) {
      await unlink(temp).catch(() => {});
      if (error instanceof TokenWardenError) throw error;
      throw ioError(`write the token file ${file}`, error);
    }
    await syncDir(dir);
  };

  /** Read-modify-write under the write lock: the file is re-read, changed and committed. */
  const update = <T>(change: (contents: Contents) => Change<T>): Promise<T> => {
    const run = serialise(file, async () => {
      await ensureDir();
      for (let attempt = 0; ; attempt++) {
        const lock = await acquireLock(lockPath, lockOptions);
        try {
          if (!swept || lock.brokeStale) {
            swept = true;
            await sweep();
          }
          let contents: Contents;
          try {
            contents = await read();
          } catch (error) {
            // A corrupt file holds nothing readable; the write replaces it rather than fail
            // (a rotated refresh token must be stored). Reads report the corruption.
            if (!(error instanceof TokenWardenError && error.code === 'ERR_STORE_CORRUPT'))
              throw error;
            contents = { seq: undefined, records: new Map() };
          }
          const { next, result } = change(contents);
          if (next !== false) await commit(next, lock);
          return result;
        } catch (error) {
          if (error instanceof LockLostError && attempt < LOCK_LOST_RETRIES) continue;
          throw error;
        } finally {
          await lock.release();
        }
      }
    });
    pending.add(run);
    void run.then(
      () => pending.delete(run),
      () => pending.delete(run),
    );
    return run;
  };

  /** Runs a short task (a refresh lock's removal) under the write lock, checked just before. */
  const underWriteLock = async <T>(task: () => Promise<T>): Promise<T> => {
    const lock = await acquireLock(lockPath, lockOptions);
    try {
      await lock.verify();
      return await task();
    } finally {
      await lock.release();
    }
  };

  const put = (contents: Contents, id: string, sealed: string): Change<number> => {
    const version = nextVersion(contents);
    contents.records.set(id, { version, sealed });
    return { next: contents, result: version };
  };

  return {
    kind: 'file',
    // Other processes may hold the key this one lacks: a wrong or malformed key fails loudly
    // and leaves their records (rotated refresh tokens included) as they are.
    shared: true,
    read: async (id) => (await read()).records.get(id)?.sealed,
    async readVersioned(id) {
      const entry = (await read()).records.get(id);
      return entry && { sealed: entry.sealed, version: entry.version };
    },
    write: (id, sealed) => update((contents) => put(contents, id, sealed)),
    compareAndWrite: (id, sealed, expected) =>
      update<number | false>((contents) => {
        const current = contents.records.get(id)?.version ?? null;
        if (current !== expected) return { next: false, result: false };
        return put(contents, id, sealed);
      }),
    writeMany: (entries) =>
      update((contents) => {
        const version = nextVersion(contents);
        for (const [id, sealed] of entries) contents.records.set(id, { version, sealed });
        return { next: contents, result: undefined };
      }),
    remove: (id) =>
      update((contents) => ({
        next: contents.records.delete(id) ? contents : false,
        result: undefined,
      })),
    async ids() {
      try {
        return [...(await read()).records.keys()];
      } catch (error) {
        // Nothing readable is stored; the next read of a record reports and wipes the file.
        if (error instanceof TokenWardenError && error.code === 'ERR_STORE_CORRUPT') return [];
        throw error;
      }
    },
    clear: () => update(() => ({ next: undefined, result: undefined })),
    async lock(id, lease) {
      await ensureDir();
      return takeRefreshLock(refreshLockPath(file, id), lease, underWriteLock);
    },
    async close() {
      await Promise.allSettled([...pending]);
    },
  };
}

/**
 * Parses the file: exactly a layout-2 file (versioned records) or a layout-1 file (plain sealed
 * strings, read at version 0); anything else is corrupt.
 */
function parse(bytes: Buffer, file: string): Contents {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw corrupt(file, 'is not valid JSON (truncated or overwritten)');
  }
  if (!isObject(json)) throw corrupt(file, 'is not a JSON object');
  const { v, seq, records } = json;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > LAYOUT) {
    // Not corrupt: a newer tokenwarden wrote it. Wiping it would break that version's tokens.
    throw new TokenWardenError(
      'ERR_STORE_UNAVAILABLE',
      `The token file ${file} was written by a newer version of tokenwarden (layout ${v}). Upgrade tokenwarden, or use another path.`,
    );
  }
  const members = Object.keys(json).length;
  const legacy = v === LEGACY_LAYOUT && members === 2;
  const current = v === LAYOUT && members === 3 && isVersion(seq);
  if (!(legacy || current) || !isObject(records)) {
    throw corrupt(file, 'is not a tokenwarden token file');
  }
  // A Map, not an object: credential ids such as "__proto__" must stay plain keys.
  const out = new Map<string, Entry>();
  for (const [id, value] of Object.entries(records)) {
    if (legacy) {
      if (!isSealed(value)) throw corrupt(file, 'holds a record that is not a sealed string');
      out.set(id, { version: 0, sealed: value });
      continue;
    }
    if (
      !isObject(value) ||
      Object.keys(value).length !== 2 ||
      !isSealed(value['sealed']) ||
      !isVersion(value['version']) ||
      value['version'] > (seq as number)
    ) {
      throw corrupt(file, 'holds a record that is not a versioned sealed string');
    }
    out.set(id, { version: value['version'], sealed: value['sealed'] });
  }
  return { seq: legacy ? undefined : (seq as number), records: out };
}

function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isVersion(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function corrupt(file: string, what: string): TokenWardenError {
  return new TokenWardenError(
    'ERR_STORE_CORRUPT',
    `The token file ${file} ${what}; it is discarded and its credentials fetch new tokens.`,
  );
}

async function renameOver(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(from, to);
      return;
    } catch (error) {
      // Windows refuses to replace a file another process has open for a moment (a reader).
      const code = (error as NodeJS.ErrnoException).code;
      const transient = code === 'EPERM' || code === 'EACCES' || code === 'EBUSY';
      if (process.platform !== 'win32' || !transient || attempt >= 10) throw error;
      await new Promise((done) => setTimeout(done, 10 * (attempt + 1)));
    }
  }
}

/** Makes a rename durable: the directory entry is only on disk once the directory is synced. */
async function syncDir(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync (and NTFS journals renames).
  if (process.platform === 'win32') return;
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Some file systems cannot fsync a directory; the rename is as durable as they allow.
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM') {
      throw ioError(`sync the directory ${dir}`, error);
    }
  } finally {
    await handle?.close().catch(() => {});
  }
}

function ownedByMe(uid: number): boolean {
  return (
    process.platform !== 'win32' && typeof process.getuid === 'function' && process.getuid() === uid
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
