import { invalidArgument, TokenWardenError } from '../errors.js';
import { withDeadline } from '../internal/http.js';
import { INSPECT } from '../internal/redact.js';
import { TokenSet, type TokenSetInfo } from '../token.js';
import { isHeaderToken, isTokenValue } from './token-response.js';
import type { RevokedToken, SourceContext, SourceInfo, TokenHeader, TokenSource } from './types.js';

/**
 * What an API key's `rotate` callback receives.
 *
 * @example
 * ```ts
 * import { apiKey, type ApiKeyRotateContext } from 'tokenwarden';
 * const source = apiKey({
 *   key: process.env.MAPS_KEY!,
 *   expiresAt: new Date('2030-01-01'),
 *   rotate: async ({ credentialId, signal }: ApiKeyRotateContext) =>
 *     vault.read(`${credentialId}/api-key`, { signal }),
 * });
 * ```
 */
export interface ApiKeyRotateContext {
  /** Aborted when the credential closes, the caller gives up, or the timeout passes. */
  readonly signal: AbortSignal;
  /** The credential the key belongs to. */
  readonly credentialId: string;
  /** Non-secret facts about the key being replaced, when there is one. */
  readonly current: TokenSetInfo | undefined;
}

/**
 * What an API key's `revoke` callback receives. The key is behind `revealKey()`, so that printing
 * or serialising the context shows no secret; keep it out of your error messages.
 *
 * @example
 * ```ts
 * import { apiKey, type ApiKeyRevokeContext } from 'tokenwarden';
 * const source = apiKey({
 *   key: process.env.MAPS_KEY!,
 *   revoke: async ({ revealKey, signal }: ApiKeyRevokeContext) => {
 *     await mapsAdmin.deleteKey(revealKey(), { signal }); // your provider's key API
 *   },
 * });
 * ```
 */
export interface ApiKeyRevokeContext {
  /** Aborted when the credential closes, the caller gives up, or the timeout passes. */
  readonly signal: AbortSignal;
  /** The credential the key belongs to. */
  readonly credentialId: string;
  /** Non-secret facts about the key being revoked. */
  readonly current: TokenSetInfo | undefined;
  /**
   * The key to revoke (the one in use, which a `rotate` may have replaced since start-up).
   * @returns The raw key.
   * @throws Never.
   */
  revealKey(): string;
}

/**
 * A rotated key with its own expiry.
 *
 * @example
 * ```ts
 * import { apiKey, type ApiKeyRotation } from 'tokenwarden';
 * const source = apiKey({
 *   key: process.env.MAPS_KEY!, expiresAt: new Date('2030-01-01'),
 *   rotate: async (): Promise<ApiKeyRotation> => {
 *     const created = await mapsAdmin.createKey(); // your provider's key API
 *     return { key: created.secret, expiresAt: new Date(created.expiresAt) };
 *   },
 * });
 * ```
 */
export interface ApiKeyRotation {
  /** The new key. */
  key: string;
  /**
   * When the new key expires (a `Date` or epoch milliseconds).
   * @default never
   */
  expiresAt?: Date | number | undefined;
}

/**
 * Options of {@link apiKey}.
 *
 * @example
 * ```ts
 * import { apiKey, type ApiKeyOptions } from 'tokenwarden';
 * const options: ApiKeyOptions = { key: process.env.MAPS_KEY!, header: 'X-API-Key' };
 * warden.register('maps', { source: apiKey(options), origins: ['https://maps.example.com'] });
 * ```
 */
export interface ApiKeyOptions {
  /** The key. Kept in a private field; printed as `[REDACTED]`. */
  key: string;
  /**
   * The request header that carries the key, e.g. `X-API-Key`.
   * @default 'Authorization'
   */
  header?: string | undefined;
  /**
   * The scheme written before the key; `null` sends the raw key.
   * @default 'Bearer' when `header` is `Authorization`, `null` for any other header
   */
  scheme?: string | null | undefined;
  /**
   * When the key expires (a `Date` or epoch milliseconds). Before then the credential calls
   * `rotate`, like a token refresh.
   * @default never
   */
  expiresAt?: Date | number | undefined;
  /**
   * Returns a new key, called when the credential asks for a replacement (the key is inside its
   * refresh window, or a request was rejected with 401). Runs under the credential's request
   * timeout. Errors it throws are wrapped in `ERR_SOURCE_FAILED` with the error as `cause`, so do
   * not put the key into your error messages.
   * @default undefined (the key is used as is until it expires)
   */
  rotate?:
    | ((context: ApiKeyRotateContext) => Promise<string | ApiKeyRotation> | string | ApiKeyRotation)
    | undefined;
  /**
   * Revokes the key at its provider, called by `credential.revoke()` and `warden.revokeAll()`
   * (the credential wipes its local copies whether or not this succeeds). Runs under the
   * credential's request timeout. Errors it throws are wrapped in `ERR_SOURCE_FAILED` with the
   * error as `cause` and reported in the revoke result, so do not put the key into your error
   * messages.
   * @default undefined (`revoke()` only wipes the key locally and reports `outcome: 'unsupported'`)
   */
  revoke?: ((context: ApiKeyRevokeContext) => Promise<void> | void) | undefined;
}

/** Lifetime given to a key that never expires: a hundred years, in milliseconds. */
const NEVER_MS = 100 * 365.25 * 86_400_000;

// Headers that frame or route the request: a key put there would break it, not authenticate it.
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);

/**
 * A token source for a static API key, sent in `Authorization` (as `Bearer <key>` by default) or
 * in a header of your choice such as `X-API-Key` (raw by default). With `expiresAt` and `rotate`,
 * the key is rotated before it expires, exactly like a token refresh.
 *
 * @param options - The key, header, scheme, expiry and rotate callback.
 * @returns The token source; its `header` tells the credential where the key goes.
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for a malformed key, header name or
 * scheme.
 * @example
 * ```ts
 * import { apiKey } from 'tokenwarden';
 * const source = apiKey({
 *   key: process.env.MAPS_KEY!,
 *   header: 'X-API-Key',
 *   expiresAt: new Date('2030-01-01'),
 *   rotate: async () => ({ key: await vault.read('maps-key'), expiresAt: Date.now() + 30 * 86_400_000 }),
 * });
 * warden.register('maps', { source, origins: ['https://maps.example.com'] });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1 (the Bearer scheme)
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5.1 (header field names)
 */
export function apiKey(options: ApiKeyOptions): TokenSource {
  return new ApiKeySource(options);
}

class ApiKeySource implements TokenSource {
  readonly kind = 'api_key' as const;
  readonly header: TokenHeader;
  readonly revokeCurrent?: (context: SourceContext) => Promise<readonly RevokedToken[]>;
  readonly #rotate: ApiKeyOptions['rotate'];
  #key: string;
  #expiresAt: number | undefined;

  constructor(options: ApiKeyOptions) {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgument('apiKey() needs an options object.');
    }
    if (!isTokenValue(options.key)) {
      throw invalidArgument(
        'key must be a non-empty string of visible ASCII characters (no whitespace, CR, LF or other control characters).',
      );
    }
    this.#key = options.key;
    this.header = parseHeader(options.header, options.scheme);
    this.#expiresAt = parseExpiresAt(options.expiresAt, 'expiresAt', invalidArgument);
    if (options.rotate !== undefined && typeof options.rotate !== 'function') {
      throw invalidArgument('rotate must be a function returning the new key.');
    }
    this.#rotate = options.rotate;
    if (options.revoke !== undefined) {
      if (typeof options.revoke !== 'function') {
        throw invalidArgument('revoke must be a function that revokes the key at its provider.');
      }
      const revoke = options.revoke;
      this.revokeCurrent = (context) => revokeKey(revoke, context);
    }
    Object.freeze(this);
  }

  info(): SourceInfo {
    return { kind: this.kind };
  }

  async obtain(context: SourceContext): Promise<TokenSet> {
    const now = context.clock.now();
    const expired = this.#expiresAt !== undefined && this.#expiresAt <= now;
    // A credential asks again while it holds a key only when that key is due (refresh window)
    // or was rejected: that is when to rotate.
    if (this.#rotate !== undefined && (context.current !== undefined || expired)) {
      await this.#rotateKey(context);
    } else if (expired) {
      throw new TokenWardenError(
        'ERR_SOURCE_FAILED',
        'The API key has expired and no rotate callback is configured. Supply a new key.',
        { credentialId: context.credentialId },
      );
    }
    const issuedAt = context.clock.now();
    return new TokenSet({
      accessToken: this.#key,
      tokenType: 'ApiKey',
      issuedAt,
      expiresAt: this.#expiresAt ?? issuedAt + NEVER_MS,
      expirySource: 'explicit',
    });
  }

  async #rotateKey(context: SourceContext): Promise<void> {
    const rotate = this.#rotate as NonNullable<ApiKeyOptions['rotate']>;
    const failed = (message: string, cause?: unknown): TokenWardenError =>
      new TokenWardenError('ERR_SOURCE_FAILED', message, {
        credentialId: context.credentialId,
        cause,
      });
    const result = await withDeadline(
      {
        signal: context.signal,
        timeoutMs: context.timeoutMs,
        what: 'The API key rotate callback',
      },
      (signal) =>
        Promise.resolve(
          rotate({ signal, credentialId: context.credentialId, current: context.current?.info() }),
        ),
      (error) =>
        failed(
          'The API key rotate callback threw; see the cause. The old key stays in use.',
          error,
        ),
    );
    const rotation: { key?: unknown; expiresAt?: unknown } =
      typeof result === 'string'
        ? { key: result }
        : typeof result === 'object' && result !== null
          ? { key: result.key, expiresAt: result.expiresAt }
          : {};
    if (!isTokenValue(rotation.key)) {
      throw failed(
        'The API key rotate callback returned no usable key (a non-empty string of visible ASCII characters, or { key, expiresAt }).',
      );
    }
    const expiresAt = parseExpiresAt(rotation.expiresAt, 'expiresAt', (message) =>
      failed(`The API key rotate callback returned an unusable expiry: ${message}`),
    );
    if (expiresAt !== undefined && expiresAt <= context.clock.now()) {
      throw failed('The API key rotate callback returned a key that has already expired.');
    }
    this.#key = rotation.key;
    this.#expiresAt = expiresAt;
  }

  toJSON(): Record<string, unknown> {
    return { kind: this.kind, header: this.header, expiresAt: this.#expiresAt, key: '[REDACTED]' };
  }

  [INSPECT](): string {
    return `TokenSource ${JSON.stringify(this.toJSON())}`;
  }
}

/** Calls an API key's `revoke` callback under the credential's deadline. */
async function revokeKey(
  revoke: NonNullable<ApiKeyOptions['revoke']>,
  context: SourceContext,
): Promise<readonly RevokedToken[]> {
  const called = await runRevokeCallback(
    context,
    'The API key revoke callback',
    'The key was wiped locally but may still be valid at its provider.',
    (signal, current) =>
      revoke({
        signal,
        credentialId: context.credentialId,
        current: current.info(),
        revealKey: () => current.revealAccessToken(),
      }),
  );
  return called ? ['api_key'] : [];
}

/**
 * Calls an app's revoke callback (an API key's, a custom source's) with the held set, under the
 * credential's timeout and signal; what it throws becomes `ERR_SOURCE_FAILED` with it as `cause`.
 * @returns `false` when no set is held (nothing was called).
 * @internal
 */
export async function runRevokeCallback(
  context: SourceContext,
  callback: string,
  consequence: string,
  call: (signal: AbortSignal, current: TokenSet) => Promise<void> | void,
): Promise<boolean> {
  const current = context.current;
  if (current === undefined) return false;
  await withDeadline(
    { signal: context.signal, timeoutMs: context.timeoutMs, what: callback },
    (signal) => Promise.resolve(call(signal, current)),
    (error) =>
      new TokenWardenError(
        'ERR_SOURCE_FAILED',
        `${callback} threw; see the cause. ${consequence}`,
        { credentialId: context.credentialId, cause: error },
      ),
  );
  return true;
}

/**
 * Validates a header name and scheme for a key-carrying header.
 *
 * @param header - The header name option.
 * @param scheme - The scheme option.
 * @returns The header description for the credential.
 * @throws {@link InvalidArgumentError} for a malformed or reserved header, or a malformed scheme.
 * @example
 * ```ts
 * parseHeader('X-API-Key', undefined); // { name: 'X-API-Key', scheme: null }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5.1
 * @internal
 */
export function parseHeader(header: unknown, scheme: unknown): TokenHeader {
  const name = header ?? 'Authorization';
  if (typeof name !== 'string' || !isHeaderToken(name)) {
    throw invalidArgument('header must be a valid HTTP header name such as "X-API-Key".');
  }
  if (RESERVED_HEADERS.has(name.toLowerCase())) {
    throw invalidArgument(`header "${name}" frames the request and cannot carry a key.`);
  }
  const isAuthorization = name.toLowerCase() === 'authorization';
  const resolved = scheme === undefined ? (isAuthorization ? 'Bearer' : null) : scheme;
  if (resolved !== null && (typeof resolved !== 'string' || !isHeaderToken(resolved))) {
    throw invalidArgument('scheme must be an HTTP auth scheme such as "Bearer", or null.');
  }
  return Object.freeze({ name, scheme: resolved });
}

/**
 * Converts an expiry option (`Date` or epoch milliseconds) to epoch milliseconds.
 *
 * @param value - The option value.
 * @param name - The option name, for messages.
 * @param fail - Builds the error to throw (an argument error at start-up, a source error later).
 * @returns Epoch milliseconds, or `undefined` when not given.
 * @throws What `fail` returns, for an invalid `Date`, a negative or non-finite number, or junk.
 * @example
 * ```ts
 * parseExpiresAt(new Date('2030-01-01'), 'expiresAt', invalidArgument); // 1893456000000
 * ```
 * @internal
 */
export function parseExpiresAt(
  value: unknown,
  name: string,
  fail: (message: string) => Error,
): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw fail(`${name} must be a valid Date or epoch milliseconds.`);
  }
  return ms;
}
