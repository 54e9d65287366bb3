// Opens the store the command line names, for an operator: read-only until a command deletes
// on purpose. The library's stores heal themselves for applications (a record that fails to
// open is deleted and fetched again; an unusable key wipes a store of one process), but an
// operator who typed the wrong key must get an error, not an empty store. So the CLI puts the
// same sealed store over a guarded backend: nothing is removed or cleared as a side effect of
// reading, and a record under an unknown key is an error (as in a shared store) instead of
// being deleted.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TokenWardenError } from '../errors.js';
import { envKey } from '../node/env-key.js';
import { fileBackend } from '../node/file-store.js';
import { keychainEntry } from '../node/internal/keyring.js';
import { keychainKey } from '../node/keychain.js';
import type { RedisClient } from '../redis/client.js';
import { redisBackend } from '../redis/redis-store.js';
import type { KeyProvider } from '../stores/keys.js';
import { sealedStore } from '../stores/sealed.js';
import type { RecordBackend, TokenStore } from '../stores/types.js';
import type { StoreArgs } from './args.js';
import { CliError, EXIT } from './exit-codes.js';

/** The keychain account keychainKey() uses by default. */
const DEFAULT_KEY_ACCOUNT = '__tokenwarden_key__';
/** How long one Redis operation may wait. */
const REDIS_TIMEOUT = '3s';

/** What a read of every record found, before a command acts. */
export interface Survey {
  /** Every id with a record. */
  readonly ids: readonly string[];
  /** Ids whose record could not be read, with the error code (e.g. `ERR_KEY_UNAVAILABLE`). */
  readonly failed: ReadonlyMap<string, string>;
}

/** An opened store. */
export interface OpenedStore {
  /** The store to give the warden. Its `delete` removes records; nothing else does. */
  readonly store: TokenStore;
  /** `file <path>` or `redis <host:port>`, for messages (never a password). */
  readonly label: string;
  /** Notes for stderr (e.g. a token file that does not exist yet). */
  readonly notes: string[];
  /** Reads every record; fails (exit 5) when the store itself cannot be read. */
  survey(): Promise<Survey>;
  /** Closes the store's connections (idempotent). */
  close(): Promise<void>;
}

/** The code of a failure, for messages and decisions. */
export function codeOf(error: unknown): string | undefined {
  return error instanceof TokenWardenError ? error.code : undefined;
}

/** A store or key failure (exit 5), with the library's message, which never holds a secret. */
function storeError(error: unknown, what: string): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof TokenWardenError) {
    return new CliError(EXIT.store, `${what}: ${error.message}`, error.code);
  }
  return new CliError(
    EXIT.store,
    `${what} failed (${error instanceof Error ? error.name : 'error'}).`,
  );
}

/**
 * Resolves the key provider and proves it holds a key before any store sees it: a key that is
 * missing or malformed ends the command here, where it cannot wipe anything.
 */
async function openKey(args: StoreArgs): Promise<KeyProvider> {
  if (args.keychain !== undefined) {
    const account = args.keychainAccount ?? DEFAULT_KEY_ACCOUNT;
    let provider: KeyProvider;
    try {
      provider = keychainKey({ service: args.keychain, account });
    } catch (error) {
      throw new CliError(EXIT.usage, `--keychain: ${(error as Error).message}`);
    }
    // keychainKey() creates a key when it finds none, which is right for an application's first
    // run and wrong here: an operator's typo in the service name would look like an empty store.
    try {
      const kid = await keychainEntry(args.keychain, account).get();
      const key = kid && (await keychainEntry(args.keychain, `${account}/${kid}`).get());
      if (!key) {
        throw new CliError(
          EXIT.store,
          `The keychain has no tokenwarden key for service "${args.keychain}" (account "${account}"). Check --keychain and --keychain-account; nothing was changed.`,
          'ERR_KEY_UNAVAILABLE',
        );
      }
      await provider.current();
    } catch (error) {
      throw storeError(error, 'The keychain key cannot be used');
    }
    return provider;
  }
  const provider = envKey(args.keyEnv);
  try {
    await provider.current();
  } catch (error) {
    throw storeError(error, 'The key cannot be used');
  }
  return provider;
}

/**
 * The backend as the CLI uses it: `remove` and `clear` do nothing (the sealed store calls them to
 * discard records it cannot open), and it counts as shared, so a record under another key fails
 * the read with `ERR_KEY_UNAVAILABLE` instead of being deleted.
 */
function guarded(backend: RecordBackend): RecordBackend {
  return {
    kind: backend.kind,
    shared: true,
    read: (id) => backend.read(id),
    ...(backend.readVersioned && { readVersioned: backend.readVersioned.bind(backend) }),
    write: (id, sealed) => backend.write(id, sealed),
    ...(backend.writeMany && { writeMany: backend.writeMany.bind(backend) }),
    ...(backend.compareAndWrite && { compareAndWrite: backend.compareAndWrite.bind(backend) }),
    remove: async () => {},
    ids: () => backend.ids(),
    clear: async () => {},
    ...(backend.lock && { lock: backend.lock.bind(backend) }),
    ...(backend.watch && { watch: backend.watch.bind(backend) }),
    ...(backend.close && { close: backend.close.bind(backend) }),
  };
}

/** The host and port of a Redis URL, for messages: never its user or password. */
function redisLabel(url: URL): string {
  return `redis ${url.hostname}${url.port ? `:${url.port}` : ''}`;
}

/** A Redis client for the URL; ioredis is an optional peer, loaded only now. */
async function redisClient(
  raw: string,
): Promise<{ client: RedisClient & { disconnect(): void }; label: string }> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(EXIT.usage, '--redis must be a URL such as redis://127.0.0.1:6379/0.');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new CliError(EXIT.usage, '--redis must be a redis:// or rediss:// URL.');
  }
  const specifier = 'ioredis';
  let Redis: new (url: string, options: object) => RedisClient & { disconnect(): void };
  try {
    const loaded = (await import(specifier)) as Record<string, unknown>;
    Redis = (loaded['Redis'] ?? loaded['default']) as typeof Redis;
    if (typeof Redis !== 'function') throw new TypeError('no Redis class');
  } catch {
    throw new CliError(
      EXIT.store,
      'The Redis store needs the ioredis package, which is not installed: npm install ioredis',
      'ERR_UNSUPPORTED',
    );
  }
  const client = new Redis(raw, {
    // Fail at once while disconnected, and do not replay commands much later.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
  });
  // Connection errors show in the operations' results; ioredis would also print each one,
  // with the URL.
  (client as unknown as { on(event: string, listener: () => void): void }).on('error', () => {});
  return { client, label: redisLabel(url) };
}

/**
 * Opens the store and its key.
 * @param args - The store options.
 * @param cwd - The directory a relative `--file` is resolved against.
 * @returns The opened store.
 * @throws {@link CliError} exit 5 for a key or store that cannot be used, exit 2 for bad URLs.
 */
export async function openStore(args: StoreArgs, cwd: string): Promise<OpenedStore> {
  const notes: string[] = [];
  let backend: RecordBackend;
  let label: string;
  let disconnect = () => {};
  let probe = async () => {};
  if (args.file !== undefined) {
    const path = resolve(cwd, args.file);
    label = `file ${path}`;
    try {
      const info = await stat(path);
      if (!info.isFile()) throw new CliError(EXIT.store, `${path} is not a token file.`);
    } catch (error) {
      if (error instanceof CliError) throw error;
      if ((error as { code?: unknown }).code !== 'ENOENT') {
        throw new CliError(
          EXIT.store,
          `The token file ${path} cannot be read (${String((error as { code?: unknown }).code ?? 'I/O error')}).`,
          'ERR_STORE_UNAVAILABLE',
        );
      }
      notes.push(`note: ${path} does not exist: the store holds no records.`);
    }
    backend = fileBackend({ path, lockTimeoutMs: 10_000, staleLockMs: 30_000 });
    const file = backend;
    // The file backend lists a corrupt file as empty; reading a record reports it.
    probe = async () => {
      await file.read('');
    };
  } else {
    const opened = await redisClient(args.redis as string);
    label = opened.label;
    disconnect = () => opened.client.disconnect();
    try {
      backend = redisBackend({
        client: opened.client,
        timeout: REDIS_TIMEOUT,
        ...(args.prefix !== undefined && { prefix: args.prefix }),
      });
    } catch (error) {
      disconnect();
      throw new CliError(EXIT.usage, `--redis: ${(error as Error).message}`);
    }
  }

  let key: KeyProvider;
  try {
    key = await openKey(args);
  } catch (error) {
    disconnect();
    throw error;
  }
  const real = backend;
  const sealed = sealedStore(guarded(real), key);
  // Deliberate deletes (revoke, audit --revoke) reach the real backend.
  const store: TokenStore = { ...sealed, delete: (id: string) => real.remove(id) };

  let closed: Promise<void> | undefined;
  return {
    store,
    label,
    notes,
    async survey() {
      let ids: string[];
      try {
        await probe();
        ids = await store.list();
      } catch (error) {
        throw storeError(error, `The ${label} cannot be read`);
      }
      const failed = new Map<string, string>();
      for (const id of ids) {
        try {
          await store.get(id);
        } catch (error) {
          failed.set(id, codeOf(error) ?? 'ERR_STORE_UNAVAILABLE');
        }
      }
      return { ids, failed };
    },
    close() {
      closed ??= (async () => {
        try {
          await sealed.close?.();
        } finally {
          disconnect();
        }
      })();
      return closed;
    },
  };
}
