import type { TokenSet } from '../token.js';

/**
 * The kinds of token source tokenwarden ships.
 *
 * @example
 * ```ts
 * import type { SourceKind } from 'tokenwarden';
 * const kind: SourceKind = billing.status().source.kind;
 * if (kind === 'api_key') console.warn('billing still uses a static API key');
 * ```
 */
export type SourceKind =
  | 'client_credentials'
  | 'refresh_token'
  | 'authorization_code'
  | 'device_code'
  | 'api_key'
  | 'custom';

/**
 * Where a credential puts its token on a request.
 *
 * @example
 * ```ts
 * import { apiKey, type TokenHeader } from 'tokenwarden';
 * const header: TokenHeader | undefined = apiKey({ key, header: 'X-API-Key' }).header;
 * // { name: 'X-API-Key', scheme: null }: the raw key, without a scheme
 * ```
 */
export interface TokenHeader {
  /** Header name, e.g. `Authorization` or `X-API-Key`. */
  readonly name: string;
  /**
   * The scheme written before the token (`Bearer`, `DPoP`), or `null` to send the raw token.
   * When `undefined`, the token set's `tokenType` is used.
   */
  readonly scheme?: string | null;
}

/**
 * The clock a source uses for expiry decisions: the local clock plus the offset learned from
 * servers' `Date` headers.
 *
 * @example
 * ```ts
 * import type { SkewClock } from 'tokenwarden';
 * // iat and exp on the server's clock, so a skewed host does not mint assertions it rejects.
 * function assertionTimes(clock: SkewClock): { iat: number; exp: number } {
 *   const iat = Math.floor((clock.now() + clock.skewMs) / 1000);
 *   return { iat, exp: iat + 60 };
 * }
 * ```
 */
export interface SkewClock {
  /**
   * Local time, epoch milliseconds.
   * @throws Never.
   */
  now(): number;
  /** The learned offset, server minus local, in milliseconds (0 until learned). */
  readonly skewMs: number;
  /**
   * Feeds one observation: a response's `Date` header and the local time it arrived.
   * @param dateHeader - The response's `Date` header, or `null`.
   * @param receivedAt - The local time the response arrived, epoch milliseconds.
   * @throws Never.
   */
  observe(dateHeader: string | null, receivedAt: number): void;
}

/**
 * What a credential hands its source on every token request.
 *
 * @example
 * ```ts
 * import { clientCredentials, type SourceContext, type TokenSource } from 'tokenwarden';
 * const inner = clientCredentials({ issuer, clientId: 'svc', clientSecret });
 * const source: TokenSource = {
 *   kind: inner.kind,
 *   info: () => inner.info(),
 *   obtain: (context: SourceContext) => traced(context.credentialId, () => inner.obtain(context)),
 * };
 * ```
 */
export interface SourceContext {
  /** The credential's id (for error messages and events). */
  readonly credentialId: string;
  /** The current token set, if any (the refresh-token source takes its refresh token from here). */
  readonly current: TokenSet | undefined;
  /** Aborted when the credential is closed or the caller gives up. */
  readonly signal: AbortSignal;
  /** The fetch used for tokenwarden's own requests. */
  readonly fetch: typeof fetch;
  /** Timeout for one token, discovery or revocation request, in milliseconds. */
  readonly timeoutMs: number;
  /** Largest response body tokenwarden reads, in bytes. */
  readonly maxResponseBytes: number;
  /** Lifetime assumed when a response states none, in milliseconds. */
  readonly defaultLifetimeMs: number;
  /** The skew-aware clock. */
  readonly clock: SkewClock;
  /**
   * Present when the credential is DPoP-bound (RFC 9449): token requests then carry a proof of
   * its key and must be answered with `token_type` `DPoP`.
   * @default undefined (bearer tokens)
   */
  readonly dpop?: DpopContext | undefined;
}

/**
 * What a DPoP-bound credential gives its source for token requests (see
 * {@link SourceContext.dpop}). `OAuthClient` uses it for every grant; a custom source that calls
 * a DPoP-aware token service can too.
 *
 * @example
 * ```ts
 * import type { DpopContext, SourceContext } from 'tokenwarden';
 * async function tokenHeaders(context: SourceContext, endpoint: URL): Promise<Record<string, string>> {
 *   const dpop: DpopContext | undefined = context.dpop;
 *   return dpop ? { DPoP: await dpop.proof('authorization', 'POST', endpoint) } : {};
 * }
 * ```
 */
export interface DpopContext {
  /**
   * The RFC 7638 SHA-256 thumbprint of the credential's public key, base64url (for example the
   * `dpop_jkt` of an authorization request). Creates the key when the credential has none yet.
   * @throws Never with a tokenwarden error: creating the key can only fail with the
   * runtime's own WebCrypto error.
   */
  thumbprint(): Promise<string>;
  /** Whether a `Bearer` answer to a DPoP token request is accepted (a downgrade). */
  readonly allowBearer: boolean;
  /**
   * A fresh proof JWT for one request: a new `jti` each call, `htm` the method, `htu` the URL
   * without query or fragment, `iat` on the server's clock, the origin's latest nonce, and
   * `ath` when `accessToken` is given (resource requests only).
   * @param server - `'authorization'` for token requests, `'resource'` for API requests.
   * @param method - The HTTP method.
   * @param url - The request URL.
   * @param accessToken - The access token the request carries (resource requests).
   * @returns The compact JWS for the `DPoP` header.
   * @throws Never with a tokenwarden error: creating the key can only fail with the
   * runtime's own WebCrypto error.
   */
  proof(
    server: 'authorization' | 'resource',
    method: string,
    url: URL,
    accessToken?: string,
  ): Promise<string>;
  /**
   * The nonce the next proof for `url`'s origin carries: the latest one that kind of server
   * gave, or `undefined`.
   * @param server - The kind of server.
   * @param url - The request URL.
   * @returns The nonce, or `undefined`.
   * @throws Never.
   */
  nonce(server: 'authorization' | 'resource', url: URL): string | undefined;
  /**
   * Adopts a response's `DPoP-Nonce` header for later proofs to that origin.
   * @param server - The kind of server that answered.
   * @param url - The request URL.
   * @param headers - The response headers.
   * @returns Whether the nonce changed.
   * @throws Never.
   */
  learn(server: 'authorization' | 'resource', url: URL, headers: Headers): boolean;
}

/**
 * Non-secret facts about a source, for inventories and events.
 *
 * @example
 * ```ts
 * import type { SourceInfo } from 'tokenwarden';
 * for (const credential of warden.credentials()) {
 *   const { kind, issuer, clientId }: SourceInfo = credential.status().source;
 *   console.log(credential.id, kind, issuer ?? '-', clientId ?? '-');
 * }
 * ```
 */
export interface SourceInfo {
  /** The source kind. */
  readonly kind: SourceKind;
  /** The issuer or token endpoint, when OAuth. */
  readonly issuer?: string;
  /** The OAuth client id, when OAuth. */
  readonly clientId?: string;
  /** The scopes requested. */
  readonly scope?: readonly string[];
}

/**
 * A token source: something that can obtain a token set. Built by {@link clientCredentials},
 * {@link refreshToken}, {@link apiKey} or {@link customSource}; credentials drive it.
 *
 * @example
 * ```ts
 * import { customSource } from 'tokenwarden';
 * const source = customSource(async () => ({ accessToken: await mintToken(), expiresIn: 300 }));
 * warden.register('internal', { source, origins: ['https://internal.example.com'] });
 * ```
 */
export interface TokenSource {
  /** The source kind. */
  readonly kind: SourceKind;
  /** Where the token goes. `Authorization` with the token type as scheme when omitted. */
  readonly header?: TokenHeader;
  /**
   * Non-secret description for inventories.
   * @throws Never.
   */
  info(): SourceInfo;
  /**
   * Obtains a fresh token set (a first token, a refresh, a rotation).
   * @param context - Current tokens, signal, fetch and limits from the credential.
   * @returns A validated token set.
   * @throws {@link TokenWardenError} with the code of what failed. The built-in sources use
   * `ERR_OAUTH_ERROR`, `ERR_REAUTH_REQUIRED`, `ERR_NETWORK`, `ERR_TIMEOUT`, `ERR_HTTP_STATUS`,
   * `ERR_INVALID_RESPONSE`, `ERR_RESPONSE_TOO_LARGE`, `ERR_ISSUER_MISMATCH`, `ERR_ABORTED` and
   * `ERR_SOURCE_FAILED`; the credential reports anything else a source throws as
   * `ERR_SOURCE_FAILED`.
   */
  obtain(context: SourceContext): Promise<TokenSet>;
  /**
   * Optional: revokes the held token at its issuer by a means other than RFC 7009 (OAuth sources
   * revoke through their revocation endpoint instead). {@link apiKey} implements it when given a
   * `revoke` callback. `context.current` is the set to revoke.
   * @param context - The credential's context, with the set to revoke as `current`.
   * @returns The kinds of token revoked.
   * @throws {@link TokenWardenError} `ERR_SOURCE_FAILED` when the issuer could not revoke it.
   */
  revokeCurrent?(context: SourceContext): Promise<readonly RevokedToken[]>;
  /**
   * Optional: called once by the credential the source is registered with, handing it a
   * {@link SourceBinding}. Interactive sources (a browser sign-in) use it to store the token set
   * a user's sign-in produced, outside any refresh. A source that can serve one credential only
   * throws {@link InvalidArgumentError} when bound a second time.
   * @param binding - The credential's side of the binding.
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` when a source that serves one
   * credential is bound a second time.
   */
  attach?(binding: SourceBinding): void;
  /**
   * Whether obtaining a first token set may wait for a user (the device flow's sign-in, which
   * can take minutes). The credential then runs that `obtain()` outside its refresh lock, whose
   * TTL would cut it short, stores the result under the lock afterwards, and never retries a
   * failed sign-in in the background (that would prompt the user unasked). Refreshes with a
   * refresh token run as for any source.
   * @default false
   */
  readonly interactive?: boolean;
}

/**
 * What a credential offers the source it drives (see {@link TokenSource.attach}): a way to
 * install a token set the source obtained on its own, e.g. from a sign-in redirect, with the
 * same guarantees as a refresh (stored through the credential's store under its refresh lock,
 * announced to other tabs and processes, `refresh` event with reason `initial`).
 *
 * @example
 * ```ts
 * import type { SourceBinding, TokenSource } from 'tokenwarden';
 * let binding: SourceBinding | undefined;
 * const source: TokenSource = {
 *   kind: 'custom',
 *   info: () => ({ kind: 'custom' }),
 *   obtain: async () => {
 *     throw new Error('sign in first');
 *   },
 *   attach: (b) => {
 *     binding = b;
 *   },
 * };
 * // Later, once a sign-in produced `tokens`:
 * await binding?.install(tokens);
 * ```
 */
export interface SourceBinding {
  /** The credential's id. */
  readonly credentialId: string;
  /**
   * The context for a token request the source makes on its own (a code exchange): the
   * credential's fetch, timeout, limits and clock, and its current token set.
   * @param signal - Aborts the request; the credential's own close aborts it as well.
   * @throws Never.
   */
  context(signal?: AbortSignal | null): SourceContext;
  /**
   * Stores `tokens` as the credential's token set and starts using it: replaces any set held,
   * clears the `reauth-required` state, emits `refresh` (reason `initial`).
   * @param tokens - A validated token set.
   * @throws {@link TokenWardenError} `ERR_CLOSED` when the credential is closed,
   * `ERR_INVALID_ARGUMENT` when `tokens` is not a {@link TokenSet}, `ERR_STORE_CONFLICT` when
   * other writers kept replacing the stored set, or the store's code when it fails
   * (`ERR_LOCK_TIMEOUT`, `ERR_STORE_UNAVAILABLE`, `ERR_KEY_UNAVAILABLE`).
   */
  install(tokens: TokenSet): Promise<void>;
}

/**
 * A kind of token that a revocation names: the OAuth token types of RFC 7009, or an API key.
 *
 * @example
 * ```ts
 * import type { RevokedToken } from 'tokenwarden';
 * const { tokens } = await billing.revoke();
 * const gone: readonly RevokedToken[] = tokens; // e.g. ['refresh_token', 'access_token']
 * ```
 */
export type RevokedToken = 'refresh_token' | 'access_token' | 'api_key';
