import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { Credential } from '../credential.js';
import {
  AuthorizationError,
  invalidArgument,
  isTokenWardenError,
  TokenWardenError,
} from '../errors.js';
import { timingSafeEqual } from '../internal/compare.js';
import { type Duration, toMs } from '../internal/duration.js';
import { httpRequest } from '../internal/http.js';
import { isSecureTransport, parseEndpoint } from '../internal/url.js';
import type { RevokeOptions, RevokeResult } from '../revoke.js';
import type { TokenSet } from '../token.js';
import { discover, parseIssuer } from './discovery.js';
import {
  httpContext,
  normaliseScope,
  OAuthClient,
  OAuthGrantSource,
  type OAuthTokenSource,
} from './oauth.js';
import { codeChallenge, randomValue } from './pkce.js';
import { refreshToken } from './refresh-token.js';
import { hasControlChars, MAX_ERROR_DESCRIPTION, sanitizeText } from './token-response.js';
import type { SourceBinding, SourceContext } from './types.js';

/**
 * Where {@link authorizationCode} keeps a sign-in's PKCE verifier, `state` and `nonce` between
 * `login()` and `handleRedirect()`: the `getItem`/`setItem`/`removeItem` part of the Web Storage
 * API. `sessionStorage` by default, which is per tab and dies with it.
 *
 * @example
 * ```ts
 * import { authorizationCode, type AuthorizationStorage } from 'tokenwarden';
 * const memory = new Map<string, string>();
 * const storage: AuthorizationStorage = {
 *   getItem: (key) => memory.get(key) ?? null,
 *   setItem: (key, value) => void memory.set(key, value),
 *   removeItem: (key) => void memory.delete(key),
 * };
 * const signIn = authorizationCode({ issuer, clientId: 'spa', redirectUri, storage });
 * ```
 */
export interface AuthorizationStorage {
  /**
   * Reads a value.
   * @param key - The item's key.
   * @returns The value, or `null`.
   */
  getItem(key: string): string | null;
  /**
   * Writes a value.
   * @param key - The item's key.
   * @param value - The value.
   */
  setItem(key: string, value: string): void;
  /**
   * Deletes a value.
   * @param key - The item's key.
   */
  removeItem(key: string): void;
}

/**
 * How {@link authorizationCode} verifies the ID token of a sign-in (OpenID Connect Core §3.1.3.7).
 *
 * @example
 * ```ts
 * import { authorizationCode, type IdTokenOptions } from 'tokenwarden';
 * const idToken: IdTokenOptions = { algorithms: ['ES256'], clockTolerance: '30s' };
 * const signIn = authorizationCode({ issuer, clientId: 'spa', redirectUri, idToken });
 * ```
 */
export interface IdTokenOptions {
  /**
   * The JWS algorithms accepted. Symmetric (`HS*`) algorithms and `none` are refused: a public
   * client has no secret to check them with.
   * @default ['RS256', 'PS256', 'ES256', 'EdDSA']
   */
  algorithms?: readonly string[] | undefined;
  /**
   * Tolerance for `exp`, `iat` and `nbf`, against the clock corrected by the skew learned from
   * the server's `Date` headers.
   * @default '1m'
   */
  clockTolerance?: Duration | undefined;
  /**
   * The oldest `iat` accepted: the ID token comes straight from the code exchange, so an old one
   * is a replay.
   * @default '10m'
   */
  maxTokenAge?: Duration | undefined;
}

/**
 * Options of {@link authorizationCode}.
 *
 * @example
 * ```ts
 * import { authorizationCode, type AuthorizationCodeOptions } from 'tokenwarden';
 * const options: AuthorizationCodeOptions = {
 *   issuer: 'https://auth.example.com',
 *   clientId: 'spa',
 *   redirectUri: `${location.origin}/callback`,
 *   scope: ['openid', 'offline_access', 'api:read'],
 *   postLogoutRedirectUri: `${location.origin}/`,
 * };
 * const signIn = authorizationCode(options);
 * ```
 */
export interface AuthorizationCodeOptions {
  /**
   * The issuer identifier. Its metadata (RFC 8414, then OpenID Connect discovery) gives the
   * authorization, token, revocation, end-session endpoints and the JWKS, and is used only if its
   * `issuer` equals this string exactly.
   */
  issuer: string;
  /** The OAuth client id of this public client (no secret: a browser cannot keep one). */
  clientId: string;
  /** The redirect URI registered for the client: the page that calls `handleRedirect()`. */
  redirectUri: string | URL;
  /**
   * The scopes to request. Include `offline_access` (or whatever the server needs) to receive a
   * refresh token; without one the user signs in again when the access token expires.
   * @default ['openid']
   */
  scope?: string | readonly string[] | undefined;
  /**
   * Where the server's end-session endpoint sends the browser after `logout({ endSession: true })`;
   * it must be registered for the client.
   * @default undefined (the server shows its own page)
   */
  postLogoutRedirectUri?: string | URL | undefined;
  /**
   * ID token verification, or `false` to ignore ID tokens (they are then dropped, never stored).
   * With `openid` in the scope and verification on, a token response without an ID token fails.
   * @default {} (verification with the defaults of {@link IdTokenOptions})
   */
  idToken?: IdTokenOptions | false | undefined;
  /**
   * Where a sign-in's verifier, `state` and `nonce` wait for the redirect.
   * @default globalThis.sessionStorage
   */
  storage?: AuthorizationStorage | undefined;
  /**
   * Sends the browser to a URL (the authorization or end-session endpoint). Replace it to open a
   * popup, or in tests.
   * @default (url) => globalThis.location.assign(url.href)
   */
  navigate?: ((url: URL) => void | Promise<void>) | undefined;
}

/**
 * Options of {@link AuthorizationCodeSource.login}.
 *
 * @example
 * ```ts
 * import type { LoginOptions } from 'tokenwarden';
 * const options: LoginOptions = { prompt: 'consent', loginHint: 'ada@example.com', appState: { returnTo: '/invoices' } };
 * await signIn.login(options);
 * ```
 */
export interface LoginOptions {
  /**
   * The OpenID Connect `prompt` (`login`, `consent`, `select_account`, `none`, space-separated).
   * Some servers (oidc-provider) issue a refresh token for `offline_access` only with `consent`.
   * @default undefined (no `prompt` is sent)
   */
  prompt?: string | undefined;
  /**
   * The `login_hint`: an e-mail address or user name to prefill.
   * @default undefined (no `login_hint` is sent)
   */
  loginHint?: string | undefined;
  /**
   * Anything JSON-serialisable to have back from `handleRedirect()` (e.g. the page to return
   * to). Kept in this tab's storage, never sent to the server.
   * @default undefined (`handleRedirect()` returns no `appState`)
   */
  appState?: unknown;
  /**
   * More authorization request parameters (`ui_locales`, `acr_values`, `resource`, ...). Those
   * tokenwarden sets itself (`state`, `nonce`, `code_challenge`, `redirect_uri`, ...) are refused.
   * @default undefined (no extra parameters)
   */
  extraParams?: Readonly<Record<string, string>> | undefined;
  /**
   * Aborts the discovery request that precedes the redirect.
   * @default undefined (not abortable)
   */
  signal?: AbortSignal | undefined;
}

/**
 * Options of {@link AuthorizationCodeSource.handleRedirect}.
 *
 * @example
 * ```ts
 * import type { HandleRedirectOptions } from 'tokenwarden';
 * const options: HandleRedirectOptions = { signal: AbortSignal.timeout(15_000) };
 * await signIn.handleRedirect(location.href, options);
 * ```
 */
export interface HandleRedirectOptions {
  /**
   * Aborts the code exchange.
   * @default undefined (not abortable)
   */
  signal?: AbortSignal | undefined;
}

/**
 * The verified claims of an ID token (OpenID Connect Core §2): `iss`, `sub`, `aud`, `exp` and
 * `iat` are always there; the rest depends on the scopes and the server.
 *
 * @example
 * ```ts
 * import type { IdTokenClaims } from 'tokenwarden';
 * const { claims } = await signIn.handleRedirect();
 * const user: IdTokenClaims | undefined = claims;
 * greet(user?.sub, user?.['email']);
 * ```
 */
export interface IdTokenClaims {
  /** The issuer. */
  readonly iss: string;
  /** The user's subject identifier at the issuer. */
  readonly sub: string;
  /** The audience: this client id (possibly among others, with `azp` naming this client). */
  readonly aud: string | readonly string[];
  /** Expiry, epoch seconds. */
  readonly exp: number;
  /** Issue time, epoch seconds. */
  readonly iat: number;
  /** The sign-in's nonce (checked against the one sent). */
  readonly nonce?: string;
  /** When the user authenticated, epoch seconds. */
  readonly auth_time?: number;
  /** Any other claim. */
  readonly [claim: string]: unknown;
}

/**
 * What {@link AuthorizationCodeSource.handleRedirect} returns once the tokens are stored.
 *
 * @example
 * ```ts
 * import type { SignInResult } from 'tokenwarden';
 * const result: SignInResult = await signIn.handleRedirect();
 * history.replaceState(null, '', (result.appState as { returnTo?: string } | undefined)?.returnTo ?? '/');
 * ```
 */
export interface SignInResult {
  /** The verified ID token claims, when the server returned an ID token and verification is on. */
  readonly claims?: IdTokenClaims;
  /** The `appState` given to `login()`, if any. */
  readonly appState?: unknown;
}

/**
 * Options of {@link AuthorizationCodeSource.logout}: those of `credential.revoke()`, plus the
 * end-session redirect.
 *
 * @example
 * ```ts
 * import type { LogoutOptions } from 'tokenwarden';
 * const options: LogoutOptions = { endSession: true, signal: AbortSignal.timeout(10_000) };
 * await signIn.logout(me, options);
 * ```
 */
export interface LogoutOptions extends RevokeOptions {
  /**
   * After revoking, send the browser to the server's `end_session_endpoint` (OpenID Connect
   * RP-Initiated Logout) with `client_id` and the `postLogoutRedirectUri`, to end the session
   * at the server too. Otherwise the user stays signed in there, and the next `login()` may
   * complete without a prompt.
   * @default false
   */
  endSession?: boolean | undefined;
}

/**
 * What happened to the server session in {@link AuthorizationCodeSource.logout}:
 * `'redirected'` to the end-session endpoint, `'not-requested'`, `'unsupported'` (the server
 * has no `end_session_endpoint`), or `'failed'` (its metadata could not be read).
 *
 * @example
 * ```ts
 * import type { EndSessionOutcome } from 'tokenwarden';
 * const { endSession }: { endSession: EndSessionOutcome } = await signIn.logout(me, { endSession: true });
 * if (endSession !== 'redirected') showSignedOut();
 * ```
 */
export type EndSessionOutcome = 'redirected' | 'not-requested' | 'unsupported' | 'failed';

/**
 * The result of {@link AuthorizationCodeSource.logout}: the credential's revocation result and
 * what happened to the server session.
 *
 * @example
 * ```ts
 * import type { LogoutResult } from 'tokenwarden';
 * const result: LogoutResult = await signIn.logout(me);
 * if (!result.revokedAtServer) console.warn('signed out locally only', result.failures);
 * ```
 */
export interface LogoutResult extends RevokeResult {
  /** What happened to the session at the server. */
  readonly endSession: EndSessionOutcome;
}

/**
 * The source {@link authorizationCode} returns: an OAuth token source whose first token set
 * comes from a user's sign-in in the browser.
 *
 * @example
 * ```ts
 * import { authorizationCode, type AuthorizationCodeSource } from 'tokenwarden';
 * const signIn: AuthorizationCodeSource = authorizationCode({ issuer, clientId: 'spa', redirectUri });
 * const me = warden.register('me', { source: signIn, origins: ['https://api.example.com'] });
 * if (signIn.isRedirect()) await signIn.handleRedirect();
 * // The store is read on first use: a sign-in stored by an earlier visit counts.
 * else await me.getToken().catch(() => signIn.login());
 * ```
 */
export interface AuthorizationCodeSource extends OAuthTokenSource {
  /** Always `true`: without a refresh token, only the user can supply tokens. */
  readonly interactive: true;
  /**
   * Starts a sign-in: creates a PKCE verifier, `state` and `nonce`, keeps them in this tab's
   * storage, and sends the browser to the authorization endpoint (the S256 challenge goes in the
   * URL, the verifier never does).
   * @param options - `prompt`, `loginHint`, `appState`, extra parameters, signal.
   * @returns When the browser has been sent away (the page is then unloading).
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for bad options or a source not
   * registered with a credential; {@link TokenWardenError} `ERR_UNSUPPORTED` when there is no
   * `sessionStorage` (and no `storage` option) or the server lacks S256, or the discovery
   * request's code (`ERR_NETWORK`, `ERR_TIMEOUT`, `ERR_HTTP_STATUS`, `ERR_INVALID_RESPONSE`,
   * `ERR_RESPONSE_TOO_LARGE`, `ERR_REDIRECT`, `ERR_ISSUER_MISMATCH`, `ERR_ABORTED`).
   */
  login(options?: LoginOptions): Promise<void>;
  /**
   * Completes a sign-in on the redirect page: checks `state` (one use only) and `iss`, turns an
   * `error` into an {@link AuthorizationError}, exchanges the code with the verifier, verifies the
   * ID token, and stores the token set through the credential.
   * @param url - The callback URL.
   * @param options - Signal.
   * @returns The ID token claims and the `appState` of `login()`.
   * @throws {@link TokenWardenError} `ERR_STATE_MISMATCH`, `ERR_ISSUER_MISMATCH`,
   * `ERR_ACCESS_DENIED` / `ERR_AUTHORIZATION_FAILED` ({@link AuthorizationError}),
   * `ERR_ID_TOKEN_INVALID`, `ERR_INVALID_RESPONSE`, `ERR_OAUTH_ERROR` ({@link OAuthError}), a
   * transport or discovery code (`ERR_NETWORK`, `ERR_TIMEOUT`, `ERR_ABORTED`, `ERR_HTTP_STATUS`,
   * `ERR_REDIRECT`, `ERR_RESPONSE_TOO_LARGE`); `ERR_INVALID_ARGUMENT` when the source is not
   * registered or there is no URL, `ERR_UNSUPPORTED` without `sessionStorage`, and the codes of
   * {@link SourceBinding.install} when the token set cannot be stored (`ERR_CLOSED`,
   * `ERR_STORE_CONFLICT`, `ERR_LOCK_TIMEOUT`, `ERR_STORE_UNAVAILABLE`).
   */
  handleRedirect(url?: string | URL, options?: HandleRedirectOptions): Promise<SignInResult>;
  /**
   * Whether a URL is an authorization response for this client: the redirect URI with a `state`
   * and a `code` or an `error`.
   * @param url - The URL to test.
   * @returns `true` when `handleRedirect(url)` should be called.
   * @throws Never: a URL that cannot be parsed is not a redirect.
   */
  isRedirect(url?: string | URL): boolean;
  /**
   * Signs the user out: `credential.revoke()` (RFC 7009 at the server, then the tokens wiped from
   * memory, the store and every other tab), any pending sign-in forgotten, then, with
   * `endSession`, the browser sent to the server's end-session endpoint.
   * @param credential - The credential this source is registered with.
   * @param options - Revocation options and `endSession`.
   * @returns The revocation result and the end-session outcome.
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` when `credential` is not this
   * source's, or the source is not registered; {@link TokenWardenError} `ERR_CLOSED` when the
   * credential is closed. Revocation and end-session failures are reported in the result.
   */
  logout(credential: Credential, options?: LogoutOptions): Promise<LogoutResult>;
}

/**
 * A token source for the OAuth 2.0 authorization code grant with PKCE (S256), for browser apps
 * (public clients). `login()` sends the browser to the authorization server; on the redirect
 * page `handleRedirect()` checks the response and stores the token set through the credential's
 * store, so refresh, rotation, tab coordination and encryption at rest apply from then on.
 *
 * - `state` (256 bits) is checked and forgotten on first use: a forged, replayed or foreign
 *   callback fails with `ERR_STATE_MISMATCH`.
 * - The `iss` response parameter (RFC 9207) must equal the issuer; when the server's metadata
 *   says `authorization_response_iss_parameter_supported`, it is required.
 * - The ID token is verified with `jose` against the issuer's JWKS: algorithm allow-list,
 *   signature, `iss`, `aud` (and `azp`), `exp`, `iat`, `nonce`. Its claims are returned; the ID
 *   token is kept sealed with the set, and never sent to APIs (only the access token is).
 * - A DPoP-bound credential (`dpop` in `register()`) proves its key on the code exchange and on
 *   every refresh, so the tokens are bound to it from the start. `dpop_jkt` (RFC 9449 §10) is
 *   not sent: the key is created on the callback page, after the navigation, and a key created
 *   before it would not survive the page change.
 * - Later, `obtain()` redeems the refresh token with rotation; without one it fails with
 *   `ERR_REAUTH_REQUIRED` and the credential is `reauth-required` until the next sign-in.
 *
 * Only Web APIs: `crypto`, `sessionStorage` and `location` (the latter two injectable).
 *
 * @param options - Issuer, client id, redirect URI, scopes, ID token checks.
 * @returns The source, to register with one credential.
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for invalid options.
 * @example
 * ```ts
 * import { authorizationCode, createWarden } from 'tokenwarden';
 * import { indexedDbStore } from 'tokenwarden/browser';
 *
 * const signIn = authorizationCode({
 *   issuer: 'https://auth.example.com',
 *   clientId: 'spa',
 *   redirectUri: `${location.origin}/callback`,
 *   scope: 'openid offline_access api:read',
 * });
 * const warden = createWarden({ store: indexedDbStore() });
 * const me = warden.register('me', { source: signIn, origins: ['https://api.example.com'] });
 *
 * if (signIn.isRedirect()) {
 *   const { claims } = await signIn.handleRedirect();
 *   history.replaceState(null, '', '/');
 *   console.log('signed in as', claims?.sub);
 * }
 * loginButton.onclick = () => signIn.login();
 * logoutButton.onclick = () => signIn.logout(me, { endSession: true });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1
 * @see https://www.rfc-editor.org/rfc/rfc7636 (PKCE)
 * @see https://www.rfc-editor.org/rfc/rfc9207 (iss response parameter)
 * @see https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
 */
export function authorizationCode(options: AuthorizationCodeOptions): AuthorizationCodeSource {
  return new AuthorizationCodeGrant(options);
}

const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

/** Parameters tokenwarden sets on the authorization request; `extraParams` cannot override them. */
const RESERVED_PARAMS = new Set([
  'response_type',
  'response_mode',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'prompt',
  'login_hint',
  'request',
  'request_uri',
  'dpop_jkt',
]);

/** A pending sign-in lives at most this long in storage. */
const TRANSACTION_TTL_MS = 60 * 60_000;
/** At most this many pending sign-ins per client and tab; the oldest is dropped first. */
const MAX_TRANSACTIONS = 8;

/** One pending sign-in, as kept in storage (short keys: it is all this tab ever stores). */
interface Transaction {
  /** The PKCE code verifier. */
  readonly v: string;
  /** The nonce, when an ID token is expected. */
  readonly n?: string;
  /** The redirect URI sent (the exchange must repeat it). */
  readonly r: string;
  /** Created at, epoch ms. */
  readonly t: number;
  /** The app state, when given. */
  readonly a?: unknown;
}

/** What the source needs from the server's metadata beyond the token endpoints. */
interface SignInMetadata {
  readonly authorizationEndpoint: URL;
  readonly jwksUri: URL | undefined;
  readonly endSessionEndpoint: URL | undefined;
  readonly issParameterSupported: boolean;
  readonly challengeMethods: readonly string[] | undefined;
}

class AuthorizationCodeGrant extends OAuthGrantSource implements AuthorizationCodeSource {
  readonly kind = 'authorization_code' as const;
  readonly interactive = true as const;
  readonly #issuer: string;
  readonly #clientId: string;
  readonly #redirectUri: URL;
  readonly #postLogoutRedirectUri: URL | undefined;
  readonly #idToken: IdTokenPolicy | undefined;
  readonly #storage: AuthorizationStorage | undefined;
  readonly #navigate: ((url: URL) => void | Promise<void>) | undefined;
  readonly #refresh: OAuthTokenSource;
  readonly #storageKey: string;
  #binding: SourceBinding | undefined;
  #jwks: { uri: string; keys: JWTVerifyGetKey } | undefined;
  /** The context the JWKS fetch runs with (the current verification's). */
  #jwksContext: SourceContext | undefined;

  constructor(options: AuthorizationCodeOptions) {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgument('authorizationCode() needs an options object.');
    }
    if (options.issuer === undefined) {
      throw invalidArgument(
        'authorizationCode() needs issuer: its metadata names the authorization endpoint and the JWKS.',
      );
    }
    parseIssuer(options.issuer);
    const server = {
      issuer: options.issuer,
      clientId: options.clientId,
      clientAuth: 'none' as const,
    };
    const scope = normaliseScope(options.scope ?? ['openid'], 'scope') as string[];
    if (scope.length === 0) throw invalidArgument('scope must name at least one scope.');
    super(new OAuthClient(server, 'authorizationCode'), scope);
    this.#issuer = options.issuer;
    this.#clientId = this.client.clientId;
    this.#redirectUri = redirectUrl(options.redirectUri, 'redirectUri');
    this.#postLogoutRedirectUri =
      options.postLogoutRedirectUri === undefined
        ? undefined
        : redirectUrl(options.postLogoutRedirectUri, 'postLogoutRedirectUri');
    this.#idToken = options.idToken === false ? undefined : idTokenPolicy(options.idToken ?? {});
    if (options.storage !== undefined && !isStorage(options.storage)) {
      throw invalidArgument('storage must have getItem, setItem and removeItem functions.');
    }
    this.#storage = options.storage;
    if (options.navigate !== undefined && typeof options.navigate !== 'function') {
      throw invalidArgument('navigate must be a function that sends the browser to a URL.');
    }
    this.#navigate = options.navigate;
    // The refresh grant is the refresh-token source's, unchanged: rotation included.
    this.#refresh = refreshToken(server);
    this.#storageKey = `tokenwarden:sign-in:${this.#clientId}@${this.#issuer}`;
  }

  attach(binding: SourceBinding): void {
    if (this.#binding !== undefined) {
      throw invalidArgument(
        `This authorizationCode() source is registered with credential "${this.#binding.credentialId}" already; create one source per credential.`,
      );
    }
    this.#binding = binding;
  }

  async obtain(context: SourceContext): Promise<TokenSet> {
    const current = context.current;
    if (current?.revealRefreshToken() === undefined) {
      throw new TokenWardenError(
        'ERR_REAUTH_REQUIRED',
        `Credential "${context.credentialId}" has no refresh token: the user must sign in (login()).`,
        { credentialId: context.credentialId },
      );
    }
    const set = await this.#refresh.obtain(context);
    // Only an ID token verified at sign-in is kept; one from a refresh response is not verified.
    return set.with({ idToken: current.revealIdToken() });
  }

  isRedirect(url: string | URL | undefined = currentUrl()): boolean {
    const parsed = url === undefined ? undefined : parseUrl(url);
    if (!parsed || !sameEndpoint(parsed, this.#redirectUri)) return false;
    const params = parsed.searchParams;
    return params.has('state') && (params.has('code') || params.has('error'));
  }

  async login(options: LoginOptions = {}): Promise<void> {
    const binding = this.#bound('login');
    const extra = checkLoginOptions(options);
    const storage = this.#store();
    const navigate = this.#navigator();
    const context = binding.context(options.signal ?? null);
    const metadata = await this.#metadata(context);
    if (metadata.challengeMethods !== undefined && !metadata.challengeMethods.includes('S256')) {
      throw new TokenWardenError(
        'ERR_UNSUPPORTED',
        `The authorization server ${this.#issuer} does not support PKCE with S256 (code_challenge_methods_supported); tokenwarden does not sign in without it.`,
        { credentialId: binding.credentialId },
      );
    }
    const state = randomValue();
    const verifier = randomValue();
    const nonce = this.#expectsIdToken() ? randomValue() : undefined;
    const url = new URL(metadata.authorizationEndpoint.href);
    const params = url.searchParams;
    params.set('response_type', 'code');
    params.set('client_id', this.#clientId);
    params.set('redirect_uri', this.#redirectUri.href);
    params.set('scope', (this.scope as string[]).join(' '));
    params.set('state', state);
    params.set('code_challenge', await codeChallenge(verifier));
    params.set('code_challenge_method', 'S256');
    if (nonce !== undefined) params.set('nonce', nonce);
    if (options.prompt !== undefined) params.set('prompt', options.prompt);
    if (options.loginHint !== undefined) params.set('login_hint', options.loginHint);
    for (const [name, value] of extra) params.set(name, value);

    const transaction: { -readonly [K in keyof Transaction]: Transaction[K] } = {
      v: verifier,
      r: this.#redirectUri.href,
      t: Date.now(),
    };
    if (nonce !== undefined) transaction.n = nonce;
    if (options.appState !== undefined) transaction.a = options.appState;
    this.#save(storage, state, transaction);
    try {
      await navigate(url);
    } catch (error) {
      this.#take(storage, state);
      throw error;
    }
  }

  async handleRedirect(
    url: string | URL | undefined = currentUrl(),
    options: HandleRedirectOptions = {},
  ): Promise<SignInResult> {
    const binding = this.#bound('handleRedirect');
    const storage = this.#store();
    const callback = url === undefined ? undefined : parseUrl(url);
    if (!callback) {
      throw invalidArgument('handleRedirect() needs the callback URL (location.href by default).');
    }
    const credentialId = binding.credentialId;
    const context = binding.context(options.signal ?? null);
    const metadata = await this.#metadata(context);
    const params = callback.searchParams;
    const state = params.get('state');
    // Taken out at once: whatever happens next, this state and its verifier serve one callback.
    const transaction = state === null ? undefined : this.#take(storage, state);
    if (transaction === undefined) {
      throw new TokenWardenError(
        'ERR_STATE_MISMATCH',
        state === null
          ? 'The callback URL has no state parameter: it is not the answer to a sign-in started here. Call login() to sign in.'
          : 'The callback state matches no sign-in started in this tab: the response is forged, was used already, or its sign-in expired. Call login() to sign in again.',
        { credentialId },
      );
    }
    // RFC 9207: a response from another server (mix-up attack) must not reach this token endpoint.
    const iss = params.get('iss');
    if (iss === null ? metadata.issParameterSupported : iss !== this.#issuer) {
      throw new TokenWardenError(
        'ERR_ISSUER_MISMATCH',
        iss === null
          ? `The authorization response has no iss parameter, which ${this.#issuer} promises (authorization_response_iss_parameter_supported). It may come from another server; sign in again.`
          : `The authorization response names the issuer "${sanitizeText(iss, 200)}", not "${this.#issuer}" (RFC 9207). It may come from another server; sign in again.`,
        { credentialId },
      );
    }
    const error = params.get('error');
    if (error !== null) {
      const description = params.get('error_description');
      throw new AuthorizationError(
        sanitizeText(error, 128) || 'unknown_error',
        description === null
          ? undefined
          : sanitizeText(description, MAX_ERROR_DESCRIPTION) || undefined,
        { credentialId },
      );
    }
    const code = params.get('code');
    if (code === null || code === '' || hasControlChars(code)) {
      throw new TokenWardenError(
        'ERR_INVALID_RESPONSE',
        'The authorization response has neither a usable code nor an error. Sign in again.',
        { credentialId },
      );
    }
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: transaction.r,
      code_verifier: transaction.v,
    });
    let set = await this.client.requestToken(form, context, { requestedScope: this.scope });
    let claims: IdTokenClaims | undefined;
    const idToken = set.revealIdToken();
    if (this.#idToken !== undefined && (idToken !== undefined || this.#expectsIdToken())) {
      if (idToken === undefined) {
        throw idTokenError(
          'the token response has none although the openid scope was requested',
          credentialId,
        );
      }
      claims = await this.#verify(idToken, transaction.n, metadata, context);
    } else if (idToken !== undefined) {
      set = set.with({ idToken: undefined });
    }
    await binding.install(set);
    const result: { -readonly [K in keyof SignInResult]: SignInResult[K] } = {};
    if (claims !== undefined) result.claims = claims;
    if (transaction.a !== undefined) result.appState = transaction.a;
    return result;
  }

  async logout(credential: Credential, options: LogoutOptions = {}): Promise<LogoutResult> {
    const binding = this.#bound('logout');
    if (
      typeof credential !== 'object' ||
      credential === null ||
      credential.id !== binding.credentialId ||
      typeof credential.revoke !== 'function'
    ) {
      throw invalidArgument(
        `logout() needs the credential this source is registered with ("${binding.credentialId}").`,
      );
    }
    const { endSession = false, ...revokeOptions } = options;
    const revocation = await credential.revoke(revokeOptions);
    const storage = this.#storage ?? sessionStore();
    storage?.removeItem(this.#storageKey);
    if (!endSession) return { ...revocation, endSession: 'not-requested' };
    let metadata: SignInMetadata;
    try {
      metadata = await this.#metadata(binding.context(options.signal ?? null));
    } catch {
      return { ...revocation, endSession: 'failed' };
    }
    if (metadata.endSessionEndpoint === undefined) {
      return { ...revocation, endSession: 'unsupported' };
    }
    const url = new URL(metadata.endSessionEndpoint.href);
    // client_id rather than id_token_hint: the ID token stays out of URLs and browser history.
    url.searchParams.set('client_id', this.#clientId);
    if (this.#postLogoutRedirectUri !== undefined) {
      url.searchParams.set('post_logout_redirect_uri', this.#postLogoutRedirectUri.href);
    }
    await this.#navigator()(url);
    return { ...revocation, endSession: 'redirected' };
  }

  #expectsIdToken(): boolean {
    return this.#idToken !== undefined && (this.scope as string[]).includes('openid');
  }

  #bound(method: string): SourceBinding {
    if (this.#binding === undefined) {
      throw invalidArgument(
        `${method}() needs the source registered with a credential first: warden.register(id, { source, origins }).`,
      );
    }
    return this.#binding;
  }

  #store(): AuthorizationStorage {
    const storage = this.#storage ?? sessionStore();
    if (storage === undefined) {
      throw new TokenWardenError(
        'ERR_UNSUPPORTED',
        'sessionStorage is not available here: pass the storage option to authorizationCode().',
      );
    }
    return storage;
  }

  #navigator(): (url: URL) => void | Promise<void> {
    if (this.#navigate !== undefined) return this.#navigate;
    const location = (globalThis as { location?: Location }).location;
    if (location === undefined || typeof location.assign !== 'function') {
      throw new TokenWardenError(
        'ERR_UNSUPPORTED',
        'There is no location to navigate: pass the navigate option to authorizationCode().',
      );
    }
    return (url) => location.assign(url.href);
  }

  /** The pending sign-ins of this client in this tab, expired ones left out. */
  #load(storage: AuthorizationStorage): Record<string, Transaction> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(storage.getItem(this.#storageKey) ?? '{}');
    } catch {
      parsed = undefined;
    }
    const kept: Record<string, Transaction> = Object.create(null);
    if (typeof parsed !== 'object' || parsed === null) return kept;
    const now = Date.now();
    for (const [state, value] of Object.entries(parsed as Record<string, unknown>)) {
      const t = value as Partial<Transaction> | null;
      if (
        typeof t === 'object' &&
        t !== null &&
        typeof t.v === 'string' &&
        typeof t.r === 'string' &&
        typeof t.t === 'number' &&
        (t.n === undefined || typeof t.n === 'string') &&
        now - t.t < TRANSACTION_TTL_MS &&
        t.t <= now + 60_000
      ) {
        kept[state] = t as Transaction;
      }
    }
    return kept;
  }

  #write(storage: AuthorizationStorage, transactions: Record<string, Transaction>): void {
    const states = Object.keys(transactions);
    if (states.length === 0) storage.removeItem(this.#storageKey);
    else storage.setItem(this.#storageKey, JSON.stringify(transactions));
  }

  #save(storage: AuthorizationStorage, state: string, transaction: Transaction): void {
    const transactions = this.#load(storage);
    transactions[state] = transaction;
    const states = Object.keys(transactions).sort(
      (a, b) => (transactions[a] as Transaction).t - (transactions[b] as Transaction).t,
    );
    for (const old of states.slice(0, Math.max(0, states.length - MAX_TRANSACTIONS))) {
      delete transactions[old];
    }
    this.#write(storage, transactions);
  }

  /** Removes and returns the sign-in started with `state`, if any. */
  #take(storage: AuthorizationStorage, state: string): Transaction | undefined {
    const transactions = this.#load(storage);
    let found: Transaction | undefined;
    for (const [key, transaction] of Object.entries(transactions)) {
      // Compared in constant time: the state is the one secret a forged callback must guess.
      if (timingSafeEqual(key, state)) {
        found = transaction;
        delete transactions[key];
      }
    }
    this.#write(storage, transactions);
    return found;
  }

  async #metadata(context: SourceContext): Promise<SignInMetadata> {
    const discovered = await discover(this.#issuer, httpContext(context));
    const json = discovered.metadata;
    const authorizationEndpoint = metadataUrl(json, 'authorization_endpoint');
    if (authorizationEndpoint === undefined) {
      throw new TokenWardenError(
        'ERR_INVALID_RESPONSE',
        `The metadata of ${this.#issuer} has no authorization_endpoint; it cannot be used for a browser sign-in.`,
        { credentialId: context.credentialId },
      );
    }
    const methods = json['code_challenge_methods_supported'];
    return {
      authorizationEndpoint,
      jwksUri: metadataUrl(json, 'jwks_uri'),
      endSessionEndpoint: metadataUrl(json, 'end_session_endpoint'),
      issParameterSupported: json['authorization_response_iss_parameter_supported'] === true,
      challengeMethods: Array.isArray(methods)
        ? methods.filter((m): m is string => typeof m === 'string')
        : undefined,
    };
  }

  async #verify(
    idToken: string,
    nonce: string | undefined,
    metadata: SignInMetadata,
    context: SourceContext,
  ): Promise<IdTokenClaims> {
    const policy = this.#idToken as IdTokenPolicy;
    const credentialId = context.credentialId;
    if (metadata.jwksUri === undefined) {
      throw idTokenError(
        `the metadata of ${this.#issuer} has no jwks_uri to check it with`,
        credentialId,
      );
    }
    if (this.#jwks?.uri !== metadata.jwksUri.href) {
      this.#jwks = {
        uri: metadata.jwksUri.href,
        keys: createRemoteJWKSet(metadata.jwksUri, {
          timeoutDuration: context.timeoutMs + 1_000,
          // Through tokenwarden's own HTTP: the credential's fetch, timeout and byte cap.
          [customFetch]: (url: string) => this.#fetchJwks(url),
        }),
      };
    }
    this.#jwksContext = context;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(idToken, this.#jwks.keys, {
        issuer: this.#issuer,
        audience: this.#clientId,
        algorithms: policy.algorithms,
        clockTolerance: policy.clockToleranceS,
        maxTokenAge: policy.maxTokenAgeS,
        currentDate: new Date(context.clock.now() + context.clock.skewMs),
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      }));
    } catch (error) {
      if (isTokenWardenError(error)) throw error;
      // jose's errors carry the payload; only their code and claim name are kept.
      throw idTokenError(joseReason(error), credentialId);
    } finally {
      this.#jwksContext = undefined;
    }
    const aud = payload['aud'];
    const azp = payload['azp'];
    if (
      (azp !== undefined && azp !== this.#clientId) ||
      (Array.isArray(aud) && aud.length > 1 && azp === undefined)
    ) {
      throw idTokenError('its azp claim does not name this client', credentialId);
    }
    if (typeof payload['sub'] !== 'string' || payload['sub'] === '') {
      throw idTokenError('its sub claim is not a non-empty string', credentialId);
    }
    if (nonce !== undefined) {
      const stated = payload['nonce'];
      if (typeof stated !== 'string' || !timingSafeEqual(stated, nonce)) {
        throw idTokenError(
          'its nonce is not the one this sign-in sent (a replayed ID token?)',
          credentialId,
        );
      }
    }
    return Object.freeze({ ...payload }) as unknown as IdTokenClaims;
  }

  async #fetchJwks(url: string): Promise<Response> {
    const context = this.#jwksContext;
    if (context === undefined)
      throw new TokenWardenError('ERR_ABORTED', 'No verification is running.');
    const parsed = new URL(url);
    const result = await httpRequest({ url: parsed, label: 'JWKS request' }, httpContext(context));
    const empty = [204, 205, 304].includes(result.status);
    return new Response(empty ? null : result.body, {
      status: result.status,
      headers: result.headers,
    });
  }
}

function parseUrl(value: string | URL): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function currentUrl(): string | undefined {
  return (globalThis as { location?: Location }).location?.href;
}

function sessionStore(): AuthorizationStorage | undefined {
  try {
    // Reading sessionStorage throws where storage is disabled (sandboxed frames, some privacy modes).
    const storage = (globalThis as { sessionStorage?: Storage }).sessionStorage;
    return storage !== undefined && isStorage(storage) ? storage : undefined;
  } catch {
    return undefined;
  }
}

function isStorage(value: unknown): value is AuthorizationStorage {
  const candidate = value as Partial<AuthorizationStorage> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.getItem === 'function' &&
    typeof candidate.setItem === 'function' &&
    typeof candidate.removeItem === 'function'
  );
}

function redirectUrl(value: unknown, name: string): URL {
  const url = parseEndpoint(value, name);
  if (!isSecureTransport(url)) {
    throw invalidArgument(`${name} must use https (http is accepted only for loopback hosts).`);
  }
  if (url.username !== '' || url.password !== '') {
    throw invalidArgument(`${name} must not contain credentials.`);
  }
  return url;
}

function sameEndpoint(a: URL, b: URL): boolean {
  return a.origin === b.origin && a.pathname === b.pathname;
}

interface IdTokenPolicy {
  readonly algorithms: string[];
  readonly clockToleranceS: number;
  readonly maxTokenAgeS: number;
}

function idTokenPolicy(options: IdTokenOptions): IdTokenPolicy {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('idToken must be an options object or false.');
  }
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  if (
    !Array.isArray(algorithms) ||
    algorithms.length === 0 ||
    !algorithms.every(
      (alg) => typeof alg === 'string' && alg !== '' && !/^(none|HS\d+)$/i.test(alg),
    )
  ) {
    throw invalidArgument(
      "idToken.algorithms must be a non-empty array of asymmetric JWS algorithms ('RS256', 'ES256', ...); 'none' and HS* are refused.",
    );
  }
  return {
    algorithms: [...algorithms],
    clockToleranceS: toMs(options.clockTolerance ?? '1m', 'idToken.clockTolerance') / 1000,
    maxTokenAgeS: toMs(options.maxTokenAge ?? '10m', 'idToken.maxTokenAge') / 1000,
  };
}

function checkLoginOptions(options: LoginOptions): [string, string][] {
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument('login() takes an options object.');
  }
  for (const name of ['prompt', 'loginHint'] as const) {
    const value = options[name];
    if (
      value !== undefined &&
      (typeof value !== 'string' || value === '' || hasControlChars(value))
    ) {
      throw invalidArgument(`${name} must be a non-empty string without control characters.`);
    }
  }
  if (options.appState !== undefined) {
    let json: string | undefined;
    try {
      json = JSON.stringify(options.appState);
    } catch {
      json = undefined;
    }
    if (json === undefined) throw invalidArgument('appState must be JSON-serialisable.');
  }
  const extra: [string, string][] = [];
  if (options.extraParams !== undefined) {
    if (typeof options.extraParams !== 'object' || options.extraParams === null) {
      throw invalidArgument('extraParams must be an object of string parameters.');
    }
    for (const [name, value] of Object.entries(options.extraParams)) {
      if (RESERVED_PARAMS.has(name)) {
        throw invalidArgument(
          `extraParams cannot set "${name}": tokenwarden sets it (use the login() option where there is one).`,
        );
      }
      if (typeof value !== 'string') {
        throw invalidArgument(`extraParams.${name} must be a string.`);
      }
      extra.push([name, value]);
    }
  }
  return extra;
}

function metadataUrl(json: Readonly<Record<string, unknown>>, name: string): URL | undefined {
  const value = json[name];
  if (value === undefined || value === null) return undefined;
  const url = typeof value === 'string' ? parseUrl(value) : undefined;
  if (url === undefined || !isSecureTransport(url) || url.hash !== '' || url.username !== '') {
    throw new TokenWardenError(
      'ERR_INVALID_RESPONSE',
      `The server metadata has an unusable ${name}: it must be an https URL (http only on loopback) without fragment or credentials.`,
    );
  }
  return url;
}

function idTokenError(what: string, credentialId: string): TokenWardenError {
  return new TokenWardenError(
    'ERR_ID_TOKEN_INVALID',
    `The ID token of the sign-in is invalid: ${what}. The sign-in was not stored; sign in again.`,
    { credentialId },
  );
}

function joseReason(error: unknown): string {
  const { code, claim } = (error ?? {}) as { code?: unknown; claim?: unknown };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'it has expired (exp)';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return typeof claim === 'string'
        ? `its ${sanitizeText(claim, 32)} claim failed the check`
        : 'a claim failed the check';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'it is signed with an algorithm that is not allowed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'its signature does not verify';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return "no single key of the issuer's JWKS matches it";
    case 'ERR_JWKS_TIMEOUT':
      return "the issuer's JWKS did not arrive in time";
    case 'ERR_JWKS_INVALID':
      return "the issuer's JWKS is not a valid key set";
    default:
      return typeof code === 'string'
        ? `it failed verification (${sanitizeText(code, 64)})`
        : 'it failed verification';
  }
}
