import EventEmitter from 'eventemitter3';
import type { KyInstance } from 'ky';
import type { DpopAlgorithm, DpopKey, DpopKeyInfo } from './dpop/key.js';
import { DpopNonces } from './dpop/nonces.js';
import {
  type BlockReason,
  invalidArgument,
  OAuthError,
  ReauthRequiredError,
  TokenWardenError,
} from './errors.js';
import type { Logger, RefreshReason, WardenEvents } from './events.js';
import { abortError, anySignal, raceSignal } from './internal/abort.js';
import { timingSafeEqual } from './internal/compare.js';
import { type Duration, toMs } from './internal/duration.js';
import { errorKind } from './internal/error-kind.js';
import { INSPECT } from './internal/redact.js';
import { isSecureTransport, parseOrigin } from './internal/url.js';
import type { RevokeOptions, RevokeResult, ServerRevocation } from './revoke.js';
import type {
  DpopContext,
  SkewClock,
  SourceContext,
  SourceInfo,
  TokenSource,
} from './sources/types.js';
import type {
  RecordMeta,
  StoreChange,
  StoredRecord,
  StoreLease,
  TokenStore,
} from './stores/types.js';
import { AccessToken, TokenSet } from './token.js';
import { createAuthenticatedFetch } from './transport/fetch.js';
import { type CreateKyOptions, createKy } from './transport/ky.js';
import type {
  AttachedToken,
  BlockAction,
  ForeignOriginAction,
  RequestOutcome,
  TransportHost,
} from './transport/types.js';

/**
 * The option key that lets a credential send tokens over plain `http:` to hosts other than
 * loopback. Deliberately awkward: tokens sent this way can be read by anyone on the path.
 *
 * @example
 * ```ts
 * import { allowInsecureRequests } from 'tokenwarden';
 * // DANGER: only for a test network you control.
 * warden.register('lab', { source, origins: ['http://lab.internal'], [allowInsecureRequests]: true });
 * ```
 */
export const allowInsecureRequests: unique symbol = Symbol('tokenwarden.allowInsecureRequests');

/**
 * Backoff settings for failed refreshes.
 *
 * @example
 * ```ts
 * warden.register('billing', {
 *   source,
 *   origins: ['https://billing.example.com'],
 *   backoff: { initial: '2s', max: '10m' },
 * });
 * ```
 */
export interface BackoffOptions {
  /**
   * Delay after the first failure; doubles with each further one.
   * @default '1s'
   */
  initial?: Duration;
  /**
   * Longest delay between attempts (a `Retry-After` longer than this is still honoured, up to an hour).
   * @default '5m'
   */
  max?: Duration;
}

/**
 * DPoP options of a credential (`register(id, { dpop: { ... } })`).
 *
 * @example
 * ```ts
 * import type { DpopOptions } from 'tokenwarden';
 * const dpop: DpopOptions = { algorithm: 'EdDSA' };
 * const api = warden.register('api', { source, origins: ['https://api.example.com'], dpop });
 * console.log(api.status().dpop?.thumbprint); // the key's JWK thumbprint, never the key
 * ```
 */
export interface DpopOptions {
  /**
   * The key's signature algorithm.
   * @default 'ES256'
   */
  algorithm?: DpopAlgorithm;
  /**
   * Accept a `Bearer` token when the authorization server ignores the proof (a downgrade: the
   * token is then not bound to the key). Off by default: such an answer is an error.
   * @default false
   */
  allowBearer?: boolean;
}

/**
 * How a credential behaves. Only `source` and `origins` are required; every other option has a
 * safe default, and `createWarden({ defaults })` can change the defaults for all credentials.
 *
 * @example
 * ```ts
 * warden.register('billing', {
 *   source: clientCredentials({ issuer: 'https://auth.example.com', clientId, clientSecret }),
 *   origins: ['https://billing.example.com'],
 *   keepFresh: true,
 * });
 * ```
 */
export interface CredentialOptions extends CredentialTuning {
  /**
   * Binds the tokens to a key pair (DPoP, RFC 9449): token requests and API requests carry a
   * fresh proof signed by a private key that never leaves the credential, so a stolen token is
   * useless on its own. `true` uses ES256; see {@link DpopOptions}. The server must support
   * DPoP for this client: a `Bearer` answer fails with `ERR_INVALID_RESPONSE` unless
   * `allowBearer` is set.
   * @default false
   */
  dpop?: boolean | DpopOptions;
  /** Where tokens come from: {@link clientCredentials}, {@link refreshToken}, {@link apiKey}, {@link customSource}. */
  source: TokenSource;
  /**
   * The origins (`https://host[:port]`) this credential's token may be sent to. Requests to any
   * other origin are refused (or sent without a token, see `foreignOrigin`).
   */
  origins: readonly (string | URL)[];
  /**
   * Lets this credential send tokens over plain `http:` to non-loopback hosts. Dangerous.
   * @default false
   */
  [allowInsecureRequests]?: boolean;
}

/**
 * The tunable part of {@link CredentialOptions}, shared with `createWarden({ defaults })`.
 *
 * @example
 * ```ts
 * import { createWarden } from 'tokenwarden';
 * const warden = createWarden({
 *   defaults: { keepFresh: true, timeout: '10s', backoff: { max: '1m' } },
 * });
 * ```
 */
export interface CredentialTuning {
  /**
   * What happens to a request for an origin outside `origins`: `'block'` refuses it with
   * `ERR_ORIGIN_NOT_ALLOWED`; `'send-without-token'` sends it with no credential header. Both emit
   * `blocked`.
   * @default 'block'
   */
  foreignOrigin?: ForeignOriginAction;
  /**
   * Refresh on a timer, before expiry, even when no request comes. Otherwise the first request
   * inside the refresh window starts a background refresh.
   * @default false
   */
  keepFresh?: boolean;
  /**
   * How long before expiry a token is refreshed in the background. By default a fifth of the
   * token's lifetime, capped at 5 minutes, plus up to 50% random jitter so that a fleet does not
   * refresh in lockstep; never more than half the lifetime, so short-lived tokens are not
   * refreshed on every request.
   * @default derived from the lifetime
   */
  refreshWindow?: Duration;
  /**
   * Lifetime assumed for a token whose response states none (no `expires_in`, not a JWT with `exp`).
   * A 401 still triggers a refresh if the server expires it sooner.
   * @default '1h'
   */
  defaultLifetime?: Duration;
  /**
   * Timeout of one token request.
   * @default '30s'
   */
  timeout?: Duration;
  /**
   * Largest token-endpoint response body read, in bytes; larger ones are aborted while streaming.
   * @default 65536
   */
  maxResponseBytes?: number;
  /**
   * Most redirects followed by an authenticated request.
   * @default 20
   */
  maxRedirects?: number;
  /**
   * Loop guard: most forced refreshes (after 401s) in any one minute; more fail with `ERR_REFRESH_LOOP`.
   * @default 5
   */
  maxForcedRefreshesPerMinute?: number;
  /**
   * How long a credential's refresh lock lives in a shared store (Web Locks aside) if its holder
   * dies without releasing it; the others then proceed. Longer than `timeout`, so a live holder
   * finishes, or gives up its token request, before its lock can expire.
   * @default `timeout` plus 15 seconds
   */
  lockTtl?: Duration;
  /**
   * How often usage metadata (last used, counts) is written to the store. Usage is batched so
   * that requests never wait for, nor multiply, store writes; a closing credential flushes it.
   * @default '30s'
   */
  metadataFlushInterval?: Duration;
  /**
   * Backoff after failed refreshes (network errors, 5xx).
   * @default { initial: '1s', max: '5m' }
   */
  backoff?: BackoffOptions;
}

/**
 * Options of {@link Credential.getToken}.
 *
 * @example
 * ```ts
 * // The client secret was rotated elsewhere: drop the cached token, but wait at most 5 s.
 * const token = await billing.getToken({ forceRefresh: true, signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface GetTokenOptions {
  /**
   * Get a new token even if the current one is valid.
   * @default false
   */
  forceRefresh?: boolean;
  /**
   * Stop waiting (the shared refresh goes on for others).
   * @default undefined (wait until the token is obtained or the refresh fails)
   */
  signal?: AbortSignal;
}

/**
 * The state a credential is in.
 *
 * @example
 * ```ts
 * import type { CredentialState } from 'tokenwarden';
 * const state: CredentialState = billing.status().state;
 * if (state === 'reauth-required') showSignIn();
 * ```
 */
export type CredentialState =
  /** No token yet. */
  | 'empty'
  /** A valid token is held. */
  | 'valid'
  /** The last token expired and no new one has been obtained yet. */
  | 'expired'
  /** The grant was rejected: new credentials are needed. */
  | 'reauth-required'
  /** The credential or its warden was closed. */
  | 'closed';

/**
 * A snapshot of a credential, without secrets.
 *
 * @example
 * ```ts
 * import type { CredentialStatus } from 'tokenwarden';
 * const inventory: CredentialStatus[] = warden.credentials().map((credential) => credential.status());
 * console.table(inventory); // id, state, expiresAt, failures, requests, ... and no secret
 * ```
 */
export interface CredentialStatus {
  /** The credential id. */
  readonly id: string;
  /** Its state. */
  readonly state: CredentialState;
  /** Whether a refresh is in flight. */
  readonly refreshing: boolean;
  /** The source, described. */
  readonly source: SourceInfo;
  /** Expiry of the current token, epoch ms. */
  readonly expiresAt?: number;
  /** When the current token was received, epoch ms. */
  readonly issuedAt?: number;
  /** When a background refresh becomes due, epoch ms. */
  readonly refreshAt?: number;
  /** Granted scopes. */
  readonly scope?: readonly string[];
  /** Consecutive failed refreshes. */
  readonly failures: number;
  /** When the next refresh attempt may start after failures, epoch ms. */
  readonly retryAt?: number;
  /** Code of the last refresh error, if the last refresh failed. */
  readonly lastError?: string;
  /** Requests sent with this credential. */
  readonly requests: number;
  /** When the credential last sent a request, epoch ms. */
  readonly lastUsedAt?: number;
  /**
   * The DPoP key the tokens are bound to: its algorithm and RFC 7638 thumbprint (never the key).
   * Absent for bearer credentials, and before a DPoP-bound credential has a key.
   */
  readonly dpop?: DpopKeyInfo;
}

/** What a credential needs from its warden. @internal */
export interface CredentialRuntime {
  readonly store: TokenStore;
  readonly fetch: typeof fetch;
  readonly clock: SkewClock;
  readonly logger: Logger | undefined;
  emit<K extends keyof WardenEvents>(event: K, ...args: WardenEvents[K]): void;
  forget(id: string): void;
  /** Records one authenticated request for `warden.metrics()` (optional: absent in tests). */
  observe?(id: string, outcome: RequestOutcome, tokenIssuedAt: number | undefined): void;
  /** A request or `getToken()` wants a token (for the use-after-revoke anomaly). */
  attempt?(id: string): void;
}

const REAUTH_ERRORS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client']);
const MINUTE = 60_000;
const MAX_TIMER = 2_147_483_647;
/** How long after a failed first read of the store the next request reads it again. */
const LOAD_RETRY_MS = 5_000;
const DEFAULT_HEADER = 'Authorization';
/** How many replaced, unexpired access tokens a credential remembers for `revoke()`. */
const MAX_SUPERSEDED = 8;

let readPendingUses: (credential: Credential) => number;

/**
 * Requests this credential counted that no store write has carried yet (for the inventory,
 * which adds them to the stored count). @internal
 */
export function pendingUses(credential: Credential): number {
  return readPendingUses(credential);
}

/**
 * One registered credential: its token lifecycle and its authenticated clients. Created by
 * `warden.register()`.
 *
 * @example
 * ```ts
 * const billing = warden.register('billing', { source, origins: ['https://billing.example.com'] });
 * const res = await billing.fetch('https://billing.example.com/v1/ping');
 * const api = billing.ky({ prefix: 'https://billing.example.com/v1/' });
 * billing.on('refresh', ({ expiresAt }) => console.log('new token until', new Date(expiresAt)));
 * ```
 */
export class Credential {
  static {
    readPendingUses = (credential) => credential.#pendingUses;
  }
  /** The credential id. */
  readonly id: string;
  /**
   * A fetch-compatible function that attaches the token, enforces the origin, transport and
   * redirect policy, and retries once after a 401. Pass it to any fetch-based client.
   * @throws {@link BlockedRequestError} `ERR_ORIGIN_NOT_ALLOWED`, `ERR_INSECURE_TRANSPORT` or
   * `ERR_TOKEN_IN_URL` when the policy refuses the request; {@link TokenWardenError} `ERR_REDIRECT`
   * for a redirect it cannot follow safely, `ERR_INVALID_ARGUMENT` for a relative URL in Node, and
   * the codes of {@link Credential.getToken} (`ERR_REAUTH_REQUIRED`, `ERR_CLOSED`, ...) when no
   * token can be obtained. After a 401 only `ERR_REAUTH_REQUIRED` is thrown; other refresh
   * failures return the 401. An abort rejects with the signal's reason, a network failure with
   * the underlying fetch's error.
   */
  readonly fetch: typeof fetch;

  readonly #runtime: CredentialRuntime;
  readonly #events = new EventEmitter<WardenEvents>();
  readonly #abort = new AbortController();
  readonly #origins: ReadonlySet<string>;
  readonly #allowInsecure: boolean;
  readonly #foreignOrigin: ForeignOriginAction;
  readonly #refreshWindowMs: number | undefined;
  readonly #defaultLifetimeMs: number;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #maxRedirects: number;
  readonly #maxForced: number;
  readonly #backoffInitial: number;
  readonly #backoffMax: number;
  readonly #keepFresh: boolean;
  readonly #flushIntervalMs: number;
  readonly #lockTtlMs: number;
  #source: TokenSource;
  #tokens: TokenSet | undefined;
  /**
   * Access tokens this instance replaced before they expired (most recent last): they stay valid
   * at the server until then, so `revoke()` revokes them too.
   */
  #superseded: TokenSet[] = [];
  /** DPoP settings, when the credential is DPoP-bound. */
  readonly #dpop: { algorithm: DpopAlgorithm; allowBearer: boolean } | undefined;
  readonly #dpopNonces = new DpopNonces();
  /** The key the tokens are bound to (from the store, or generated for the next token). */
  #dpopKey: DpopKey | undefined;
  #dpopKeyPending: Promise<DpopKey> | undefined;
  #generation = 0;
  #refreshAt = Number.POSITIVE_INFINITY;
  #inflight: Promise<TokenSet> | undefined;
  #loading: Promise<void> | undefined;
  #failures = 0;
  #retryAt: number | undefined;
  #lastError: TokenWardenError | undefined;
  #reauth: TokenWardenError | undefined;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #forced: number[] = [];
  #requests = 0;
  #meta: { -readonly [K in keyof RecordMeta]: RecordMeta[K] } = {
    createdAt: 0,
    refreshedAt: 0,
    uses: 0,
    refreshes: 0,
  };
  #metaDirty = false;
  /** Uses counted here that no successful write has carried yet. */
  #pendingUses = 0;
  /** The version of the stored record this credential last read or wrote. */
  #version: number | undefined;
  #unwatch: (() => void) | undefined;
  #loadFailedAt: number | undefined;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  /** @internal Use `warden.register()`. */
  constructor(id: string, options: CredentialOptions, runtime: CredentialRuntime) {
    this.id = id;
    this.#runtime = runtime;
    this.#source = checkSource(options.source);
    this.#allowInsecure = options[allowInsecureRequests] === true;
    if (!Array.isArray(options.origins)) {
      throw invalidArgument(
        `Credential "${id}": origins must be an array of origins such as ['https://api.example.com'].`,
      );
    }
    this.#origins = new Set(
      options.origins.map((origin, i) => this.#checkOrigin(origin, `origins[${i}]`)),
    );
    const foreign = options.foreignOrigin ?? 'block';
    if (foreign !== 'block' && foreign !== 'send-without-token') {
      throw invalidArgument(`foreignOrigin must be 'block' or 'send-without-token'.`);
    }
    this.#foreignOrigin = foreign;
    this.#keepFresh = options.keepFresh === true;
    this.#refreshWindowMs =
      options.refreshWindow === undefined
        ? undefined
        : toMs(options.refreshWindow, 'refreshWindow');
    this.#defaultLifetimeMs = toMs(options.defaultLifetime ?? '1h', 'defaultLifetime');
    if (this.#defaultLifetimeMs < 1_000)
      throw invalidArgument('defaultLifetime must be at least 1s.');
    this.#timeoutMs = toMs(options.timeout ?? '30s', 'timeout');
    this.#maxResponseBytes = positiveInteger(
      options.maxResponseBytes ?? 65_536,
      'maxResponseBytes',
    );
    this.#maxRedirects = nonNegativeInteger(options.maxRedirects ?? 20, 'maxRedirects');
    this.#maxForced = positiveInteger(
      options.maxForcedRefreshesPerMinute ?? 5,
      'maxForcedRefreshesPerMinute',
    );
    this.#backoffInitial = toMs(options.backoff?.initial ?? '1s', 'backoff.initial');
    this.#backoffMax = toMs(options.backoff?.max ?? '5m', 'backoff.max');
    this.#flushIntervalMs = toMs(options.metadataFlushInterval ?? '30s', 'metadataFlushInterval');
    this.#lockTtlMs =
      options.lockTtl === undefined ? this.#timeoutMs + 15_000 : toMs(options.lockTtl, 'lockTtl');
    if (this.#lockTtlMs <= this.#timeoutMs) {
      throw invalidArgument(
        'lockTtl must be longer than timeout: a refresh lock that expires under a live holder lets a second instance redeem the same refresh token.',
      );
    }
    this.#dpop = parseDpop(options.dpop);
    this.fetch = createAuthenticatedFetch(this.#host(this.#origins));
    this.#bindSource();
  }

  /** Hands the source its binding to this credential (for sources that sign users in). */
  #bindSource(): void {
    this.#source.attach?.({
      credentialId: this.id,
      context: (signal) =>
        this.#sourceContext(
          this.#tokens,
          signal ? anySignal([this.#abort.signal, signal]) : this.#abort.signal,
        ),
      install: (tokens) => this.#install(tokens),
    });
  }

  /**
   * A ky instance whose requests go through this credential's {@link Credential.fetch}: ky's
   * retries, timeouts and hooks keep working above it. The origin of `prefix` is added to the
   * origins this instance may send the token to (and that of `baseUrl`).
   *
   * @param options - Any ky options except `fetch`, which is always this credential's.
   * @returns A ky instance.
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` when `prefix` or `baseUrl` is not
   * a valid or secure URL, or `fetch` is given.
   * @example
   * ```ts
   * const api = billing.ky({ prefix: 'https://billing.example.com/v1/', retry: 2 });
   * const invoices = await api.get('invoices').json();
   * ```
   */
  ky(options: CreateKyOptions = {}): KyInstance {
    let origins = this.#origins;
    for (const name of ['prefix', 'baseUrl'] as const) {
      const base = options[name];
      // A relative base (browsers) resolves against the page, whose origin must be listed itself.
      if (base === undefined || !isAbsoluteUrl(base)) continue;
      const origin = this.#checkOrigin(base, name);
      if (!origins.has(origin)) origins = new Set([...origins, origin]);
    }
    return createKy(this.#host(origins), options);
  }

  /**
   * The current access token, refreshed first if it is missing or expired (or when forced).
   * Prefer {@link Credential.fetch} and {@link Credential.ky}, which enforce the sending policy.
   *
   * @param options - `forceRefresh` and `signal`.
   * @returns An {@link AccessToken} that prints as `[REDACTED]`.
   * @throws {@link ReauthRequiredError} `ERR_REAUTH_REQUIRED` when the grant was rejected.
   * @throws {@link TokenWardenError} `ERR_CLOSED` when the credential is closed, `ERR_ABORTED` when
   * `signal` aborts, or the code of the failed refresh: from the source (`ERR_OAUTH_ERROR`,
   * `ERR_NETWORK`, `ERR_TIMEOUT`, `ERR_HTTP_STATUS`, `ERR_INVALID_RESPONSE`,
   * `ERR_RESPONSE_TOO_LARGE`, `ERR_SOURCE_FAILED`, ...) or from the store's refresh lock
   * (`ERR_LOCK_TIMEOUT`, `ERR_STORE_UNAVAILABLE`). While backing off after a failure, that
   * failure is thrown again at once.
   * @example
   * ```ts
   * const token = await billing.getToken();
   * grpcMetadata.set('authorization', `Bearer ${token.reveal()}`);
   * ```
   */
  async getToken(options: GetTokenOptions = {}): Promise<AccessToken> {
    this.#runtime.attempt?.(this.id);
    if (options.forceRefresh) {
      await this.#load();
      this.#assertUsable();
      const set = await this.#refresh('forced', options.signal);
      return new AccessToken(this.id, set);
    }
    const set = await this.#current(options.signal);
    return new AccessToken(this.id, set);
  }

  /**
   * A snapshot of the credential's state, without secrets.
   * @returns The status.
   * @throws Never.
   * @example
   * ```ts
   * if (billing.status().state === 'reauth-required') showSignIn();
   * ```
   */
  status(): CredentialStatus {
    const tokens = this.#tokens;
    const now = Date.now();
    let state: CredentialState;
    if (this.#closed) state = 'closed';
    else if (this.#reauth) state = 'reauth-required';
    else if (!tokens) state = 'empty';
    else state = now < tokens.expiresAt ? 'valid' : 'expired';
    const status: { -readonly [K in keyof CredentialStatus]: CredentialStatus[K] } = {
      id: this.id,
      state,
      refreshing: this.#inflight !== undefined,
      source: this.#source.info(),
      failures: this.#failures,
      requests: this.#requests,
    };
    if (tokens) {
      status.expiresAt = tokens.expiresAt;
      status.issuedAt = tokens.issuedAt;
      status.refreshAt = this.#refreshAt;
      if (tokens.scope) status.scope = tokens.scope;
    }
    if (this.#retryAt !== undefined) status.retryAt = this.#retryAt;
    const last = this.#reauth ?? this.#lastError;
    if (last) status.lastError = last.code;
    if (this.#meta.lastUsedAt !== undefined) status.lastUsedAt = this.#meta.lastUsedAt;
    if (this.#dpop && this.#dpopKey) {
      status.dpop = this.#dpopKey.info();
    }
    return status;
  }

  /**
   * Supplies new credentials after `reauth-required` (or at any time): the held tokens are
   * dropped and the next request obtains a token from `source`.
   *
   * @param source - The new source; the current one when omitted (e.g. after fixing a client secret elsewhere).
   * @throws {@link TokenWardenError} `ERR_CLOSED` when the credential is closed,
   * `ERR_INVALID_ARGUMENT` when `source` is not a token source.
   * @example
   * ```ts
   * warden.on('reauth-required', async ({ id }) => {
   *   warden.get(id)?.reauthenticate(refreshToken({ issuer, clientId, refreshToken: await signIn() }));
   * });
   * ```
   */
  reauthenticate(source?: TokenSource): void {
    if (this.#closed) throw closedError(this.id);
    if (source !== undefined) {
      this.#source = checkSource(source);
      this.#bindSource();
    }
    this.#reauth = undefined;
    this.#dpopKey = undefined;
    this.#tokens = undefined;
    this.#superseded = [];
    this.#generation++;
    this.#failures = 0;
    this.#retryAt = undefined;
    this.#lastError = undefined;
    this.#refreshAt = Number.POSITIVE_INFINITY;
    this.#clearTimer();
    this.#meta = { createdAt: 0, refreshedAt: 0, uses: 0, refreshes: 0 };
    this.#metaDirty = false;
    // A stored set belongs to the old grant; never let it supersede the new source.
    this.#loading = this.#runtime.store.delete(this.id).catch(() => {});
  }

  /**
   * Signs this credential out locally: its tokens are wiped from memory and from the store, and
   * every tab and process sharing the store drops them too. Nothing is sent to the server (a
   * later `revoke()` does that). A credential whose source needs a user (a refresh token) is then
   * `reauth-required`; one that can obtain tokens on its own (client credentials, API keys)
   * fetches a new token on its next request.
   *
   * @throws {@link TokenWardenError} `ERR_CLOSED` when the credential is closed. A store that
   * cannot delete the record is reported (a `store-error` event and a log line), not thrown.
   * @example
   * ```ts
   * logoutButton.onclick = async () => { await me.forget(); showSignIn(); };
   * ```
   */
  async forget(): Promise<void> {
    if (this.#closed) throw closedError(this.id);
    this.#forgetLocally();
    await this.#inflight?.catch(() => {});
    await this.#runtime.store.delete(this.id).catch((error: unknown) => {
      this.#storeFailed('delete', 'deleting the stored record failed', error);
    });
  }

  /**
   * Revokes this credential's tokens at the server and wipes every local copy. For OAuth sources
   * this is RFC 7009 at the revocation endpoint: the refresh token first, then the access token,
   * each with its `token_type_hint`; a 200 with any body is success; a 503 is retried after its
   * `Retry-After` (at most `maxAttempts` times, each wait capped by `maxRetryWait`). An
   * {@link apiKey} or {@link customSource} source calls its `revoke` callback; without one it
   * cannot revoke, which the result says (`outcome: 'unsupported'`).
   *
   * An access token replaced by a refresh stays valid at the server until it expires, so the
   * OAuth sources also revoke the access tokens this instance replaced and that have not expired
   * yet (the 8 most recent; see `superseded` in the result). Those replaced in another process
   * are revoked by that process's `revoke()`, or expire.
   *
   * Whatever the server answers, even when it cannot be reached, the tokens are wiped as by
   * {@link Credential.forget}: from memory, from the store, and from every tab and process
   * sharing it. Then a `revoke` event is emitted. Afterwards a credential that can obtain tokens on
   * its own (client credentials, API keys) fetches a new token on its next request; a
   * refresh-token credential is `reauth-required`.
   *
   * @param options - An abort signal and the 503 retry bounds.
   * @returns What was revoked at the server; never rejects because the server failed.
   * @throws {@link TokenWardenError} `ERR_CLOSED` when the credential is closed.
   * @example
   * ```ts
   * const result = await me.revoke();
   * if (!result.revokedAtServer) console.warn('signed out locally only:', result.outcome, result.failures);
   * ```
   * @see https://www.rfc-editor.org/rfc/rfc7009
   */
  async revoke(options: RevokeOptions = {}): Promise<RevokeResult> {
    if (this.#closed) throw closedError(this.id);
    await this.#load();
    await this.#inflight?.catch(() => {});
    const held = this.#tokens;
    const superseded = this.#superseded;
    const source = this.#source;
    // Wiped first, so no request sends a token that is being revoked.
    await this.forget();
    const signal = options.signal
      ? anySignal([this.#abort.signal, options.signal])
      : this.#abort.signal;
    // The revocation code is loaded on first use (an app that never revokes does not ship it),
    // after the wipe, so that nothing waits for it locally.
    const server = await import('./revoke.js').then(
      ({ revokeAtServer }) =>
        revokeAtServer(source, held, this.#sourceContext(held, signal), options, superseded),
      (error: unknown) => notRevoked(held, this.id, error),
    );
    const result: RevokeResult = {
      id: this.id,
      outcome: server.outcome,
      revokedAtServer: server.outcome === 'revoked',
      tokens: server.tokens,
      failures: server.failures,
      superseded: server.superseded,
      wipedLocally: true,
    };
    this.#emit('revoke', {
      id: this.id,
      outcome: result.outcome,
      revokedAtServer: result.revokedAtServer,
      tokens: [...result.tokens],
      failed: result.failures.map((f) => f.token),
    });
    this.#log(result.failures.length > 0 ? 'warn' : 'info', 'credential revoked', {
      id: this.id,
      outcome: result.outcome,
      tokens: result.tokens,
      failures: result.failures.map((f) => `${f.token}: ${f.code}`),
    });
    return result;
  }

  /** Drops the tokens held here (after a local or announced sign-out). */
  #forgetLocally(): void {
    this.#tokens = undefined;
    this.#superseded = [];
    // Tokens bound to the key are gone: the next ones get a new key.
    this.#dpopKey = undefined;
    this.#version = undefined;
    this.#generation++;
    this.#refreshAt = Number.POSITIVE_INFINITY;
    this.#retryAt = undefined;
    this.#lastError = undefined;
    this.#metaDirty = false;
    this.#clearTimer();
    if (this.#needsUser() && !this.#reauth) {
      this.#reauth = new ReauthRequiredError(this.id);
      this.#emit('reauth-required', { id: this.id, error: 'signed_out' });
    }
  }

  /**
   * Listens to this credential's events (the warden receives them too).
   * @param event - The event name.
   * @param listener - The listener.
   * @returns This credential.
   * @throws Never.
   * @example
   * ```ts
   * billing.on('refresh-error', ({ code, retryAt }) => console.warn(code, retryAt));
   * ```
   */
  on<K extends keyof WardenEvents>(event: K, listener: (...args: WardenEvents[K]) => void): this {
    this.#events.on(event, listener as never);
    return this;
  }

  /**
   * Listens to one occurrence of an event.
   * @param event - The event name.
   * @param listener - The listener.
   * @returns This credential.
   * @throws Never.
   * @example
   * ```ts
   * billing.once('refresh', () => console.log('first token'));
   * ```
   */
  once<K extends keyof WardenEvents>(event: K, listener: (...args: WardenEvents[K]) => void): this {
    this.#events.once(event, listener as never);
    return this;
  }

  /**
   * Stops listening.
   * @param event - The event name.
   * @param listener - The listener; all listeners of the event when omitted.
   * @returns This credential.
   * @throws Never.
   * @example
   * ```ts
   * billing.off('refresh', onRefresh);
   * ```
   */
  off<K extends keyof WardenEvents>(event: K, listener?: (...args: WardenEvents[K]) => void): this {
    this.#events.off(event, listener as never);
    return this;
  }

  /**
   * Stops this credential: timers cleared, a token request in flight aborted, listeners removed.
   * Later calls fail with `ERR_CLOSED`. Stored tokens are kept (use `revoke()` to wipe them).
   * @throws Never: a second call does nothing, and a failed usage write is reported, not thrown.
   * @example
   * ```ts
   * await billing.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    this.#abort.abort(closedError(this.id));
    this.#events.removeAllListeners();
    this.#unwatch?.();
    this.#runtime.forget(this.id);
    await this.#inflight?.catch(() => {});
    await this.#flushMeta();
  }

  /**
   * @returns `Credential(<id>)`.
   * @throws Never.
   */
  toString(): string {
    return `Credential(${this.id})`;
  }

  /**
   * @returns The status, which holds no secret.
   * @throws Never.
   */
  toJSON(): CredentialStatus {
    return this.status();
  }

  /** @internal */
  [INSPECT](): string {
    return `Credential ${JSON.stringify(this.status())}`;
  }

  #checkOrigin(value: unknown, name: string): string {
    const origin = parseOrigin(value, `Credential "${this.id}": ${name}`);
    if (!this.#allowInsecure && !isSecureTransport(new URL(origin))) {
      throw invalidArgument(
        `Credential "${this.id}": ${name} uses plain http to a non-loopback host; tokens would travel in clear text. Use https.`,
      );
    }
    return origin;
  }

  #host(origins: ReadonlySet<string>): TransportHost {
    const header = this.#source.header?.name ?? DEFAULT_HEADER;
    const credentialHeaders = [
      ...new Set([header, DEFAULT_HEADER, 'DPoP'].map((h) => h.toLowerCase())),
    ];
    return {
      id: this.id,
      origins,
      allowInsecure: this.#allowInsecure,
      foreignOrigin: this.#foreignOrigin,
      credentialHeaders,
      fetch: this.#runtime.fetch,
      maxRedirects: this.#maxRedirects,
      acquire: async (signal) => {
        this.#runtime.attempt?.(this.id);
        return this.#attach(await this.#current(signal));
      },
      recover: (generation, signal) => this.#recover(generation, signal),
      blocked: (reason, url, action) => this.#blocked(reason, url, action),
      peek: () => (this.#tokens ? this.#attach(this.#tokens) : undefined),
      observed: (outcome) => this.#observed(outcome),
    };
  }

  #blocked(reason: BlockReason, url: string, action: BlockAction | undefined): void {
    const resolved =
      action ??
      (reason === 'redirect' ||
      (reason === 'origin-not-allowed' && this.#foreignOrigin === 'send-without-token')
        ? 'stripped'
        : 'refused');
    this.#emit('blocked', { id: this.id, reason, url, action: resolved });
    this.#log('warn', 'request blocked by policy', { id: this.id, reason, url, action: resolved });
  }

  #observed(outcome: RequestOutcome): void {
    if (!outcome.authenticated) return;
    this.#runtime.observe?.(this.id, outcome, this.#tokens?.issuedAt);
    this.#requests++;
    this.#meta.uses++;
    this.#pendingUses++;
    this.#meta.lastUsedAt = Date.now();
    this.#metaDirty = true;
    if (this.#flushTimer === undefined && !this.#closed) {
      this.#flushTimer = setTimeout(
        () => {
          this.#flushTimer = undefined;
          void this.#flushMeta();
        },
        Math.min(this.#flushIntervalMs, MAX_TIMER),
      );
      (this.#flushTimer as { unref?: () => void }).unref?.();
    }
  }

  /** Writes batched usage metadata with the current tokens. */
  async #flushMeta(): Promise<void> {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const tokens = this.#tokens;
    if (!this.#metaDirty || !tokens || this.#reauth) return;
    this.#metaDirty = false;
    if (await this.#write(tokens, this.#version)) {
      // Another process stored a newer set: never overwrite it with ours; take it over, and the
      // usage counted here goes out with the next write.
      const latest = await this.#runtime.store.get(this.id).catch(() => undefined);
      if (latest && this.#adoptable(latest.tokens)) this.#adopt(latest, 'shared', Date.now());
      else if (latest) this.#version = latest.version;
      this.#metaDirty = true;
    }
  }

  #attach(set: TokenSet): AttachedToken {
    const raw = set.revealAccessToken();
    const header = this.#source.header;
    const scheme = header?.scheme === undefined ? normaliseScheme(set.tokenType) : header.scheme;
    // A DPoP-bound token travels with a proof of the key on every request.
    const dpop = scheme === 'DPoP' ? this.#dpopContext() : undefined;
    return {
      header: header?.name ?? DEFAULT_HEADER,
      value: scheme === null ? raw : `${scheme} ${raw}`,
      raw,
      generation: this.#generation,
      ...(dpop ? { dpop } : {}),
    };
  }

  /** A usable token set, refreshing first only when none is valid. */
  async #current(signal?: AbortSignal | null): Promise<TokenSet> {
    await this.#load();
    this.#assertUsable();
    const now = Date.now();
    const tokens = this.#tokens;
    if (tokens && this.#usable(tokens, now)) {
      if (now >= this.#refreshAt && !this.#backingOff(now) && !this.#inflight) {
        // The caller goes on with the valid token; the refresh runs behind it.
        this.#refresh('proactive').catch(() => {});
      }
      return tokens;
    }
    if (!this.#inflight && this.#backingOff(now) && this.#lastError) {
      // Fail fast instead of hammering a failing token endpoint; the error says when to retry.
      throw this.#lastError;
    }
    return this.#refresh('initial', signal);
  }

  async #recover(generation: number, signal?: AbortSignal | null): Promise<AttachedToken> {
    await this.#load();
    this.#assertUsable();
    const tokens = this.#tokens;
    if (generation !== this.#generation && tokens && this.#usable(tokens, Date.now())) {
      // Another caller already replaced the token that failed.
      return this.#attach(tokens);
    }
    if (!this.#inflight) {
      const now = Date.now();
      this.#forced = this.#forced.filter((t) => now - t < MINUTE);
      if (this.#forced.length >= this.#maxForced) {
        this.#log('warn', 'forced refresh refused by loop guard', {
          id: this.id,
          limit: this.#maxForced,
        });
        throw new TokenWardenError(
          'ERR_REFRESH_LOOP',
          `Credential "${this.id}" was rejected with 401 after ${this.#maxForced} refreshes within a minute; not refreshing again. Check that the API accepts tokens from this source.`,
          { credentialId: this.id },
        );
      }
      this.#forced.push(now);
    }
    return this.#attach(await this.#refresh('forced', signal));
  }

  #refresh(reason: RefreshReason, signal?: AbortSignal | null): Promise<TokenSet> {
    let flight = this.#inflight;
    if (!flight) {
      flight = this.#obtain(reason).finally(() => {
        if (this.#inflight === flight) this.#inflight = undefined;
      });
      this.#inflight = flight;
      // Background refreshes have no awaiting caller; their failures surface as events.
      flight.catch(() => {});
    }
    return raceSignal(flight, signal);
  }

  async #obtain(reason: RefreshReason): Promise<TokenSet> {
    const started = Date.now();
    this.#clearTimer();
    const store = this.#runtime.store;
    let lease: StoreLease | undefined;
    try {
      // The set this refresh replaces. Compared with it, not with what is held when the lock is
      // granted: an announcement may have brought the other holder's set here meanwhile.
      const replacing = this.#tokens;
      let previous = replacing;
      let expected: number | null | undefined = this.#version;
      if (store.lock) {
        lease = await store.lock(this.id, { ttlMs: this.#lockTtlMs, signal: this.#abort.signal });
        // Double-checked refresh: whoever held the lock before may have refreshed already.
        const latest = await store.get(this.id).catch((error: unknown) => {
          // Without the latest record there is no telling whether another holder already
          // redeemed the refresh token: no refresh.
          throw error instanceof TokenWardenError
            ? error
            : new TokenWardenError(
                'ERR_STORE_UNAVAILABLE',
                `The ${store.kind} store could not be read, so credential "${this.id}" was not refreshed.`,
                { credentialId: this.id },
              );
        });
        expected = latest ? latest.version : null;
        // Signed out (in another tab or process) while waiting: the refresh token is not redeemed.
        if (this.#reauth) throw this.#reauth;
        if (
          latest &&
          this.#usable(latest.tokens, Date.now()) &&
          !(replacing && sameAccessToken(latest.tokens, replacing))
        ) {
          if (this.#tokens && sameAccessToken(latest.tokens, this.#tokens)) {
            // Already taken over from the announcement.
            this.#version = latest.version;
            return this.#tokens;
          }
          this.#adopt(latest, 'shared', started);
          return latest.tokens;
        }
        // The stored set carries the newest refresh token, whoever stored it, and the key it
        // is bound to.
        if (latest) previous = latest.tokens;
        if (latest?.dpopKey) this.#dpopKey = latest.dpopKey;
      }
      if (this.#signInNeeded(previous)) {
        // A sign-in waits for a user, for minutes maybe: not under the refresh lock, whose TTL
        // would end it. Its result is stored under the lock afterwards, like an install.
        await lease?.release().catch(() => {});
        lease = undefined;
        if (this.#dpop) await this.#ensureDpopKey();
        const set = await this.#source.obtain(this.#sourceContext(previous, this.#abort.signal));
        if (this.#closed) throw closedError(this.id);
        await this.#storeSignIn(set, reason, started);
        return set;
      }
      // The key exists before the token it binds, so both are stored together.
      if (this.#dpop) await this.#ensureDpopKey();
      const signal = lease ? anySignal([this.#abort.signal, lease.signal]) : this.#abort.signal;
      const set = await this.#source.obtain(this.#sourceContext(previous, signal));
      if (this.#closed) throw closedError(this.id);
      // Durably stored before anyone is handed the new token or the lock is released.
      const winner = await this.#persist(set, expected, previous, lease);
      if (winner) {
        this.#adopt(winner, 'shared', started);
        return winner.tokens;
      }
      const oldRefresh = previous?.revealRefreshToken();
      const newRefresh = set.revealRefreshToken();
      const rotated =
        oldRefresh !== undefined &&
        newRefresh !== undefined &&
        !timingSafeEqual(oldRefresh, newRefresh);
      this.#use(set, reason, started, rotated, 'token refreshed');
      return set;
    } catch (caught) {
      if (caught !== undefined && caught === this.#reauth) throw caught; // reported already
      throw this.#failed(reason, caught);
    } finally {
      await lease?.release().catch(() => {});
    }
  }

  /**
   * Whether, without its tokens, the credential can only wait for the app to sign a user in
   * again: a refresh token, or a browser sign-in (a device-flow source signs in by itself).
   */
  #needsUser(): boolean {
    return this.#source.kind === 'refresh_token' || this.#source.kind === 'authorization_code';
  }

  /**
   * Stores and starts using a token set the source obtained on its own (a sign-in), under the
   * refresh lock like a refresh, after any refresh in flight.
   */
  async #install(set: TokenSet): Promise<void> {
    if (this.#closed) throw closedError(this.id);
    if (!(set instanceof TokenSet)) {
      throw invalidArgument(`Credential "${this.id}": install() needs a TokenSet.`);
    }
    const started = Date.now();
    await this.#load();
    await this.#inflight?.catch(() => {});
    await this.#storeSignIn(set, 'initial', started);
  }

  /**
   * Stores a token set a user's sign-in produced and starts using it: under the refresh lock,
   * replacing whatever the store holds, ending `reauth-required`.
   */
  async #storeSignIn(set: TokenSet, reason: RefreshReason, started: number): Promise<void> {
    const store = this.#runtime.store;
    let lease: StoreLease | undefined;
    try {
      let expected: number | null | undefined = this.#version;
      if (store.lock) {
        lease = await store.lock(this.id, { ttlMs: this.#lockTtlMs, signal: this.#abort.signal });
        const latest = await store.get(this.id);
        expected = latest ? latest.version : null;
      }
      if (this.#closed) throw closedError(this.id);
      const previous = this.#tokens;
      this.#reauth = undefined;
      const winner = await this.#persist(set, expected, previous, lease);
      if (winner) {
        throw new TokenWardenError(
          'ERR_STORE_CONFLICT',
          `Another writer kept replacing the stored token set of credential "${this.id}"; the sign-in was not stored. Try again.`,
          { credentialId: this.id },
        );
      }
      this.#use(set, reason, started, false, 'token set installed');
    } finally {
      await lease?.release().catch(() => {});
    }
  }

  /** Whether obtaining a token now means a user's sign-in (an interactive source, no refresh token). */
  #signInNeeded(current: TokenSet | undefined): boolean {
    return this.#source.interactive === true && current?.hasRefreshToken !== true;
  }

  /** What the source gets for one token or revocation request. */
  #sourceContext(current: TokenSet | undefined, signal: AbortSignal): SourceContext {
    return {
      credentialId: this.id,
      current,
      signal,
      fetch: this.#runtime.fetch,
      timeoutMs: this.#timeoutMs,
      maxResponseBytes: this.#maxResponseBytes,
      defaultLifetimeMs: this.#defaultLifetimeMs,
      clock: this.#runtime.clock,
      dpop: this.#dpopContext(),
    };
  }

  /** The DPoP prover of this credential, or `undefined` when it is not DPoP-bound. */
  #dpopContext(): DpopContext | undefined {
    const options = this.#dpop;
    if (!options) return undefined;
    // The proof code (and the part of jose it needs) is loaded on first use, so an app without
    // DPoP-bound credentials does not ship it.
    const prover = async () => {
      const { dpopProver } = await import('./dpop/proof.js');
      return dpopProver(await this.#ensureDpopKey(), this.#dpopNonces, this.#runtime.clock);
    };
    return {
      allowBearer: options.allowBearer,
      thumbprint: async () => (await this.#ensureDpopKey()).thumbprint,
      proof: async (server, method, url, accessToken) =>
        (await prover()).proof(server, method, url, accessToken),
      nonce: (server, url) => this.#dpopNonces.get(server, url.origin),
      learn: (server, url, headers) => this.#dpopNonces.learn(server, url.origin, headers),
    };
  }

  /**
   * The DPoP key: the one the stored record carries, else a new one (kept for the next write).
   * Non-extractable where the store keeps CryptoKeys as they are (IndexedDB).
   */
  #ensureDpopKey(): Promise<DpopKey> {
    if (this.#dpopKey) return Promise.resolve(this.#dpopKey);
    const options = this.#dpop as { algorithm: DpopAlgorithm };
    this.#dpopKeyPending ??= import('./dpop/key.js')
      .then(({ DpopKey }) =>
        DpopKey.generate(options.algorithm, this.#runtime.store.keepsCryptoKeys !== true),
      )
      .then((key) => {
        this.#dpopKey ??= key;
        return this.#dpopKey;
      })
      .finally(() => {
        this.#dpopKeyPending = undefined;
      });
    return this.#dpopKeyPending;
  }

  /** Whether a token set found in the store (or announced) should replace ours without a refresh. */
  #adoptable(candidate: TokenSet): boolean {
    const ours = this.#tokens;
    if (!this.#usable(candidate, Date.now())) return false;
    return !ours || !timingSafeEqual(candidate.revealAccessToken(), ours.revealAccessToken());
  }

  /** Takes over a token set that another tab, process or instance obtained. */
  #adopt(record: StoredRecord, reason: RefreshReason, started: number): void {
    if (record.dpopKey) this.#dpopKey = record.dpopKey;
    this.#version = record.version;
    this.#meta = mergeMeta(record.meta, this.#meta, this.#pendingUses);
    this.#use(record.tokens, reason, started, false, 'token taken over from the store');
  }

  /**
   * Starts using a new token set (refreshed, signed in or taken over): it replaces the held
   * one, ends any failure streak, schedules the next refresh, and is reported as `refresh`.
   */
  #use(
    set: TokenSet,
    reason: RefreshReason,
    started: number,
    rotated: boolean,
    message: string,
  ): void {
    this.#supersede(this.#tokens, set);
    this.#tokens = set;
    this.#generation++;
    this.#failures = 0;
    this.#retryAt = undefined;
    this.#lastError = undefined;
    this.#refreshAt = this.#computeRefreshAt(set);
    this.#schedule(this.#refreshAt);
    const durationMs = Date.now() - started;
    this.#emit('refresh', { id: this.id, reason, expiresAt: set.expiresAt, rotated, durationMs });
    this.#log('info', message, {
      id: this.id,
      reason,
      expiresAt: set.expiresAt,
      rotated,
      durationMs,
    });
  }

  /** Remembers a replaced set whose access token is still valid, for `revoke()`. */
  #supersede(previous: TokenSet | undefined, next: TokenSet): void {
    const now = Date.now();
    this.#superseded = this.#superseded.filter((set) => set.expiresAt > now);
    if (
      previous === undefined ||
      previous.expiresAt <= now ||
      previous.revealAccessToken() === next.revealAccessToken()
    ) {
      return;
    }
    this.#superseded.push(previous);
    if (this.#superseded.length > MAX_SUPERSEDED) this.#superseded.shift();
  }

  /** A change announced by the store (another tab or process wrote or deleted the record). */
  #changed(change: StoreChange): void {
    if (this.#closed) return;
    if (change.record === undefined) {
      this.#forgetLocally();
      return;
    }
    if (!this.#reauth && this.#adoptable(change.record.tokens)) {
      this.#adopt(change.record, 'shared', Date.now());
    }
  }

  /**
   * Stores a new set with its metadata. Returns the record that won instead when a newer one
   * was written meanwhile (the lock expired under a slow holder): that one is never overwritten.
   * `replaced` is the set this one was obtained from (its refresh token was just redeemed).
   */
  async #persist(
    set: TokenSet,
    expected: number | null | undefined,
    replaced: TokenSet | undefined,
    lease: StoreLease | undefined,
  ): Promise<StoredRecord | undefined> {
    const now = Date.now();
    if (this.#meta.createdAt === 0) this.#meta.createdAt = now;
    this.#meta.refreshedAt = now;
    this.#meta.refreshes++;
    this.#metaDirty = false;
    let conflict = await this.#write(set, expected, lease);
    let latest: StoredRecord | undefined;
    for (let attempt = 0; conflict; attempt++) {
      latest = await this.#runtime.store.get(this.id).catch(() => undefined);
      // Another instance's usage write moved the version on but kept the set this refresh
      // replaced: ours is still the newer set and must be stored (its predecessor's refresh
      // token is spent), so it goes over that record, with the usage merged in.
      if (!latest || !replaced || !sameAccessToken(latest.tokens, replaced) || attempt >= 3) break;
      this.#meta = mergeMeta(latest.meta, this.#meta, this.#pendingUses);
      conflict = await this.#write(set, latest.version ?? null, lease);
    }
    if (!conflict) return undefined;
    this.#emit('anomaly', {
      id: this.id,
      kind: 'store-conflict',
      severity: 'warning',
      evidence: { store: this.#runtime.store.kind, lockTtlMs: this.#lockTtlMs },
    });
    return latest && this.#usable(latest.tokens, Date.now()) ? latest : undefined;
  }

  /**
   * Writes the record; `true` when a compare-and-swap found a newer record. Under a refresh
   * lock (`lease`), a failed write is retried while the lock is held: releasing the lock with a
   * rotated refresh token only in memory would let the next holder redeem the spent one.
   */
  async #write(
    set: TokenSet,
    expected: number | null | undefined,
    lease?: StoreLease,
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#tryWrite(set, expected);
      if (outcome !== 'failed') return outcome === 'conflict';
      if (!lease || lease.signal.aborted || attempt >= 4 || this.#closed) return false;
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    }
  }

  async #tryWrite(
    set: TokenSet,
    expected: number | null | undefined,
  ): Promise<'stored' | 'conflict' | 'failed'> {
    const record: StoredRecord = {
      tokens: set,
      meta: { ...this.#meta },
      ...(this.#dpopKey ? { dpopKey: this.#dpopKey } : {}),
    };
    const pending = this.#pendingUses;
    try {
      const version = await this.#runtime.store.set(
        this.id,
        record,
        expected === undefined ? undefined : { expectedVersion: expected },
      );
      this.#version = typeof version === 'number' ? version : undefined;
      this.#pendingUses -= pending;
      return 'stored';
    } catch (error) {
      if (error instanceof TokenWardenError && error.code === 'ERR_STORE_CONFLICT') {
        return 'conflict';
      }
      // The new set is still used from memory: with a rotating refresh token, dropping it would
      // lose the only valid refresh token.
      this.#storeFailed('write', 'storing the token set failed', error);
      return 'failed';
    }
  }

  #failed(reason: RefreshReason, caught: unknown): TokenWardenError {
    if (this.#closed) return closedError(this.id);
    const error =
      caught instanceof TokenWardenError
        ? caught
        : new TokenWardenError(
            'ERR_SOURCE_FAILED',
            `The token source of credential "${this.id}" failed.`,
            {
              credentialId: this.id,
            },
          );
    const oauthCode = error instanceof OAuthError ? error.error : undefined;
    if (
      error.code === 'ERR_REAUTH_REQUIRED' ||
      (oauthCode !== undefined && REAUTH_ERRORS.has(oauthCode))
    ) {
      this.#reauth =
        error instanceof ReauthRequiredError ? error : new ReauthRequiredError(this.id, error);
      this.#clearTimer();
      this.#failures++;
      this.#emit('refresh-error', {
        id: this.id,
        reason,
        error,
        code: error.code,
        failures: this.#failures,
        retryAt: undefined,
        servingStale: false,
      });
      const rejected = oauthCode ?? 'no_refresh_token';
      this.#emit('reauth-required', { id: this.id, error: rejected });
      this.#log('error', 're-authentication required', { id: this.id, error: rejected });
      return this.#reauth;
    }
    this.#failures++;
    if (this.#signInNeeded(this.#tokens)) {
      // A failed sign-in (declined, expired, abandoned) is not retried in the background, which
      // would prompt the user again unasked, and leaves no backoff: the next request starts a
      // new sign-in at once.
      this.#retryAt = undefined;
      this.#lastError = error;
      this.#emit('refresh-error', {
        id: this.id,
        reason,
        error,
        code: error.code,
        failures: this.#failures,
        retryAt: undefined,
        servingStale: false,
      });
      this.#log('warn', 'sign-in failed', { id: this.id, reason, code: error.code });
      return error;
    }
    const now = Date.now();
    this.#retryAt = now + this.#backoffDelay(error);
    this.#lastError = error;
    const tokens = this.#tokens;
    const servingStale = tokens !== undefined && this.#usable(tokens, now);
    if (this.#keepFresh || servingStale) this.#schedule(this.#retryAt);
    this.#emit('refresh-error', {
      id: this.id,
      reason,
      error,
      code: error.code,
      failures: this.#failures,
      retryAt: this.#retryAt,
      servingStale,
    });
    this.#log('warn', 'token refresh failed', {
      id: this.id,
      reason,
      code: error.code,
      status: error.status,
      failures: this.#failures,
      retryAt: this.#retryAt,
    });
    return error;
  }

  #backoffDelay(error: TokenWardenError): number {
    const ceiling = Math.min(this.#backoffMax, this.#backoffInitial * 2 ** (this.#failures - 1));
    // Equal jitter: at least half the ceiling, so a fleet spreads out but still backs off.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    const retryAfter = parseRetryAfter(error.response?.headers.get('retry-after') ?? null);
    return retryAfter === undefined ? delay : Math.max(delay, Math.min(retryAfter, 60 * MINUTE));
  }

  #computeRefreshAt(set: TokenSet): number {
    const lifetime = Math.max(0, set.expiresAt - set.issuedAt);
    const base = this.#refreshWindowMs ?? Math.min(lifetime / 5, 5 * MINUTE);
    // Due before the token stops being usable, so requests never wait; at most half the
    // lifetime, so a short-lived token is not refreshed on every request.
    const window = Math.min(
      Math.max(base * (1 + Math.random() * 0.5), 2 * expiryMargin(lifetime)),
      lifetime / 2,
    );
    return set.expiresAt - window;
  }

  /** Whether a token can still be sent: not expired, with a margin for the request's flight time. */
  #usable(set: TokenSet, now: number): boolean {
    return now < set.expiresAt - expiryMargin(set.expiresAt - set.issuedAt);
  }

  #backingOff(now: number): boolean {
    return this.#retryAt !== undefined && now < this.#retryAt;
  }

  #schedule(at: number): void {
    this.#clearTimer();
    if (!this.#keepFresh && this.#retryAt === undefined) return;
    if (this.#closed || this.#reauth || !Number.isFinite(at)) return;
    const delay = Math.min(Math.max(0, at - Date.now()), MAX_TIMER);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#keepFresh && !(this.#tokens && this.#usable(this.#tokens, Date.now()))) return;
      this.#refresh(this.#keepFresh ? 'scheduled' : 'proactive').catch(() => {});
    }, delay);
    // A pending refresh must not keep a Node process alive on its own.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #load(): Promise<void> {
    if (this.#loadFailedAt !== undefined && Date.now() - this.#loadFailedAt > LOAD_RETRY_MS) {
      // The store was unreachable at start (a Redis blip): read it again, at most this often.
      this.#loading = undefined;
      this.#loadFailedAt = undefined;
    }
    // Watching starts before the first read, so a change made meanwhile is not missed, and
    // whether or not that read succeeds.
    this.#unwatch ??= this.#runtime.store.watch?.(this.id, (change) => this.#changed(change));
    this.#loading ??= this.#runtime.store.get(this.id).then(
      (record) => {
        if (record) this.#adoptMeta(record.meta);
        if (record) this.#version = record.version;
        if (record?.dpopKey && !this.#tokens) this.#dpopKey = record.dpopKey;
        const stored = record?.tokens;
        if (stored && !this.#tokens && this.#usable(stored, Date.now())) {
          this.#tokens = stored;
          this.#generation++;
          this.#refreshAt = this.#computeRefreshAt(stored);
          this.#schedule(this.#refreshAt);
        } else if (stored && !this.#tokens) {
          // An expired set still carries the latest refresh token, which supersedes a configured one.
          this.#tokens = stored;
        }
      },
      (error: unknown) => {
        this.#loadFailedAt = Date.now();
        this.#storeFailed('read', 'reading the token store failed', error);
      },
    );
    return this.#loading;
  }

  /** Continues the stored usage history, adding what happened in this process before loading. */
  #adoptMeta(stored: RecordMeta): void {
    this.#meta = mergeMeta(stored, this.#meta, this.#pendingUses);
    if (this.#meta.createdAt === 0) this.#meta.createdAt = stored.createdAt;
  }

  #assertUsable(): void {
    if (this.#closed) throw closedError(this.id);
    if (this.#abort.signal.aborted) throw abortError(this.#abort.signal);
    if (this.#reauth) throw this.#reauth;
  }

  /** Logs a failed store operation and emits `store-error`. */
  #storeFailed(operation: 'read' | 'write' | 'delete', message: string, caught: unknown): void {
    const store = this.#runtime.store.kind;
    this.#log('error', message, { id: this.id, store, error: errorKind(caught) });
    const error =
      caught instanceof TokenWardenError
        ? caught
        : new TokenWardenError(
            'ERR_STORE_UNAVAILABLE',
            `The ${store} store failed to ${operation} the record of credential "${this.id}"; see the cause.`,
            { credentialId: this.id, cause: caught },
          );
    this.#emit('store-error', { id: this.id, store, operation, error, code: error.code });
  }

  #emit<K extends keyof WardenEvents>(event: K, ...args: WardenEvents[K]): void {
    try {
      (this.#events as unknown as EventEmitter).emit(event, ...args);
    } catch (error) {
      this.#log('error', 'an event listener threw', {
        id: this.id,
        event,
        error: errorKind(error),
      });
    }
    this.#runtime.emit(event, ...args);
  }

  #log(
    level: 'debug' | 'info' | 'warn' | 'error',
    message: string,
    fields: Record<string, unknown>,
  ) {
    const logger = this.#runtime.logger;
    if (!logger) return;
    try {
      logger({ level, message, fields });
    } catch {
      // A broken logger must not break token handling.
    }
  }
}

/**
 * How long before its expiry a token stops being sent: at least a second, because servers count
 * expiry in whole seconds from when they minted the token, which can be up to a second before
 * the response arrived; up to five seconds for the request's own flight time; never more than a
 * quarter of the lifetime.
 */
function expiryMargin(lifetime: number): number {
  return Math.min(5_000, Math.max(1_000, lifetime / 10), lifetime / 4);
}

/** Whether two token sets carry the same access token (compared in constant time). */
function sameAccessToken(a: TokenSet, b: TokenSet): boolean {
  return timingSafeEqual(a.revealAccessToken(), b.revealAccessToken());
}

/**
 * The usage history to keep when taking over a stored record: the stored one, plus the uses
 * counted here that no write has carried yet, and the latest use seen by either.
 */
function mergeMeta(
  stored: RecordMeta,
  local: RecordMeta,
  pendingUses: number,
): { -readonly [K in keyof RecordMeta]: RecordMeta[K] } {
  const merged: { -readonly [K in keyof RecordMeta]: RecordMeta[K] } = {
    createdAt:
      local.createdAt === 0 ? stored.createdAt : Math.min(stored.createdAt, local.createdAt),
    refreshedAt: Math.max(stored.refreshedAt, local.refreshedAt),
    uses: stored.uses + pendingUses,
    refreshes: Math.max(stored.refreshes, local.refreshes),
  };
  const lastUsedAt = Math.max(stored.lastUsedAt ?? 0, local.lastUsedAt ?? 0);
  if (lastUsedAt > 0) merged.lastUsedAt = lastUsedAt;
  return merged;
}

function isAbsoluteUrl(value: string | URL): boolean {
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

function closedError(id: string): TokenWardenError {
  return new TokenWardenError('ERR_CLOSED', `Credential "${id}" is closed.`, { credentialId: id });
}

function parseDpop(
  value: boolean | DpopOptions | undefined,
): { algorithm: DpopAlgorithm; allowBearer: boolean } | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { algorithm: 'ES256', allowBearer: false };
  if (value === null || typeof value !== 'object') {
    throw invalidArgument('dpop must be true, false or an object such as { algorithm: "ES256" }.');
  }
  const algorithm = value.algorithm ?? 'ES256';
  if (algorithm !== 'ES256' && algorithm !== 'EdDSA') {
    throw invalidArgument("dpop.algorithm must be 'ES256' or 'EdDSA'.");
  }
  if (value.allowBearer !== undefined && typeof value.allowBearer !== 'boolean') {
    throw invalidArgument('dpop.allowBearer must be a boolean.');
  }
  return { algorithm, allowBearer: value.allowBearer === true };
}

function checkSource(source: unknown): TokenSource {
  const candidate = source as Partial<TokenSource> | null | undefined;
  if (
    !candidate ||
    typeof candidate.obtain !== 'function' ||
    typeof candidate.info !== 'function' ||
    typeof candidate.kind !== 'string'
  ) {
    throw invalidArgument(
      'source must be a token source such as clientCredentials(), refreshToken(), apiKey() or customSource().',
    );
  }
  return candidate as TokenSource;
}

function normaliseScheme(tokenType: string): string {
  const lower = tokenType.toLowerCase();
  if (lower === 'bearer') return 'Bearer';
  if (lower === 'dpop') return 'DPoP';
  return tokenType;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw invalidArgument(`${name} must be a positive integer.`);
  return value;
}

function nonNegativeInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw invalidArgument(`${name} must be a non-negative integer.`);
  return value;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1_000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** A non-secret description of an unknown error for logs: its name and code only. */
/** The server part of a revocation whose code could not be loaded (a browser chunk that failed). */
function notRevoked(
  held: TokenSet | undefined,
  credentialId: string,
  cause: unknown,
): ServerRevocation {
  const superseded = { revoked: 0, failed: 0 };
  if (held === undefined) return { outcome: 'nothing-held', tokens: [], failures: [], superseded };
  const error = new TokenWardenError(
    'ERR_NETWORK',
    `The revocation code of credential "${credentialId}" could not be loaded; the tokens were wiped locally but may still be valid at the server.`,
    { credentialId, cause },
  );
  return {
    outcome: 'failed',
    tokens: [],
    failures: [{ token: 'access_token', code: error.code, error }],
    superseded,
  };
}
