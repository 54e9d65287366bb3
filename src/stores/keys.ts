import { invalidArgument, TokenWardenError } from '../errors.js';
import { INSPECT, REDACTED } from '../internal/redact.js';

/**
 * An encryption key of a sealed store with its key id. The id goes into each record's protected
 * header, so a record sealed under another key is recognised, not mis-decrypted.
 *
 * @example
 * ```ts
 * const key: SealingKey = await provider.current();
 * console.log(key.kid); // safe to log: an id, not the key
 * ```
 */
export interface SealingKey {
  /** The key id: random, or derived from the key by a one-way hash. Never the key. */
  readonly kid: string;
  /** A 256-bit AES-GCM key: a (preferably non-extractable) CryptoKey, or 32 raw bytes. */
  readonly key: CryptoKey | Uint8Array;
}

/**
 * Supplies a sealed store's keys. Built by the platform entries: `envKey()` and
 * `keychainKey()` in `tokenwarden/node`, the IndexedDB key in `tokenwarden/browser`, or
 * {@link staticKey} for bytes the application holds.
 *
 * @example
 * ```ts
 * import { staticKey } from 'tokenwarden';
 * const provider: KeyProvider = staticKey(crypto.getRandomValues(new Uint8Array(32)));
 * const { kid } = await provider.current();
 * ```
 */
export interface KeyProvider {
  /** A short name of where keys come from, e.g. `static`, `env`, `keychain`, `indexeddb`. */
  readonly kind: string;
  /**
   * The key new records are sealed with; created on first use where the provider can.
   * @returns The current key.
   * @throws {@link TokenWardenError} `ERR_KEY_UNAVAILABLE` when there is no usable key,
   * `ERR_STORE_UNAVAILABLE` when the place the key is kept cannot be reached (an unset variable, a
   * locked keychain), `ERR_UNSUPPORTED` when the runtime lacks what the provider needs.
   */
  current(): Promise<SealingKey>;
  /**
   * A key by id: the current one, or one retained during a rotation.
   * @param kid - The key id from a record's header.
   * @returns The key, or `undefined` when unknown.
   * @throws {@link TokenWardenError} with the codes of {@link KeyProvider.current} when the
   * provider cannot reach its keys (`ERR_KEY_UNAVAILABLE`, `ERR_STORE_UNAVAILABLE`,
   * `ERR_UNSUPPORTED`).
   */
  find(kid: string): Promise<SealingKey | undefined>;
  /**
   * Makes a new key current, keeping the previous one findable until {@link KeyProvider.retire}.
   * @param next - New key material, for providers that cannot create keys themselves.
   * @returns The new current key.
   * @throws {@link TokenWardenError} `ERR_INVALID_ARGUMENT` when `next` is missing or not 32 bytes
   * for a provider that cannot create keys (`staticKey`, `envKey`), or is given to one that
   * creates its own; the codes of {@link KeyProvider.current} when the keys cannot be reached.
   */
  rotate(next?: KeyInput): Promise<SealingKey>;
  /**
   * Forgets a key that no record uses any more.
   * @param kid - The key id.
   * @throws {@link TokenWardenError} with the codes of {@link KeyProvider.current} when the
   * provider cannot reach its keys (`ERR_KEY_UNAVAILABLE`, `ERR_STORE_UNAVAILABLE`,
   * `ERR_UNSUPPORTED`).
   */
  retire(kid: string): Promise<void>;
}

/**
 * A key as an application supplies it: 32 bytes, the base64url form of 32 bytes, or a
 * {@link KeyProvider}.
 *
 * @example
 * ```ts
 * const key: KeyInput = process.env.TOKENWARDEN_KEY ?? crypto.getRandomValues(new Uint8Array(32));
 * ```
 */
export type KeyInput = Uint8Array | string | KeyProvider;

/** Parses 32 key bytes from bytes or base64url, with a coded error that never echoes the input. */
export function keyBytes(input: Uint8Array | string, name: string): Uint8Array {
  let bytes: Uint8Array;
  if (input instanceof Uint8Array) {
    bytes = new Uint8Array(input);
  } else if (typeof input === 'string' && /^[A-Za-z0-9_-]{43}={0,1}$/.test(input.trim())) {
    bytes = fromBase64Url(input.trim().replace(/=$/, ''));
  } else {
    throw invalidArgument(
      `${name} must be 32 bytes (a Uint8Array) or their base64url form (43 characters).`,
    );
  }
  if (bytes.length !== 32) {
    throw invalidArgument(`${name} must be exactly 32 bytes (256 bits) for AES-256-GCM.`);
  }
  return bytes;
}

/** A key id derived from raw key bytes: a domain-separated SHA-256, truncated. */
export async function deriveKid(bytes: Uint8Array): Promise<string> {
  const label = new TextEncoder().encode('tokenwarden key id\u0000');
  const input = new Uint8Array(label.length + bytes.length);
  input.set(label);
  input.set(bytes, label.length);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', input));
  return toBase64Url(digest.subarray(0, 12));
}

/** A random key id, for keys whose bytes cannot (and must not) be read. */
export function randomKid(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(12)));
}

/**
 * A key provider over key bytes the application holds (from a secret manager, a KMS-unwrapped
 * data key, a file). `rotate(next)` needs the new bytes; afterwards the application must supply
 * the new key on the next start, or the records are unreadable and wiped.
 *
 * @param input - 32 bytes or their base64url form.
 * @returns A {@link KeyProvider}.
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` when the key is not 32 bytes.
 * @example
 * ```ts
 * import { staticKey } from 'tokenwarden';
 * import { fileStore } from 'tokenwarden/node';
 * const store = fileStore({ path: './tokens.jwe', key: staticKey(process.env.TOKEN_KEY!) });
 * ```
 */
export function staticKey(input: Uint8Array | string): KeyProvider {
  const keys = new Map<string, SealingKey>();
  let current: Promise<SealingKey> = fromBytes(keyBytes(input, 'key'));
  const remember = async (pending: Promise<SealingKey>) => {
    const key = await pending;
    keys.set(key.kid, key);
    return key;
  };
  current = remember(current);
  return redacted({
    kind: 'static',
    current: () => current,
    async find(kid) {
      await current;
      return keys.get(kid);
    },
    async rotate(next) {
      if (next === undefined || (typeof next !== 'string' && !(next instanceof Uint8Array))) {
        throw invalidArgument('Rotating a static key needs the new key: rotateKey(newKeyBytes).');
      }
      current = remember(fromBytes(keyBytes(next, 'key')));
      return current;
    },
    async retire(kid) {
      if ((await current).kid !== kid) keys.delete(kid);
    },
  });
}

/** Turns a {@link KeyInput} into a provider. */
export function toKeyProvider(input: KeyInput, name: string): KeyProvider {
  if (typeof input === 'object' && input !== null && !(input instanceof Uint8Array)) {
    const candidate = input as Partial<KeyProvider>;
    if (
      typeof candidate.current !== 'function' ||
      typeof candidate.find !== 'function' ||
      typeof candidate.rotate !== 'function' ||
      typeof candidate.retire !== 'function'
    ) {
      throw invalidArgument(`${name} must be 32 bytes, their base64url form, or a KeyProvider.`);
    }
    return input;
  }
  return staticKey(input);
}

/** The error every provider throws when it has no usable key. */
export function keyUnavailable(message: string, cause?: unknown): TokenWardenError {
  return new TokenWardenError('ERR_KEY_UNAVAILABLE', message, { cause });
}

/** Adds the redacting print forms every key holder must have. */
export function redacted<T extends object>(provider: T): T {
  return Object.defineProperties(provider, {
    toString: { value: () => REDACTED },
    toJSON: { value: () => ({ kind: (provider as { kind?: string }).kind, key: REDACTED }) },
    [INSPECT]: { value: () => `KeyProvider [REDACTED]` },
  });
}

async function fromBytes(bytes: Uint8Array): Promise<SealingKey> {
  return importSealingKey(await deriveKid(bytes), bytes);
}

/**
 * Imports 32 key bytes as a non-extractable AES-GCM key, so the bytes cannot be read back out
 * of the key object, and zeroes them.
 */
export async function importSealingKey(kid: string, bytes: Uint8Array): Promise<SealingKey> {
  try {
    const key = await crypto.subtle.importKey(
      'raw',
      bytes as Uint8Array<ArrayBuffer>,
      { name: 'AES-GCM' },
      false,
      ['encrypt', 'decrypt'],
    );
    return Object.freeze({ kid, key });
  } finally {
    bytes.fill(0);
  }
}

/** base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
