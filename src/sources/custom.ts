import { invalidArgument, TokenWardenError } from '../errors.js';
import { withDeadline } from '../internal/http.js';
import { INSPECT } from '../internal/redact.js';
import { TokenSet, type TokenSetInfo } from '../token.js';
import { parseExpiresAt, parseHeader, runRevokeCallback } from './api-key.js';
import {
  isHeaderToken,
  isTokenValue,
  jwtExpiry,
  MAX_LIFETIME_MS,
  parseScope,
} from './token-response.js';
import type { RevokedToken, SourceContext, SourceInfo, TokenHeader, TokenSource } from './types.js';

/**
 * What a {@link customSource} function returns.
 *
 * @example
 * ```ts
 * import { customSource, type CustomTokenResult } from 'tokenwarden';
 * const source = customSource(async (): Promise<CustomTokenResult> => {
 *   const { token, expires } = await tokenService.mint();
 *   return { accessToken: token, expiresAt: new Date(expires), scope: 'reports:read' };
 * });
 * ```
 */
export interface CustomTokenResult {
  /** The access token. */
  accessToken: string;
  /**
   * Lifetime in seconds from now. Give this or `expiresAt`, not both.
   * @default from the JWT `exp` when the token is a JWT, else the credential's default lifetime
   */
  expiresIn?: number | undefined;
  /**
   * Expiry as a `Date` or epoch milliseconds. Give this or `expiresIn`, not both.
   * @default see `expiresIn`
   */
  expiresAt?: Date | number | undefined;
  /**
   * A refresh token to keep with the set (your function can read it back from its own store).
   * @default undefined (no refresh token)
   */
  refreshToken?: string | undefined;
  /**
   * The token type, used as the `Authorization` scheme unless the source sets a header.
   * @default 'Bearer'
   */
  tokenType?: string | undefined;
  /**
   * The granted scopes, as an array or a space-delimited string.
   * @default undefined (no scope recorded)
   */
  scope?: string | readonly string[] | undefined;
}

/**
 * What a {@link customSource} function receives.
 *
 * @example
 * ```ts
 * import { customSource, type CustomSourceContext } from 'tokenwarden';
 * const source = customSource(async ({ signal, credentialId, current }: CustomSourceContext) => {
 *   if (current) console.info(`${credentialId}: replacing a token that expires at ${current.expiresAt}`);
 *   const res = await fetch('https://tokens.internal/mint', { method: 'POST', signal });
 *   return { accessToken: (await res.json()).token };
 * });
 * ```
 */
export interface CustomSourceContext {
  /** Aborted when the credential closes, the caller gives up, or the timeout passes. */
  readonly signal: AbortSignal;
  /** The credential asking. */
  readonly credentialId: string;
  /** Non-secret facts about the current token set, when there is one. */
  readonly current: TokenSetInfo | undefined;
}

/**
 * The function behind a {@link customSource}.
 *
 * @example
 * ```ts
 * import { customSource, type CustomSourceFunction } from 'tokenwarden';
 * const mint: CustomSourceFunction = async ({ signal }) => {
 *   const res = await fetch('https://tokens.internal/mint', { method: 'POST', signal });
 *   const { token, ttl } = await res.json();
 *   return { accessToken: token, expiresIn: ttl };
 * };
 * const source = customSource(mint);
 * ```
 */
export type CustomSourceFunction = (
  context: CustomSourceContext,
) => Promise<CustomTokenResult> | CustomTokenResult;

/**
 * What a {@link customSource}'s `revoke` callback receives. The tokens are behind `reveal...()`,
 * so that printing or serialising the context shows no secret; keep them out of your error
 * messages.
 *
 * @example
 * ```ts
 * import { customSource, type CustomRevokeContext } from 'tokenwarden';
 * const source = customSource(mintToken, {
 *   revoke: async ({ revealAccessToken, signal }: CustomRevokeContext) => {
 *     await fetch('https://tokens.internal/revoke', {
 *       method: 'POST', body: revealAccessToken(), signal,
 *     });
 *   },
 * });
 * ```
 */
export interface CustomRevokeContext {
  /** Aborted when the credential closes, the caller gives up, or the timeout passes. */
  readonly signal: AbortSignal;
  /** The credential the tokens belong to. */
  readonly credentialId: string;
  /** Non-secret facts about the token set being revoked. */
  readonly current: TokenSetInfo;
  /**
   * The access token to revoke.
   * @returns The raw access token.
   * @throws Never.
   */
  revealAccessToken(): string;
  /**
   * The refresh token your function returned with the set, if any.
   * @returns The raw refresh token, or `undefined`.
   * @throws Never.
   */
  revealRefreshToken(): string | undefined;
}

/**
 * Options of {@link customSource}.
 *
 * @example
 * ```ts
 * import { customSource, type CustomSourceOptions } from 'tokenwarden';
 * // The internal gateway wants the raw token in its own header.
 * const options: CustomSourceOptions = { header: 'X-Internal-Token', scheme: null };
 * const source = customSource(mintToken, options);
 * ```
 */
export interface CustomSourceOptions {
  /**
   * The request header that carries the token, e.g. `X-Internal-Token`.
   * @default 'Authorization'
   */
  header?: string | undefined;
  /**
   * The scheme before the token; `null` sends it raw.
   * @default the token type (`Bearer`) for `Authorization`, `null` for any other header
   */
  scheme?: string | null | undefined;
  /**
   * Revokes the held tokens at their issuer, called by `credential.revoke()` and
   * `warden.revokeAll()` (the local copies are wiped whatever it does). It runs under the
   * credential's request timeout; an error it throws is wrapped in `ERR_SOURCE_FAILED`, with your
   * error as `cause`, and reported in the revoke result, so keep tokens out of your error.
   * @default undefined (`revoke()` only wipes the tokens locally and reports `outcome: 'unsupported'`)
   */
  revoke?: ((context: CustomRevokeContext) => Promise<void> | void) | undefined;
}

/**
 * A token source backed by any async function, e.g. an in-house token service. The result is
 * validated like a token response: junk fails with `ERR_SOURCE_FAILED` and a message naming the
 * bad field (never its value), so a bad token is never stored or sent.
 *
 * The function runs under the credential's request timeout (`ERR_TIMEOUT`) and signal
 * (`ERR_ABORTED`). If it throws a {@link TokenWardenError} (for example an {@link OAuthError}
 * with `invalid_grant` to ask for re-authentication) that error passes through unchanged; any
 * other error is wrapped in `ERR_SOURCE_FAILED` with the original as `cause`. That cause is your
 * own error: keep tokens out of its message.
 *
 * @param fn - Returns `{ accessToken, expiresIn? | expiresAt?, refreshToken?, tokenType?, scope? }`.
 * @param options - The header and scheme, when not `Authorization: Bearer`.
 * @returns The token source.
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` when `fn` is not a function or the header is malformed.
 * @example
 * ```ts
 * import { customSource } from 'tokenwarden';
 * const source = customSource(async ({ signal }) => {
 *   const res = await fetch('https://tokens.internal/mint', { method: 'POST', signal });
 *   const { token, ttl } = await res.json();
 *   return { accessToken: token, expiresIn: ttl };
 * });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1 (the fields mirror a token response)
 */
export function customSource(
  fn: CustomSourceFunction,
  options: CustomSourceOptions = {},
): TokenSource {
  return new CustomSource(fn, options);
}

class CustomSource implements TokenSource {
  readonly kind = 'custom' as const;
  declare readonly header?: TokenHeader;
  declare readonly revokeCurrent?: (context: SourceContext) => Promise<readonly RevokedToken[]>;
  readonly #fn: CustomSourceFunction;

  constructor(fn: CustomSourceFunction, options: CustomSourceOptions) {
    if (typeof fn !== 'function') {
      throw invalidArgument('customSource() needs a function that returns a token.');
    }
    if (typeof options !== 'object' || options === null) {
      throw invalidArgument('customSource() options must be an object.');
    }
    this.#fn = fn;
    if (options.header !== undefined || options.scheme !== undefined) {
      this.header = parseHeader(options.header, options.scheme);
    }
    if (options.revoke !== undefined) {
      if (typeof options.revoke !== 'function') {
        throw invalidArgument('revoke must be a function that revokes the tokens at their issuer.');
      }
      const revoke = options.revoke;
      this.revokeCurrent = (context) => revokeTokens(revoke, context);
    }
    Object.freeze(this);
  }

  info(): SourceInfo {
    return { kind: this.kind };
  }

  async obtain(context: SourceContext): Promise<TokenSet> {
    const fail = (message: string, cause?: unknown): TokenWardenError =>
      new TokenWardenError('ERR_SOURCE_FAILED', message, {
        credentialId: context.credentialId,
        cause,
      });
    const fn = this.#fn;
    const result: unknown = await withDeadline(
      { signal: context.signal, timeoutMs: context.timeoutMs, what: 'The custom token source' },
      (signal) =>
        Promise.resolve(
          fn({ signal, credentialId: context.credentialId, current: context.current?.info() }),
        ),
      (error) => fail('The custom token source function threw; see the cause.', error),
    );
    return validateCustomResult(result, context.clock.now(), context, fail);
  }

  toJSON(): Record<string, unknown> {
    return { kind: this.kind, header: this.header };
  }

  [INSPECT](): string {
    return `TokenSource ${JSON.stringify(this.toJSON())}`;
  }
}

/** Calls a custom source's `revoke` callback under the credential's deadline. */
async function revokeTokens(
  revoke: NonNullable<CustomSourceOptions['revoke']>,
  context: SourceContext,
): Promise<readonly RevokedToken[]> {
  const called = await runRevokeCallback(
    context,
    'The custom revoke callback',
    'The tokens were wiped locally but may still be valid at their issuer.',
    (signal, current) =>
      revoke({
        signal,
        credentialId: context.credentialId,
        current: current.info(),
        revealAccessToken: () => current.revealAccessToken(),
        revealRefreshToken: () => current.revealRefreshToken(),
      }),
  );
  if (!called) return [];
  return context.current?.revealRefreshToken() === undefined
    ? ['access_token']
    : ['refresh_token', 'access_token'];
}

function validateCustomResult(
  result: unknown,
  now: number,
  context: SourceContext,
  fail: (message: string) => TokenWardenError,
): TokenSet {
  const bad = (what: string): TokenWardenError =>
    fail(`The custom token source returned an unusable result: ${what}.`);
  if (typeof result !== 'object' || result === null || Array.isArray(result)) {
    throw bad('it is not an object like { accessToken, expiresIn }');
  }
  const value = result as Record<string, unknown>;
  const accessToken = value['accessToken'];
  if (!isTokenValue(accessToken)) {
    throw bad(
      'accessToken is not a non-empty string of visible ASCII characters (no whitespace or control characters)',
    );
  }
  const tokenType = value['tokenType'] ?? 'Bearer';
  if (typeof tokenType !== 'string' || !isHeaderToken(tokenType)) {
    throw bad('tokenType is not an HTTP auth scheme such as "Bearer"');
  }
  const refreshToken = value['refreshToken'];
  if (refreshToken !== undefined && !isTokenValue(refreshToken)) {
    throw bad('refreshToken is not a non-empty string of visible ASCII characters');
  }
  const rawScope = value['scope'];
  const scope = Array.isArray(rawScope)
    ? rawScope.every((item) => isTokenValue(item))
      ? (rawScope as string[])
      : false
    : parseScope(rawScope);
  if (scope === false) {
    throw bad('scope is not a space-delimited string or an array of scope tokens');
  }

  const expiresIn = value['expiresIn'];
  const expiresAtOption = value['expiresAt'];
  if (expiresIn !== undefined && expiresAtOption !== undefined) {
    throw bad('it has both expiresIn and expiresAt; give one');
  }
  let expiresAt: number;
  let expirySource: TokenSetInfo['expirySource'];
  if (expiresIn !== undefined) {
    if (
      typeof expiresIn !== 'number' ||
      !Number.isFinite(expiresIn) ||
      expiresIn <= 0 ||
      expiresIn * 1000 > MAX_LIFETIME_MS
    ) {
      throw bad('expiresIn is not a positive number of seconds of at most ten years');
    }
    expiresAt = now + expiresIn * 1000;
    expirySource = 'expires_in';
  } else if (expiresAtOption !== undefined) {
    const at = parseExpiresAt(expiresAtOption, 'expiresAt', (message) => bad(message));
    if (at === undefined || at <= now || at - now > MAX_LIFETIME_MS) {
      throw bad('expiresAt is not a time in the future within ten years');
    }
    expiresAt = at;
    expirySource = 'explicit';
  } else {
    const fromJwt = jwtExpiry(accessToken, now, context.clock.skewMs);
    expiresAt = fromJwt ?? now + context.defaultLifetimeMs;
    expirySource = fromJwt === undefined ? 'default' : 'jwt';
  }

  return new TokenSet({
    accessToken,
    tokenType,
    issuedAt: now,
    expiresAt,
    expirySource,
    refreshToken,
    scope,
  });
}
