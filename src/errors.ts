import { INSPECT } from './internal/redact.js';

/**
 * Every stable error code tokenwarden uses. Switch on `error.code`; codes never change meaning.
 *
 * @example
 * ```ts
 * import { isTokenWardenError } from 'tokenwarden';
 * try {
 *   await billing.fetch('https://billing.example.com/v1/ping');
 * } catch (error) {
 *   if (isTokenWardenError(error) && error.code === 'ERR_REAUTH_REQUIRED') showSignIn();
 * }
 * ```
 */
export type TokenWardenErrorCode =
  /** An argument passed to tokenwarden is invalid (a `TypeError`). */
  | 'ERR_INVALID_ARGUMENT'
  /** The authorization server answered with an RFC 6749 §5.2 error body. */
  | 'ERR_OAUTH_ERROR'
  /** A token, discovery or revocation response was not what the protocol requires. */
  | 'ERR_INVALID_RESPONSE'
  /** A response body exceeded the size tokenwarden is willing to read. */
  | 'ERR_RESPONSE_TOO_LARGE'
  /**
   * Discovery metadata named another issuer than the one configured (RFC 8414 §3.3), or an
   * authorization response's `iss` parameter is wrong or missing (RFC 9207).
   */
  | 'ERR_ISSUER_MISMATCH'
  /**
   * An authorization response's `state` matches no sign-in this browser tab started: forged,
   * replayed, or its round trip was already completed or abandoned.
   */
  | 'ERR_STATE_MISMATCH'
  /**
   * A sign-in redirect came back with an `error` other than `access_denied` (`login_required`,
   * `consent_required`, `server_error`, ...): see {@link AuthorizationError}.
   */
  | 'ERR_AUTHORIZATION_FAILED'
  /** An ID token failed verification (signature, algorithm, `iss`, `aud`, `exp`, `iat`, `nonce`). */
  | 'ERR_ID_TOKEN_INVALID'
  /** The server could not be reached (DNS, connection refused, reset). */
  | 'ERR_NETWORK'
  /** The server did not answer within the configured timeout. */
  | 'ERR_TIMEOUT'
  /** An HTTP status that tokenwarden cannot use (e.g. 5xx without an OAuth error body). */
  | 'ERR_HTTP_STATUS'
  /** The credential's refresh token or client was rejected; the app must sign in again. */
  | 'ERR_REAUTH_REQUIRED'
  /** The user or the authorization server declined a sign-in (OAuth `access_denied`). */
  | 'ERR_ACCESS_DENIED'
  /** A device-flow sign-in code expired before the user approved it (RFC 8628 `expired_token`). */
  | 'ERR_DEVICE_CODE_EXPIRED'
  /** A request was stopped because its origin is not on the credential's allow-list. */
  | 'ERR_ORIGIN_NOT_ALLOWED'
  /** A request was stopped because it would send a token over plain HTTP to a non-loopback host. */
  | 'ERR_INSECURE_TRANSPORT'
  /** A request was stopped because its URL contains the token. */
  | 'ERR_TOKEN_IN_URL'
  /** A redirect could not be followed safely, or too many redirects. */
  | 'ERR_REDIRECT'
  /** The credential or warden was closed. */
  | 'ERR_CLOSED'
  /** An operation was aborted by the caller's `AbortSignal`. */
  | 'ERR_ABORTED'
  /** A feature this call needs is missing in this runtime. */
  | 'ERR_UNSUPPORTED'
  /** A token source returned nothing usable (e.g. a `customSource` function threw or returned junk). */
  | 'ERR_SOURCE_FAILED'
  /** Too many forced refreshes in a short time: the loop guard stopped another one. */
  | 'ERR_REFRESH_LOOP'
  /** A store's backing data could not be parsed; it was discarded. */
  | 'ERR_STORE_CORRUPT'
  /** A versioned write lost a compare-and-swap: a newer record was written meanwhile. */
  | 'ERR_STORE_CONFLICT'
  /** A store lock could not be taken in time. */
  | 'ERR_LOCK_TIMEOUT'
  /** A store could not be used (I/O error, missing platform feature, locked keychain). */
  | 'ERR_STORE_UNAVAILABLE'
  /** A store's encryption key is missing, malformed or unusable. */
  | 'ERR_KEY_UNAVAILABLE';

/**
 * Options accepted by the {@link TokenWardenError} constructor.
 *
 * @example
 * ```ts
 * import { customSource, TokenWardenError, type TokenWardenErrorOptions } from 'tokenwarden';
 * const source = customSource(async ({ credentialId, signal }) => {
 *   const res = await fetch('https://tokens.internal/mint', { method: 'POST', signal });
 *   const options: TokenWardenErrorOptions = { status: res.status, credentialId, response: res };
 *   if (!res.ok) throw new TokenWardenError('ERR_HTTP_STATUS', 'The token service failed.', options);
 *   return { accessToken: (await res.json()).token };
 * });
 * ```
 */
export interface TokenWardenErrorOptions {
  /**
   * The underlying error. It must not contain a secret; tokenwarden only passes sanitised causes.
   * @default undefined (no `cause`)
   */
  cause?: unknown;
  /**
   * The HTTP status of the response that caused the error, if any.
   * @default undefined (no `status`)
   */
  status?: number;
  /**
   * The credential the error concerns, if any.
   * @default undefined (no `credentialId`)
   */
  credentialId?: string;
  /**
   * The response that caused the error; attached non-enumerably and never serialised.
   * @default undefined (no `response`)
   */
  response?: Response;
}

const BRAND = Symbol.for('tokenwarden.error');

/**
 * The base class of every error tokenwarden throws. Messages say what to do next; no field
 * ever contains a token, secret, assertion or proof.
 *
 * @example
 * ```ts
 * import { TokenWardenError } from 'tokenwarden';
 * try {
 *   await credential.getToken();
 * } catch (error) {
 *   if (error instanceof TokenWardenError) console.error(error.code, error.message);
 * }
 * ```
 */
export class TokenWardenError extends Error {
  /** The class name, stable across minification. */
  override name: string = 'TokenWardenError';
  /** The stable code of this failure. */
  readonly code: TokenWardenErrorCode;
  /** The HTTP status of the response that caused the error, if any. */
  readonly status?: number;
  /** The credential the error concerns, if any. */
  readonly credentialId?: string;
  /** The response that caused the error (non-enumerable; its body has been consumed). */
  declare readonly response?: Response;

  /**
   * @param code - The stable error code.
   * @param message - A human-readable message; must never contain a secret.
   * @param options - Cause, status, credential id and response.
   * @throws Never.
   */
  constructor(code: TokenWardenErrorCode, message: string, options: TokenWardenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
    if (options.credentialId !== undefined) this.credentialId = options.credentialId;
    Object.defineProperty(this, 'response', {
      value: options.response,
      enumerable: false,
      writable: false,
      configurable: false,
    });
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
  }

  /**
   * A JSON form with the code, message and status only.
   * @throws Never.
   */
  toJSON(): Record<string, unknown> {
    const json: Record<string, unknown> = {
      name: this.name,
      code: this.code,
      message: this.message,
    };
    if (this.status !== undefined) json['status'] = this.status;
    if (this.credentialId !== undefined) json['credentialId'] = this.credentialId;
    return json;
  }

  /** @internal */
  [INSPECT](): string {
    return this.stack ?? `${this.name} [${this.code}]: ${this.message}`;
  }
}

/**
 * The authorization server answered a token, discovery or revocation request with an
 * RFC 6749 §5.2 error body (`{ "error": "invalid_grant", ... }`).
 *
 * @example
 * ```ts
 * import { OAuthError } from 'tokenwarden';
 * try {
 *   await credential.getToken({ forceRefresh: true });
 * } catch (error) {
 *   if (error instanceof OAuthError && error.error === 'invalid_scope') fixScopes();
 * }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export class OAuthError extends TokenWardenError {
  /** The class name, stable across minification. */
  override name = 'OAuthError' as const;
  /** The `error` code the server returned, e.g. `invalid_grant`. */
  readonly error: string;
  /** The server's `error_description`, capped at 256 characters, if any. */
  readonly errorDescription?: string;

  /**
   * @param error - The OAuth `error` code.
   * @param errorDescription - The server's description (already length-capped).
   * @param options - Status, credential id, response.
   * @throws Never.
   */
  constructor(
    error: string,
    errorDescription: string | undefined,
    options: TokenWardenErrorOptions = {},
  ) {
    super(
      'ERR_OAUTH_ERROR',
      `The authorization server answered "${error}"${errorDescription ? `: ${errorDescription}` : ''}. Check the client configuration, grant and scopes.`,
      options,
    );
    this.error = error;
    if (errorDescription !== undefined) this.errorDescription = errorDescription;
  }

  override toJSON(): Record<string, unknown> {
    const json = super.toJSON();
    json['error'] = this.error;
    if (this.errorDescription !== undefined) json['errorDescription'] = this.errorDescription;
    return json;
  }
}

/**
 * The authorization server answered an authorization request with an error on the redirect back
 * to the app (RFC 6749 §4.1.2.1): the user declined (`access_denied`), a silent sign-in needs the
 * user (`login_required`, `consent_required`, `interaction_required`), or the server failed.
 * Code `ERR_ACCESS_DENIED` for `access_denied` (as in the device flow), `ERR_AUTHORIZATION_FAILED`
 * for every other `error`.
 *
 * @example
 * ```ts
 * import { AuthorizationError } from 'tokenwarden';
 * try {
 *   await signIn.handleRedirect();
 * } catch (error) {
 *   if (error instanceof AuthorizationError && error.code === 'ERR_ACCESS_DENIED') showWhySignInIsNeeded();
 *   else if (error instanceof AuthorizationError && error.error === 'login_required') await signIn.login();
 * }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 */
export class AuthorizationError extends TokenWardenError {
  /** The class name, stable across minification. */
  override name = 'AuthorizationError' as const;
  /** The `error` code of the redirect, e.g. `access_denied` (control characters removed). */
  readonly error: string;
  /** The server's `error_description`, capped at 256 characters, if any. */
  readonly errorDescription?: string;

  /**
   * @param error - The OAuth `error` code (already sanitised).
   * @param errorDescription - The server's description (already sanitised and capped).
   * @param options - Credential id.
   * @throws Never.
   */
  constructor(
    error: string,
    errorDescription: string | undefined,
    options: TokenWardenErrorOptions = {},
  ) {
    super(
      error === 'access_denied' ? 'ERR_ACCESS_DENIED' : 'ERR_AUTHORIZATION_FAILED',
      `The authorization server did not authorize the sign-in: "${error}"${errorDescription ? `: ${errorDescription}` : ''}. Offer the user to sign in again.`,
      options,
    );
    this.error = error;
    if (errorDescription !== undefined) this.errorDescription = errorDescription;
  }

  override toJSON(): Record<string, unknown> {
    const json = super.toJSON();
    json['error'] = this.error;
    if (this.errorDescription !== undefined) json['errorDescription'] = this.errorDescription;
    return json;
  }
}

/**
 * The reasons a request can be blocked by a credential's policy.
 *
 * @example
 * ```ts
 * import type { BlockReason } from 'tokenwarden';
 * const critical: readonly BlockReason[] = ['token-in-url', 'insecure-transport'];
 * warden.on('blocked', ({ id, reason, url }) => {
 *   if (critical.includes(reason)) alertSecurityTeam(id, url);
 * });
 * ```
 */
export type BlockReason = 'origin-not-allowed' | 'insecure-transport' | 'token-in-url' | 'redirect';

/**
 * A request was stopped before any token was attached: foreign origin, plain HTTP, a token
 * in the URL, or an unsafe redirect. A `blocked` event is emitted too.
 *
 * @example
 * ```ts
 * import { BlockedRequestError } from 'tokenwarden';
 * try {
 *   await billing.fetch('https://evil.example.net/steal');
 * } catch (error) {
 *   if (error instanceof BlockedRequestError) console.warn(error.reason); // 'origin-not-allowed'
 * }
 * ```
 */
export class BlockedRequestError extends TokenWardenError {
  /** The class name, stable across minification. */
  override name = 'BlockedRequestError' as const;
  /** Why the request was blocked. */
  readonly reason: BlockReason;
  /** The request URL without query or fragment (never the token). */
  readonly url: string;

  /**
   * @param code - One of the policy codes.
   * @param reason - Why the request was blocked.
   * @param url - The sanitised URL (no query, no fragment, no userinfo).
   * @param message - What happened and what to do.
   * @param options - Credential id.
   * @throws Never.
   */
  constructor(
    code: TokenWardenErrorCode,
    reason: BlockReason,
    url: string,
    message: string,
    options: TokenWardenErrorOptions = {},
  ) {
    super(code, message, options);
    this.reason = reason;
    this.url = url;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), reason: this.reason, url: this.url };
  }
}

/**
 * The credential cannot obtain tokens any more (its refresh token or client was rejected with
 * `invalid_grant`, `invalid_client` or `unauthorized_client`). Requests fail fast with this
 * error, without contacting the token endpoint, until the app supplies new credentials.
 *
 * @example
 * ```ts
 * import { ReauthRequiredError } from 'tokenwarden';
 * warden.on('reauth-required', ({ id }) => showSignIn(id));
 * try { await api.get('me'); } catch (e) { if (e instanceof ReauthRequiredError) showSignIn(); }
 * ```
 */
export class ReauthRequiredError extends TokenWardenError {
  /** The class name, stable across minification. */
  override name = 'ReauthRequiredError' as const;

  /**
   * @param credentialId - The credential that needs re-authentication.
   * @param cause - The error that moved it to this state.
   * @throws Never.
   */
  constructor(credentialId: string, cause?: unknown) {
    super(
      'ERR_REAUTH_REQUIRED',
      `Credential "${credentialId}" needs re-authentication: its grant was rejected or the user signed out. Sign the user in again (login() of a sign-in source), or supply new credentials with credential.reauthenticate(source).`,
      { credentialId, cause },
    );
  }
}

/**
 * Tells whether a value is a tokenwarden error, across realms and duplicated package copies
 * (where `instanceof` would fail).
 *
 * @param value - Anything caught.
 * @returns `true` when `value` is a {@link TokenWardenError}.
 * @throws Never.
 * @example
 * ```ts
 * import { isTokenWardenError } from 'tokenwarden';
 * try { await credential.getToken(); } catch (e) { if (isTokenWardenError(e)) console.log(e.code); }
 * ```
 */
export function isTokenWardenError(value: unknown): value is TokenWardenError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true
  );
}

/**
 * An argument or option passed to tokenwarden is invalid. Thrown synchronously by factories
 * and `register()`, so misconfiguration surfaces at start-up rather than at the first request.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError, clientCredentials } from 'tokenwarden';
 * try {
 *   clientCredentials({ clientId: '' });
 * } catch (error) {
 *   if (error instanceof InvalidArgumentError) console.error(error.message);
 * }
 * ```
 */
export class InvalidArgumentError extends TokenWardenError {
  /** The class name, stable across minification. */
  override name = 'InvalidArgumentError' as const;

  /**
   * @param message - What is wrong and how to fix it; never contains a secret.
   * @throws Never.
   */
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message);
  }
}

/** @internal */
export function invalidArgument(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message);
}
