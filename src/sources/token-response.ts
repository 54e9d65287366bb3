import { decodeJwt, decodeProtectedHeader } from 'jose';
import { OAuthError, TokenWardenError, type TokenWardenErrorOptions } from '../errors.js';
import { parseJsonObject } from '../internal/http.js';
import { TokenSet } from '../token.js';

/** The longest lifetime tokenwarden believes: ten years, in milliseconds. */
export const MAX_LIFETIME_MS = 10 * 365.25 * 86_400_000;

/** The longest `error_description` kept from a server, in characters. */
export const MAX_ERROR_DESCRIPTION = 256;

/**
 * Options of {@link parseTokenResponse}.
 *
 * @example
 * ```ts
 * import { parseTokenResponse, type ParseTokenResponseOptions } from 'tokenwarden';
 * const res = await fetch(tokenEndpoint, { method: 'POST', body: form });
 * const options: ParseTokenResponseOptions = {
 *   receivedAt: Date.now(), defaultLifetimeMs: 3_600_000, credentialId: 'billing', response: res,
 * };
 * const set = parseTokenResponse(res.status, await res.text(), options);
 * ```
 */
export interface ParseTokenResponseOptions {
  /** Local time the response arrived, epoch milliseconds; `expires_in` counts from here. */
  readonly receivedAt: number;
  /** Lifetime assumed when the response states none and the token is not a JWT, milliseconds. */
  readonly defaultLifetimeMs: number;
  /**
   * The server-minus-local clock offset, used to convert a JWT `exp` to the local clock.
   * @default 0
   */
  readonly skewMs?: number;
  /**
   * The `token_type` the request expects, compared case-insensitively; `null` accepts any
   * syntactically valid type (for sources that decide later, e.g. DPoP).
   * @default 'Bearer'
   */
  readonly expectedTokenType?: string | null;
  /**
   * The scopes the request asked for; used when the response names none (RFC 6749 §5.1 says the
   * granted scope equals the requested one then).
   * @default undefined (no scope recorded)
   */
  readonly requestedScope?: readonly string[] | undefined;
  /**
   * The credential the response is for, copied into errors.
   * @default undefined (errors name no credential)
   */
  readonly credentialId?: string | undefined;
  /**
   * The response, attached non-enumerably to errors so callers can read e.g. `Retry-After`.
   * @default undefined (errors carry no response)
   */
  readonly response?: Response | undefined;
}

/**
 * Validates an access token response and turns it into a {@link TokenSet}. Pure: no I/O, no
 * clock reads, so it can be property-tested.
 *
 * - Only status 200 with a top-level JSON object succeeds.
 * - Any other status whose body is a JSON object with a string `error` becomes an
 *   {@link OAuthError} (`error`, `error_description` stripped of control characters and capped at
 *   256 characters, `status`); every other non-200 becomes `ERR_HTTP_STATUS`.
 * - `access_token` must be a non-empty string of visible ASCII (no whitespace, no control
 *   characters), `token_type` must equal the expected type case-insensitively.
 * - `expires_in` must be a positive whole number of seconds (a JSON number or a string of digits)
 *   of at most ten years; expiry counts from `receivedAt`. Without it, a JWT access token's
 *   `exp` (skew-corrected) is used when plausible, else `defaultLifetimeMs`.
 * - `refresh_token`, when present, must be a valid token string; `scope` a space-delimited
 *   string. `null` counts as absent for optional members.
 *
 * No token value ever appears in an error message or field.
 *
 * @param status - The HTTP status.
 * @param bodyText - The body as text (already size-capped by the caller).
 * @param options - Receipt time, default lifetime, skew, expected type and requested scope.
 * @returns The validated token set.
 * @throws {@link OAuthError} `ERR_OAUTH_ERROR` for an RFC 6749 §5.2 error body.
 * @throws {@link TokenWardenError} `ERR_HTTP_STATUS` for another non-200 status,
 * `ERR_INVALID_RESPONSE` for a 200 that is not a valid token response. Nothing else is thrown.
 * @example
 * ```ts
 * const set = parseTokenResponse(200, '{"access_token":"abc","token_type":"Bearer","expires_in":3600}', {
 *   receivedAt: Date.now(),
 *   defaultLifetimeMs: 3_600_000,
 * });
 * set.expirySource; // 'expires_in'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1 (successful response)
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2 (error response)
 */
export function parseTokenResponse(
  status: number,
  bodyText: string,
  options: ParseTokenResponseOptions,
): TokenSet {
  const errorOptions: TokenWardenErrorOptions = { status };
  if (options.credentialId !== undefined) errorOptions.credentialId = options.credentialId;
  if (options.response !== undefined) errorOptions.response = options.response;
  const invalid = (what: string): TokenWardenError =>
    new TokenWardenError(
      'ERR_INVALID_RESPONSE',
      `The token response is invalid: ${what}. Check the token endpoint and grant configuration.`,
      errorOptions,
    );

  const json = typeof bodyText === 'string' ? parseJsonObject(bodyText) : undefined;
  if (status !== 200) {
    throw (
      (json && oauthErrorFromJson(json, errorOptions)) ??
      new TokenWardenError(
        'ERR_HTTP_STATUS',
        `The token endpoint answered HTTP ${safeStatus(status)} without an OAuth error body. Check the endpoint URL; retry later if it is a server error.`,
        errorOptions,
      )
    );
  }
  if (json === undefined) throw invalid('the body is not a JSON object');

  const accessToken = json['access_token'];
  if (accessToken === undefined || accessToken === null) {
    throw invalid('access_token is missing');
  }
  if (!isTokenValue(accessToken)) {
    throw invalid(
      'access_token is not a non-empty string of visible ASCII characters (no whitespace or control characters)',
    );
  }

  const tokenType = json['token_type'];
  if (typeof tokenType !== 'string' || !isHeaderToken(tokenType)) {
    throw invalid('token_type is missing or malformed');
  }
  const expected = options.expectedTokenType === undefined ? 'Bearer' : options.expectedTokenType;
  if (expected !== null && tokenType.toLowerCase() !== expected.toLowerCase()) {
    throw invalid(`token_type is not ${expected}`);
  }

  const expiresIn = json['expires_in'];
  let expiresAt: number;
  let expirySource: 'expires_in' | 'jwt' | 'default';
  if (expiresIn !== undefined && expiresIn !== null) {
    const seconds = parseExpiresIn(expiresIn);
    if (seconds === undefined) {
      throw invalid('expires_in is not a positive whole number of seconds of at most ten years');
    }
    expiresAt = options.receivedAt + seconds * 1000;
    expirySource = 'expires_in';
  } else {
    const fromJwt = jwtExpiry(accessToken, options.receivedAt, options.skewMs ?? 0);
    if (fromJwt !== undefined) {
      expiresAt = fromJwt;
      expirySource = 'jwt';
    } else {
      expiresAt = options.receivedAt + options.defaultLifetimeMs;
      expirySource = 'default';
    }
  }

  const refreshToken = json['refresh_token'];
  if (refreshToken !== undefined && refreshToken !== null && !isTokenValue(refreshToken)) {
    throw invalid('refresh_token is not a non-empty string of visible ASCII characters');
  }

  const scope = parseScope(json['scope']);
  if (scope === false) throw invalid('scope is not a space-delimited string of scope tokens');

  const idToken = json['id_token'];
  return new TokenSet({
    accessToken,
    tokenType,
    expiresAt,
    issuedAt: options.receivedAt,
    refreshToken: typeof refreshToken === 'string' ? refreshToken : undefined,
    // The ID token is not used for API calls; a malformed one is dropped rather than fatal.
    idToken: isTokenValue(idToken) ? idToken : undefined,
    scope: scope ?? options.requestedScope,
    expirySource,
  });
}

/**
 * Reads an RFC 6749 §5.2 error body. Returns `undefined` when the object has no usable string
 * `error`. The description is stripped of control and bidi characters and capped, because it is
 * shown in messages and logs.
 *
 * @param json - A parsed top-level JSON object.
 * @param options - Status, credential id and response for the error.
 * @returns The {@link OAuthError}, or `undefined`.
 * @example
 * ```ts
 * const error = oauthErrorFromJson({ error: 'invalid_grant' }, { status: 400 });
 * error?.error; // 'invalid_grant'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export function oauthErrorFromJson(
  json: Record<string, unknown>,
  options: TokenWardenErrorOptions,
): OAuthError | undefined {
  const code = json['error'];
  if (typeof code !== 'string') return undefined;
  const error = sanitizeText(code, 128);
  if (error === '') return undefined;
  const description = json['error_description'];
  const text =
    typeof description === 'string'
      ? sanitizeText(description, MAX_ERROR_DESCRIPTION) || undefined
      : undefined;
  return new OAuthError(error, text, options);
}

/**
 * Removes control characters (C0, DEL, C1) and bidirectional overrides, which could forge or
 * disguise log lines, and caps the length in code points.
 *
 * @param text - Text from a server.
 * @param max - The most code points kept.
 * @returns The cleaned text, trimmed.
 * @example
 * ```ts
 * sanitizeText('bad\r\ngrant', 256); // 'badgrant'
 * ```
 */
export function sanitizeText(text: string, max: number): string {
  let kept = '';
  let count = 0;
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if (isControlCode(code) || BIDI_CONTROLS.has(code)) continue;
    if (count === max) break;
    kept += char;
    count += 1;
  }
  return kept.trim();
}

/**
 * Whether a string contains a control character (C0, DEL or C1), which could split a header or
 * forge a log line.
 *
 * @param text - The string.
 * @returns `true` when one is present.
 * @example
 * ```ts
 * hasControlChars('client\r\nid'); // true
 * ```
 */
export function hasControlChars(text: string): boolean {
  for (let index = 0; index < text.length; index += 1) {
    if (isControlCode(text.charCodeAt(index))) return true;
  }
  return false;
}

// LRM, RLM, and the embedding, override and isolate controls of Unicode bidi.
const BIDI_CONTROLS = new Set([
  0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069,
]);

function isControlCode(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

/**
 * Whether a value can be used as a token in a header: a non-empty string of visible ASCII
 * (`%x21-7E`), so it can neither split a header nor hide in whitespace.
 *
 * @param value - Anything.
 * @returns `true` for a usable token string.
 * @example
 * ```ts
 * isTokenValue('abc.def'); // true
 * isTokenValue('abc\r\nX-Evil: 1'); // false
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#appendix-A.12
 */
export function isTokenValue(value: unknown): value is string {
  return typeof value === 'string' && /^[\x21-\x7e]+$/.test(value);
}

/**
 * Whether a string is an HTTP token (a header name or an auth scheme).
 *
 * @param value - The candidate.
 * @returns `true` when it only has RFC 9110 `tchar`s and is not empty.
 * @example
 * ```ts
 * isHeaderToken('X-API-Key'); // true
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5.6.2
 */
export function isHeaderToken(value: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value);
}

/**
 * The expiry of a JWT access token from its `exp` claim, converted to the local clock. Used only
 * as a fallback when a response has no `expires_in` (access tokens are opaque to clients). The
 * token is not verified: unsigned (`alg: none`) tokens, an `exp` already past, and lifetimes
 * beyond ten years are ignored.
 *
 * @param token - The access token.
 * @param receivedAt - Local receipt time, epoch milliseconds.
 * @param skewMs - Server-minus-local clock offset.
 * @returns Expiry in local epoch milliseconds, or `undefined`.
 * @example
 * ```ts
 * jwtExpiry(accessToken, Date.now(), clock.skewMs) ?? Date.now() + defaultLifetimeMs;
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7519#section-4.1.4
 */
export function jwtExpiry(token: string, receivedAt: number, skewMs: number): number | undefined {
  if (token.split('.').length !== 3) return undefined;
  try {
    const header = decodeProtectedHeader(token);
    if (typeof header.alg !== 'string' || header.alg.toLowerCase() === 'none') return undefined;
    const { exp } = decodeJwt(token);
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return undefined;
    const expiresAt = exp * 1000 - skewMs;
    if (expiresAt <= receivedAt || expiresAt - receivedAt > MAX_LIFETIME_MS) return undefined;
    return expiresAt;
  } catch {
    return undefined;
  }
}

/**
 * Parses the space-delimited `scope` member of a token response.
 *
 * @param value - The member's value.
 * @returns The scope tokens, `undefined` when absent (or `null`), `false` when malformed.
 * @example
 * ```ts
 * parseScope('read  write'); // ['read', 'write']
 * parseScope(42);            // false
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.3
 * @internal
 */
export function parseScope(value: unknown): string[] | undefined | false {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return false;
  const tokens = value.split(' ').filter((token) => token !== '');
  return tokens.every((token) => /^[\x21-\x7e]+$/.test(token)) ? tokens : false;
}

function parseExpiresIn(value: unknown): number | undefined {
  let seconds: number;
  if (typeof value === 'number') seconds = value;
  else if (typeof value === 'string' && /^\d{1,15}$/.test(value)) seconds = Number(value);
  else return undefined;
  if (!Number.isSafeInteger(seconds) || seconds <= 0 || seconds * 1000 > MAX_LIFETIME_MS) {
    return undefined;
  }
  return seconds;
}

function safeStatus(status: number): string {
  return Number.isInteger(status) ? String(status) : 'with an unusable status';
}
