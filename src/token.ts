import { INSPECT, REDACTED } from './internal/redact.js';

/**
 * The non-secret facts of a token set, safe to log, store in metadata and show in inventories.
 *
 * @example
 * ```ts
 * import type { TokenSetInfo } from 'tokenwarden';
 * const stored = await store.get('billing');
 * const info: TokenSetInfo | undefined = stored?.info();
 * console.log(info); // { tokenType: 'Bearer', expiresAt: ..., hasRefreshToken: true, ... }
 * ```
 */
export interface TokenSetInfo {
  /** The token type the server returned, e.g. `Bearer` (as sent, case preserved). */
  readonly tokenType: string;
  /** When the access token expires, in epoch milliseconds on the local clock. */
  readonly expiresAt: number;
  /** When the token set was received, in epoch milliseconds on the local clock. */
  readonly issuedAt: number;
  /** The scopes granted, when the server said (or the scopes requested, when it did not). */
  readonly scope?: readonly string[];
  /** Whether the set carries a refresh token. */
  readonly hasRefreshToken: boolean;
  /** Where the expiry came from: `expires_in`, the JWT `exp` claim, or the default lifetime. */
  readonly expirySource: 'expires_in' | 'jwt' | 'default' | 'explicit';
}

/**
 * The fields needed to build a {@link TokenSet}.
 *
 * @example
 * ```ts
 * import { TokenSet, type TokenSetInit } from 'tokenwarden';
 * const now = Date.now();
 * const init: TokenSetInit = {
 *   accessToken: token, issuedAt: now, expiresAt: now + 15 * 60_000, scope: ['reports:read'],
 * };
 * const set = new TokenSet(init);
 * ```
 */
export interface TokenSetInit {
  /** The access token (or API key). */
  accessToken: string;
  /** The token type; `Bearer` when omitted. */
  tokenType?: string;
  /** Expiry in epoch milliseconds, local clock. */
  expiresAt: number;
  /** Receipt time in epoch milliseconds, local clock. */
  issuedAt: number;
  /** A refresh token, when the grant returned one. */
  refreshToken?: string | undefined;
  /** The granted scopes. */
  scope?: readonly string[] | undefined;
  /** Where the expiry came from. */
  expirySource?: TokenSetInfo['expirySource'];
  /** An ID token, when the grant returned one (never sent to APIs). */
  idToken?: string | undefined;
}

/**
 * A validated set of tokens as received from a source. Secrets live in private fields and
 * print as `[REDACTED]` through `toString`, `toJSON` and `util.inspect`; read them only through
 * {@link TokenSet.revealAccessToken} and {@link TokenSet.revealRefreshToken}.
 *
 * @example
 * ```ts
 * import { TokenSet } from 'tokenwarden';
 * const set = new TokenSet({ accessToken: 'abc', expiresAt: Date.now() + 60_000, issuedAt: Date.now() });
 * String(set); // '[REDACTED]'
 * ```
 */
export class TokenSet implements TokenSetInfo {
  readonly tokenType: string;
  readonly expiresAt: number;
  readonly issuedAt: number;
  declare readonly scope?: readonly string[];
  readonly expirySource: TokenSetInfo['expirySource'];
  readonly #accessToken: string;
  readonly #refreshToken: string | undefined;
  readonly #idToken: string | undefined;

  /**
   * @param init - The tokens and their metadata; validated by the caller.
   * @throws Never.
   */
  constructor(init: TokenSetInit) {
    this.#accessToken = init.accessToken;
    this.#refreshToken = init.refreshToken;
    this.#idToken = init.idToken;
    this.tokenType = init.tokenType ?? 'Bearer';
    this.expiresAt = init.expiresAt;
    this.issuedAt = init.issuedAt;
    if (init.scope !== undefined) this.scope = Object.freeze([...init.scope]);
    this.expirySource = init.expirySource ?? 'explicit';
    Object.freeze(this);
  }

  /** Whether the set carries a refresh token. */
  get hasRefreshToken(): boolean {
    return this.#refreshToken !== undefined;
  }

  /** Whether the set carries an ID token. */
  get hasIdToken(): boolean {
    return this.#idToken !== undefined;
  }

  /**
   * The raw access token. Call it only where the token must leave tokenwarden.
   * @returns The access token.
   * @throws Never.
   */
  revealAccessToken(): string {
    return this.#accessToken;
  }

  /**
   * The raw refresh token, if any.
   * @returns The refresh token or `undefined`.
   * @throws Never.
   */
  revealRefreshToken(): string | undefined {
    return this.#refreshToken;
  }

  /**
   * The raw ID token, if any.
   * @returns The ID token or `undefined`.
   * @throws Never.
   */
  revealIdToken(): string | undefined {
    return this.#idToken;
  }

  /**
   * A copy with some fields replaced, e.g. to keep the previous refresh token when a refresh
   * response carried none.
   * @param patch - The fields to replace.
   * @returns A new token set.
   * @throws Never.
   */
  with(patch: Partial<TokenSetInit>): TokenSet {
    return new TokenSet({
      accessToken: this.#accessToken,
      tokenType: this.tokenType,
      expiresAt: this.expiresAt,
      issuedAt: this.issuedAt,
      refreshToken: this.#refreshToken,
      scope: this.scope,
      expirySource: this.expirySource,
      idToken: this.#idToken,
      ...patch,
    });
  }

  /**
   * The non-secret facts of this set.
   * @throws Never.
   */
  info(): TokenSetInfo {
    const info: { -readonly [K in keyof TokenSetInfo]: TokenSetInfo[K] } = {
      tokenType: this.tokenType,
      expiresAt: this.expiresAt,
      issuedAt: this.issuedAt,
      hasRefreshToken: this.hasRefreshToken,
      expirySource: this.expirySource,
    };
    if (this.scope !== undefined) info.scope = this.scope;
    return info;
  }

  /**
   * @returns `'[REDACTED]'`.
   * @throws Never.
   */
  toString(): string {
    return REDACTED;
  }

  /**
   * @returns The non-secret facts, with the secrets as `'[REDACTED]'`.
   * @throws Never.
   */
  toJSON(): Record<string, unknown> {
    return {
      ...this.info(),
      accessToken: REDACTED,
      refreshToken: this.hasRefreshToken ? REDACTED : undefined,
    };
  }

  /** @internal */
  [INSPECT](): string {
    return `TokenSet ${JSON.stringify(this.toJSON())}`;
  }
}

/**
 * The access token handed to an application by `credential.getToken()`. It prints as
 * `[REDACTED]` everywhere; {@link AccessToken.reveal} is the one accessor of the raw value.
 *
 * @example
 * ```ts
 * const token = await billing.getToken();
 * console.log(token);               // AccessToken [REDACTED] { type: 'Bearer', ... }
 * legacyClient.setAuth(token.reveal()); // only where a raw token must leave tokenwarden
 * ```
 */
export class AccessToken {
  /** The credential this token belongs to. */
  readonly credentialId: string;
  /** The token type, e.g. `Bearer`, or `ApiKey` for API keys. */
  readonly type: string;
  /** Expiry in epoch milliseconds (local clock). */
  readonly expiresAt: number;
  /** When the token was issued or received, epoch milliseconds. */
  readonly issuedAt: number;
  /** The granted scopes, if known. */
  declare readonly scope?: readonly string[];
  readonly #value: string;

  /**
   * @param credentialId - The owning credential.
   * @param set - The token set to expose.
   * @internal
   */
  constructor(credentialId: string, set: TokenSet) {
    this.credentialId = credentialId;
    this.type = set.tokenType;
    this.expiresAt = set.expiresAt;
    this.issuedAt = set.issuedAt;
    if (set.scope !== undefined) this.scope = set.scope;
    this.#value = set.revealAccessToken();
    Object.freeze(this);
  }

  /**
   * The raw token. This is the only way to read it; prefer `credential.fetch`/`ky`, which
   * enforce the origin, transport and redirect policy.
   * @returns The raw access token.
   * @throws Never.
   */
  reveal(): string {
    return this.#value;
  }

  /**
   * @returns `'[REDACTED]'`.
   * @throws Never.
   */
  toString(): string {
    return REDACTED;
  }

  /**
   * @returns The metadata with the value as `'[REDACTED]'`.
   * @throws Never.
   */
  toJSON(): Record<string, unknown> {
    return {
      credentialId: this.credentialId,
      type: this.type,
      expiresAt: this.expiresAt,
      issuedAt: this.issuedAt,
      scope: this.scope,
      value: REDACTED,
    };
  }

  /** @internal */
  [INSPECT](): string {
    return `AccessToken [REDACTED] ${JSON.stringify(this.toJSON())}`;
  }
}
