import { invalidArgument } from '../errors.js';
import {
  deriveKid,
  importSealingKey,
  type KeyInput,
  type KeyProvider,
  keyBytes,
  redacted,
  type SealingKey,
  toBase64Url,
} from '../stores/keys.js';
import { type SealedStore, sealedStore } from '../stores/sealed.js';
import type { RecordBackend } from '../stores/types.js';
import { keychainAccounts, keychainEntry } from './internal/keyring.js';

/** The account that {@link keychainStore} keeps its key under, unless given another key. */
const STORE_KEY_ACCOUNT = '__tokenwarden_key__';
/** Key ids are {@link deriveKid} output: 12 bytes in base64url. */
const KID = /^[A-Za-z0-9_-]{16}$/;
const ACCOUNT = /^[A-Za-z0-9._:@-]{1,128}$/;
/** Record entries are `record/<credential id>`; credential ids never contain `/` or `#`. */
const RECORD = 'record/';
/**
 * Windows Credential Manager holds at most 2560 bytes per secret, stored as UTF-16: 1280
 * characters. A sealed token set with JWT tokens is larger, so longer records are split.
 */
const PART_SIZE = 1000;
const PARTS = /^#parts:([A-Za-z0-9_-]{8}):(\d{1,3})$/;
/** No sealed record is longer than 256 KiB (the sealed store does not even parse one). */
const MAX_PARTS = Math.ceil((256 * 1024) / PART_SIZE);

/**
 * Options of {@link keychainKey}.
 *
 * @example
 * ```ts
 * const options: KeychainKeyOptions = { service: 'com.example.billing-sync', account: 'token-key' };
 * ```
 */
export interface KeychainKeyOptions {
  /**
   * The keychain service name the key is filed under: the application's name, e.g.
   * `com.example.billing-sync`. Shown to users in their keychain manager.
   */
  readonly service: string;
  /**
   * The account name of the key entry: 1-128 letters, digits, `.`, `_`, `:`, `@` or `-`. The
   * key itself is held in the entry `<account>/<key id>`; `<account>` names the current key id.
   * @default '__tokenwarden_key__'
   */
  readonly account?: string;
}

/**
 * A key provider whose 256-bit AES key lives in the OS keychain (macOS Keychain, Windows
 * Credential Manager, or a Linux Secret Service such as gnome-keyring or KWallet). The key is
 * generated with `crypto.getRandomValues` on first use and stored in the keychain; in the
 * process it is only held as a non-extractable `CryptoKey`. A store sealed with it, such as an
 * encrypted file, is useless without this user's keychain.
 *
 * - `rotate()` makes a new key current and keeps the previous one in the keychain until
 *   `retire(kid)`, so records sealed under it stay readable while a store re-seals them.
 * - If the key entry vanished (deleted by the user, a new keychain), a new key is created:
 *   records sealed under the old one have an unknown key id and are discarded, never decrypted
 *   with another key.
 * - On Linux only the Secret Service is used, never the in-memory kernel keyring, which would
 *   lose the key at the next reboot.
 *
 * `@napi-rs/keyring` (an optional peer dependency) is loaded on first use, not on import.
 *
 * @param options - The keychain service and account names.
 * @returns A {@link KeyProvider} of kind `keychain`.
 * @throws {@link index!InvalidArgumentError} `ERR_INVALID_ARGUMENT` (synchronously) for a malformed
 * service or account.
 * @throws {@link index!TokenWardenError} from its methods: `ERR_UNSUPPORTED` when `@napi-rs/keyring`
 *   is not installed (the message says `npm install @napi-rs/keyring`); `ERR_STORE_UNAVAILABLE`
 *   when the keychain cannot be used (no Secret Service or D-Bus session bus, a locked keyring),
 *   with a message naming what is missing.
 * @example
 * ```ts
 * import { fileStore, keychainKey } from 'tokenwarden/node';
 * const store = fileStore({ path: './tokens.jwe', key: keychainKey({ service: 'billing-sync' }) });
 * const warden = createWarden({ store });
 * ```
 */
export function keychainKey(options: KeychainKeyOptions): KeyProvider {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('keychainKey(options): options must be an object with a service.');
  }
  const service = checkService(options.service, 'keychainKey');
  const account = options.account ?? STORE_KEY_ACCOUNT;
  if (typeof account !== 'string' || !ACCOUNT.test(account)) {
    throw invalidArgument(
      'keychainKey({ account }): the account must be 1-128 letters, digits, ".", "_", ":", "@" or "-".',
    );
  }
  const pointer = keychainEntry(service, account);
  const slot = (kid: string) => keychainEntry(service, `${account}/${kid}`);
  const known = new Map<string, SealingKey>();
  let current: Promise<SealingKey> | undefined;

  const remember = (key: SealingKey) => {
    known.set(key.kid, key);
    return key;
  };

  const fetchKey = async (kid: string): Promise<SealingKey | undefined> => {
    const secret = await slot(kid).get();
    if (secret === undefined) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = keyBytes(secret, 'The keychain key');
    } catch {
      return undefined;
    }
    // The id is a hash of the key: an entry holding other bytes is not this key.
    if ((await deriveKid(bytes)) !== kid) {
      bytes.fill(0);
      return undefined;
    }
    return remember(await importSealingKey(kid, bytes));
  };

  const create = async (): Promise<SealingKey> => {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const kid = await deriveKid(bytes);
    await slot(kid).set(toBase64Url(bytes));
    // The pointer moves only once the key is stored: a crash never leaves it naming no key.
    await pointer.set(kid);
    return remember(await importSealingKey(kid, bytes));
  };

  const load = async (): Promise<SealingKey> => {
    const kid = await pointer.get();
    const stored = kid !== undefined && KID.test(kid) ? await fetchKey(kid) : undefined;
    // No key yet, or its entry vanished or was damaged: records sealed under the old key then
    // carry an unknown key id and are discarded by the store, never opened with this new key.
    return stored ?? (await create());
  };

  const currentKey = (): Promise<SealingKey> => {
    current ??= load().catch((error: unknown) => {
      // A locked or unreachable keychain may come back: the next call tries again.
      current = undefined;
      throw error;
    });
    return current;
  };

  return redacted({
    kind: 'keychain',
    current: currentKey,
    async find(kid: string) {
      const cached = known.get(kid);
      if (cached) return cached;
      // The id comes from a record's header, which anyone with the file could have edited.
      if (typeof kid !== 'string' || !KID.test(kid)) return undefined;
      return fetchKey(kid);
    },
    async rotate(next?: KeyInput) {
      if (next !== undefined) {
        throw invalidArgument(
          'keychainKey creates its own keys: rotate without new key material (store.rotateKey()).',
        );
      }
      await currentKey();
      const fresh = await create();
      current = Promise.resolve(fresh);
      return fresh;
    },
    async retire(kid: string) {
      if ((await currentKey()).kid === kid) return;
      known.delete(kid);
      if (typeof kid === 'string' && KID.test(kid)) await slot(kid).delete();
    },
  } satisfies KeyProvider);
}

/**
 * Options of {@link keychainStore}.
 *
 * @example
 * ```ts
 * const options: KeychainStoreOptions = { service: 'com.example.cli' };
 * ```
 */
export interface KeychainStoreOptions {
  /**
   * The keychain service name the records are filed under: the application's name, e.g.
   * `com.example.cli`. Shown to users in their keychain manager.
   */
  readonly service: string;
  /**
   * The key that seals the records: a key provider, 32 bytes, or their base64url form.
   * @default keychainKey({ service, account: '__tokenwarden_key__' })
   */
  readonly key?: KeyInput;
}

/**
 * A persistent store that keeps each credential's record in the OS keychain itself (macOS
 * Keychain, Windows Credential Manager, or a Linux Secret Service such as gnome-keyring or
 * KWallet), through the optional peer dependency `@napi-rs/keyring`, loaded on first use.
 *
 * Records are sealed like those of every persistent store (JWE, AES-256-GCM, bound to their
 * credential id), under a key that is itself kept in the keychain by default: what a keychain
 * manager or another program shows is ciphertext. A record copied into another credential's
 * entry, edited or truncated is discarded with a `tamper` event.
 *
 * Layout under `service`: `record/<credential id>` per credential (records longer than 1000
 * characters are split into `record/<id>#<generation>.<n>` parts, because Windows caps a secret
 * at 2560 bytes), and the key entries of {@link keychainKey} (`__tokenwarden_key__`).
 *
 * @param options - The keychain service name and, optionally, another key.
 * @returns A {@link SealedStore} of kind `keychain`.
 * @throws {@link index!InvalidArgumentError} `ERR_INVALID_ARGUMENT` (synchronously) for a malformed
 * service or key.
 * @throws {@link index!TokenWardenError} from its methods: `ERR_UNSUPPORTED` when `@napi-rs/keyring`
 *   is not installed (the message says `npm install @napi-rs/keyring`); `ERR_STORE_UNAVAILABLE`
 *   when the keychain cannot be used (no Secret Service or D-Bus session bus, a locked keyring),
 *   with a message naming what is missing. A warden logs these and keeps tokens in memory.
 * @example
 * ```ts
 * import { createWarden } from 'tokenwarden';
 * import { keychainStore } from 'tokenwarden/node';
 * const warden = createWarden({ store: keychainStore({ service: 'com.example.cli' }) });
 * ```
 */
export function keychainStore(options: KeychainStoreOptions): SealedStore {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('keychainStore(options): options must be an object with a service.');
  }
  const service = checkService(options.service, 'keychainStore');
  const key = options.key ?? keychainKey({ service, account: STORE_KEY_ACCOUNT });
  return sealedStore(keychainBackend(service), key);
}

/** Sealed records as keychain secrets under one service; see {@link keychainStore}. */
function keychainBackend(service: string): RecordBackend {
  const head = (id: string) => keychainEntry(service, RECORD + id);
  const part = (id: string, generation: string, index: number) =>
    keychainEntry(service, `${RECORD}${id}#${generation}.${index}`);
  const recordAccounts = async () =>
    (await keychainAccounts(service)).filter((account) => account.startsWith(RECORD));

  /** The generation and part count a head names, if it is a well-formed pointer. */
  const pointerOf = (head: string | undefined) => {
    const match = head === undefined ? null : PARTS.exec(head);
    const count = Number(match?.[2]);
    return match && count > 0 && count <= MAX_PARTS ? { generation: match[1] ?? '', count } : null;
  };

  const readParts = async (id: string, head: string) => {
    const named = pointerOf(head);
    // Not a pointer the store wrote: returned as is, it fails to open and is reported.
    if (!named) return { value: head, complete: true };
    const { generation, count } = named;
    const parts: Array<string | undefined> = [];
    for (let index = 0; index < count; index++) {
      parts.push(await part(id, generation, index).get());
    }
    // A missing part yields a truncated record, which the sealed store reports as tampered.
    return { value: parts.join(''), complete: parts.every((value) => value !== undefined) };
  };

  const deleteParts = async (id: string, head: string | undefined) => {
    const named = pointerOf(head);
    if (!named) return;
    const { generation, count } = named;
    for (let index = 0; index < count; index++) {
      await part(id, generation, index).delete();
    }
  };

  return {
    kind: 'keychain',
    async read(id) {
      for (let attempt = 0; ; attempt++) {
        const pointer = await head(id).get();
        if (pointer === undefined || !pointer.startsWith('#')) return pointer;
        const { value, complete } = await readParts(id, pointer);
        // Another process may have replaced the record (and deleted these parts) between
        // reading its head and its parts: read again rather than call a good record tampered.
        if (complete || attempt === 2 || (await head(id).get()) === pointer) return value;
      }
    },
    async write(id, sealed) {
      const previous = await head(id).get();
      let written = sealed;
      if (sealed.length <= PART_SIZE) {
        await head(id).set(sealed);
      } else {
        const generation = toBase64Url(crypto.getRandomValues(new Uint8Array(6)));
        const count = Math.ceil(sealed.length / PART_SIZE);
        for (let index = 0; index < count; index++) {
          const chunk = sealed.slice(index * PART_SIZE, (index + 1) * PART_SIZE);
          await part(id, generation, index).set(chunk);
        }
        // The head switches to the new parts in one write, once they are all stored: a crash
        // leaves the old record or the new one, never a mix.
        written = `#parts:${generation}:${count}`;
        await head(id).set(written);
      }
      if (previous !== undefined && previous !== written) await deleteParts(id, previous);
    },
    async remove(id) {
      await head(id).delete();
      // Parts of this record, including any a crashed write left behind.
      for (const account of await recordAccounts()) {
        if (account.startsWith(`${RECORD}${id}#`)) await keychainEntry(service, account).delete();
      }
    },
    async ids() {
      return (await recordAccounts())
        .filter((account) => !account.includes('#'))
        .map((account) => account.slice(RECORD.length));
    },
    async clear() {
      const accounts = await recordAccounts();
      // Heads first, so that no reader meets a record whose parts are already gone.
      accounts.sort((a, b) => Number(a.includes('#')) - Number(b.includes('#')));
      for (const account of accounts) await keychainEntry(service, account).delete();
    },
  };
}

function checkService(service: unknown, factory: string): string {
  const printable =
    typeof service === 'string' && [...service].every((char) => char >= ' ' && char !== '\u007f');
  if (!printable || service.length === 0 || service.length > 256) {
    throw invalidArgument(
      `${factory}({ service }): the service must be a name of 1-256 printable characters, e.g. 'com.example.app'.`,
    );
  }
  return service;
}
