// The one place that touches @napi-rs/keyring: loads it lazily (it is an optional peer, so
// importing tokenwarden/node must work without it) and turns its errors into coded ones that
// say what is missing.
import { TokenWardenError } from '../../errors.js';

// Read through globalThis so this module needs no Node type definitions to compile.
const process = (
  globalThis as unknown as {
    process: { platform: string; arch: string; env: Record<string, string | undefined> };
  }
).process;

/** The part of @napi-rs/keyring 2.x that tokenwarden uses. */
export interface KeyringModule {
  AsyncEntry: new (
    service: string,
    account: string,
    options?: { linux?: { store?: 'secret-service' | 'keyutils' } },
  ) => {
    setPassword(password: string): Promise<void>;
    getPassword(): Promise<string | null | undefined>;
    deleteCredential(): Promise<boolean>;
  };
  findCredentialsAsync(service: string): Promise<Array<{ account: string; password: string }>>;
}

/** One secret in the OS keychain, addressed by service and account. */
export interface KeychainEntry {
  /** The secret, or `undefined` when there is none. */
  get(): Promise<string | undefined>;
  set(value: string): Promise<void>;
  /** Resolves `true` when a secret was deleted, `false` when there was none. */
  delete(): Promise<boolean>;
}

const PACKAGE = '@napi-rs/keyring';
// On Linux the binding silently falls back to the kernel keyring when no Secret Service
// answers. That keyring is in-memory only: a key kept there would vanish at the next reboot and
// take every sealed record with it. Pinning the Secret Service turns that into a clear error.
const ENTRY_OPTIONS = { linux: { store: 'secret-service' } } as const;

let loaded: Promise<KeyringModule> | undefined;

/** Loads @napi-rs/keyring on first use; a failed load is retried on the next call. */
export function loadKeyring(): Promise<KeyringModule> {
  loaded ??= import(PACKAGE).then(
    (namespace: Record<string, unknown>) => {
      // A CommonJS package: its exports may arrive as named exports or only as `default`.
      const candidate = (
        typeof namespace['AsyncEntry'] === 'function' ? namespace : namespace['default']
      ) as Partial<KeyringModule> | undefined;
      if (
        typeof candidate?.AsyncEntry !== 'function' ||
        typeof candidate.findCredentialsAsync !== 'function'
      ) {
        throw new TokenWardenError(
          'ERR_UNSUPPORTED',
          `The installed ${PACKAGE} is not a version tokenwarden supports: npm install ${PACKAGE}@^2.1.0`,
        );
      }
      return candidate as KeyringModule;
    },
    (error: unknown) => {
      loaded = undefined;
      throw loadError(error);
    },
  );
  return loaded;
}

/**
 * The keychain entry at (service, account). Every failure is a {@link TokenWardenError}:
 * `ERR_UNSUPPORTED` when @napi-rs/keyring is missing, `ERR_STORE_UNAVAILABLE` when the keychain
 * cannot be reached, is locked or is missing.
 */
export function keychainEntry(service: string, account: string): KeychainEntry {
  const run = async <T>(
    what: string,
    task: (entry: InstanceType<KeyringModule['AsyncEntry']>) => Promise<T>,
  ): Promise<T> => {
    const keyring = await loadKeyring();
    try {
      return await task(new keyring.AsyncEntry(service, account, ENTRY_OPTIONS));
    } catch (error) {
      throw unavailable(`${what} "${account}" of service "${service}"`, error);
    }
  };
  return {
    get: () => run('reading', async (entry) => (await entry.getPassword()) ?? undefined),
    set: (value) => run('writing', (entry) => entry.setPassword(value)),
    delete: () => run('deleting', (entry) => entry.deleteCredential()),
  };
}

/** The account names that hold a secret under `service`. */
export async function keychainAccounts(service: string): Promise<string[]> {
  const keyring = await loadKeyring();
  try {
    const found = await keyring.findCredentialsAsync(service);
    return [...new Set(found.map((credential) => credential.account))];
  } catch (error) {
    throw unavailable(`listing the entries of service "${service}"`, error);
  }
}

function loadError(error: unknown): TokenWardenError {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    message.includes(PACKAGE)
  ) {
    return new TokenWardenError(
      'ERR_UNSUPPORTED',
      `The OS keychain needs the optional peer dependency ${PACKAGE}, which is not installed: npm install ${PACKAGE}`,
    );
  }
  return new TokenWardenError(
    'ERR_UNSUPPORTED',
    `${PACKAGE} is installed but could not be loaded on ${process.platform}-${process.arch} (its native binding may be missing): reinstall it with npm install ${PACKAGE}`,
    { cause: sanitised(error) },
  );
}

/** A coded error for a keychain operation that failed, naming what is missing where it can. */
function unavailable(what: string, error: unknown): TokenWardenError {
  const detail = error instanceof Error ? error.message : String(error);
  return new TokenWardenError(
    'ERR_STORE_UNAVAILABLE',
    `The OS keychain failed ${what}: ${diagnose(detail)}`,
    { cause: sanitised(error) },
  );
}

/** What to do, from the platform and the library's message. */
function diagnose(detail: string): string {
  const said = `(keychain said: ${detail.slice(0, 200)})`;
  if (process.platform !== 'linux' && process.platform !== 'freebsd') {
    return `the ${process.platform === 'darwin' ? 'macOS Keychain' : 'Windows Credential Manager'} refused or is unavailable; unlock it or check this user's access ${said}`;
  }
  if (/ServiceUnknown|org\.freedesktop\.secrets|not provided by any/i.test(detail)) {
    return `no Secret Service on the session bus: install and unlock gnome-keyring or KWallet (Debian/Ubuntu: apt-get install gnome-keyring libsecret-1-0) ${said}`;
  }
  if (!process.env['DBUS_SESSION_BUS_ADDRESS']) {
    return `no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set. Run inside a desktop session, or start a session bus (dbus-run-session) with an unlocked gnome-keyring or KWallet ${said}`;
  }
  if (/failed to connect|no such file|connection refused|could not connect/i.test(detail)) {
    return `the D-Bus session bus at DBUS_SESSION_BUS_ADDRESS cannot be reached: start one (dbus-run-session) or point the variable at the running session bus ${said}`;
  }
  if (/locked|unlock|prompt|dismissed/i.test(detail)) {
    return `the keyring is locked: unlock it (log in to the desktop session, or echo -n <password> | gnome-keyring-daemon --unlock) ${said}`;
  }
  if (/no result found/i.test(detail)) {
    return `the Secret Service has no default keyring to write to: create and unlock one (log in to the desktop session, or echo -n <password> | gnome-keyring-daemon --unlock) ${said}`;
  }
  return `the Secret Service refused the request ${said}`;
}

/** The library's message without its stack or native fields, capped; it carries no secret. */
function sanitised(error: unknown): Error {
  const detail = error instanceof Error ? error.message : String(error);
  return new Error(detail.slice(0, 300));
}
