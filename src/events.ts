import type { BlockReason, TokenWardenError, TokenWardenErrorCode } from './errors.js';
import type { AnomalyOptions } from './observe/anomaly.js';
import type { RevocationOutcome } from './revoke.js';
import type { RevokedToken } from './sources/types.js';

/**
 * Why a refresh happened.
 *
 * @example
 * ```ts
 * import type { RefreshReason } from 'tokenwarden';
 * const refreshes = new Map<RefreshReason, number>();
 * warden.on('refresh', ({ reason }) => refreshes.set(reason, (refreshes.get(reason) ?? 0) + 1));
 * ```
 */
export type RefreshReason =
  /** No token yet (or the previous one expired): a request waited for this one. */
  | 'initial'
  /** Inside the refresh window: a request went on with the old token meanwhile. */
  | 'proactive'
  /** After a 401 or `getToken({ forceRefresh: true })`. */
  | 'forced'
  /** The `keepFresh` timer. */
  | 'scheduled'
  /** Another tab, process or instance sharing the store obtained the token; this one took it over. */
  | 'shared';

/**
 * Payload of the `refresh` event: a new token set is in use. Never carries a token.
 *
 * @example
 * ```ts
 * import type { RefreshEvent } from 'tokenwarden';
 * warden.on('refresh', (event: RefreshEvent) => {
 *   const until = new Date(event.expiresAt).toISOString();
 *   console.info(`${event.id}: new token until ${until} (${event.reason}, ${event.durationMs} ms)`);
 * });
 * ```
 */
export interface RefreshEvent {
  /** The credential id. */
  readonly id: string;
  /** Why the refresh happened. */
  readonly reason: RefreshReason;
  /** Expiry of the new access token, epoch milliseconds. */
  readonly expiresAt: number;
  /**
   * Whether a refresh token the credential held was replaced by a different one. The first
   * redemption of a configured refresh token is not counted: the credential never held it.
   */
  readonly rotated: boolean;
  /** How long the token request took, in milliseconds. */
  readonly durationMs: number;
}

/**
 * Payload of the `refresh-error` event.
 *
 * @example
 * ```ts
 * import type { RefreshErrorEvent } from 'tokenwarden';
 * warden.on('refresh-error', (event: RefreshErrorEvent) => {
 *   const next = event.retryAt === undefined ? 'no retry' : new Date(event.retryAt).toISOString();
 *   console.warn(`${event.id}: ${event.code}, failure ${event.failures}, next: ${next}`);
 * });
 * ```
 */
export interface RefreshErrorEvent {
  /** The credential id. */
  readonly id: string;
  /** Why the refresh was attempted. */
  readonly reason: RefreshReason;
  /** The coded error (message and fields carry no secret). */
  readonly error: TokenWardenError;
  /** The stable error code. */
  readonly code: TokenWardenErrorCode;
  /** Consecutive failures so far, including this one. */
  readonly failures: number;
  /** When the next attempt may start, epoch milliseconds, or `undefined` when none will. */
  readonly retryAt: number | undefined;
  /** Whether a still-valid token keeps being served meanwhile. */
  readonly servingStale: boolean;
}

/**
 * Payload of the `reauth-required` event.
 *
 * @example
 * ```ts
 * import type { ReauthRequiredEvent } from 'tokenwarden';
 * warden.on('reauth-required', (event: ReauthRequiredEvent) => {
 *   console.warn(`${event.id} must sign in again (${event.error})`);
 *   showSignIn(event.id);
 * });
 * ```
 */
export interface ReauthRequiredEvent {
  /** The credential id. */
  readonly id: string;
  /** The OAuth error that caused it, e.g. `invalid_grant`. */
  readonly error: string;
}

/**
 * Payload of the `revoke` event.
 *
 * @example
 * ```ts
 * import type { RevokeEvent } from 'tokenwarden';
 * warden.on('revoke', (event: RevokeEvent) => {
 *   audit.record('tokens revoked', event.id, event.outcome, event.tokens);
 *   if (!event.revokedAtServer) alertOps(`${event.id}: revoke at the server by hand`);
 * });
 * ```
 */
export interface RevokeEvent {
  /** The credential id. */
  readonly id: string;
  /** What happened at the server (the local copies are wiped in every case). */
  readonly outcome: RevocationOutcome;
  /** Whether every held token was revoked at the server. */
  readonly revokedAtServer: boolean;
  /** The tokens revoked at the server, in order. */
  readonly tokens: readonly RevokedToken[];
  /** The tokens the server did not revoke. */
  readonly failed: readonly RevokedToken[];
}

/**
 * Payload of the `blocked` event: a request the policy stopped or stripped.
 *
 * @example
 * ```ts
 * import type { BlockedEvent } from 'tokenwarden';
 * warden.on('blocked', (event: BlockedEvent) => {
 *   console.warn(`${event.id}: ${event.action} a request to ${event.url} (${event.reason})`);
 * });
 * ```
 */
export interface BlockedEvent {
  /** The credential id. */
  readonly id: string;
  /** Why. */
  readonly reason: BlockReason;
  /** The request URL without query, fragment or userinfo. */
  readonly url: string;
  /** What tokenwarden did: refused the request, or sent it without credentials. */
  readonly action: 'refused' | 'stripped';
}

/**
 * Payload of the `tamper` event: a stored record failed its integrity check.
 *
 * @example
 * ```ts
 * import type { TamperEvent } from 'tokenwarden';
 * warden.on('tamper', (event: TamperEvent) => {
 *   alertSecurityTeam(`token record of ${event.id} in the ${event.store} store was tampered with`);
 * });
 * ```
 */
export interface TamperEvent {
  /** The credential id (the record's slot). */
  readonly id: string;
  /** The store kind that held the record. */
  readonly store: string;
}

/**
 * Payload of the `store-error` event: the token store failed to read, write or delete a
 * credential's record (Redis down, a locked keychain, a key the store cannot use, a full disk).
 * The credential goes on from memory: a read failure is retried on a later use, a token set that
 * could not be written is still used (dropping a rotated refresh token would lose it), and a
 * failed delete leaves the record until the next write or wipe.
 *
 * @example
 * ```ts
 * import type { StoreErrorEvent } from 'tokenwarden';
 * warden.on('store-error', (event: StoreErrorEvent) => {
 *   metrics.increment('token_store_errors', { store: event.store, operation: event.operation });
 *   if (event.code === 'ERR_KEY_UNAVAILABLE') pageOnCall(`${event.id}: the store key is unusable`);
 * });
 * ```
 */
export interface StoreErrorEvent {
  /** The credential id (the record's slot). */
  readonly id: string;
  /** The store kind, e.g. `redis`, `file`, `indexeddb`. */
  readonly store: string;
  /** What failed. */
  readonly operation: 'read' | 'write' | 'delete';
  /**
   * The coded error (message and fields carry no secret). An error that is not a
   * {@link TokenWardenError} is wrapped in `ERR_STORE_UNAVAILABLE`, with it as `cause`.
   */
  readonly error: TokenWardenError;
  /** The stable error code, e.g. `ERR_STORE_UNAVAILABLE` or `ERR_KEY_UNAVAILABLE`. */
  readonly code: TokenWardenErrorCode;
}

/**
 * What kind of anomaly an `anomaly` event reports. See {@link AnomalyOptions} for when each
 * fires, its severity and its thresholds.
 *
 * @example
 * ```ts
 * import type { AnomalyKind } from 'tokenwarden';
 * const pageOnCall: AnomalyKind[] = ['refresh-token-reuse', 'blocked-leak'];
 * ```
 */
export type AnomalyKind =
  /** A request rate far above the credential's learned baseline. */
  | 'rate-spike'
  /** A burst of 401 and 403 responses. */
  | 'auth-failures'
  /** The policy refused or stripped a request (foreign origin, plain HTTP, token in URL, redirect). */
  | 'blocked-leak'
  /** `invalid_grant` on the first refresh after a rotation: a copy of a refresh token was redeemed. */
  | 'refresh-token-reuse'
  /** Several refreshes in a row failed. */
  | 'refresh-failures'
  /** The credential was used after it was revoked. */
  | 'use-after-revoke'
  /** A refreshed token set could not be stored: another writer kept winning. */
  | 'store-conflict';

/**
 * Payload of the `anomaly` event. Evidence is counts, thresholds, times, codes and URLs without
 * query; never a token, header or body.
 *
 * @example
 * ```ts
 * import type { AnomalyEvent } from 'tokenwarden';
 * warden.on('anomaly', (event: AnomalyEvent) => {
 *   if (event.severity === 'critical') pageOnCall(event.id, event.kind, event.evidence);
 *   else console.warn(event.id, event.kind, event.evidence);
 * });
 * ```
 */
export interface AnomalyEvent {
  /** The credential id. */
  readonly id: string;
  /** What kind of anomaly. */
  readonly kind: AnomalyKind;
  /** How serious it is. */
  readonly severity: 'info' | 'warning' | 'critical';
  /** Non-secret evidence (counts, thresholds, times, codes, URLs without query). */
  readonly evidence: Readonly<Record<string, unknown>>;
}

/**
 * The typed event map of a warden and of each credential. Every payload names its credential
 * `id` and carries no token, secret or proof.
 *
 * @example
 * ```ts
 * warden.on('refresh', ({ id, reason, expiresAt }) => log.info({ id, reason, expiresAt }));
 * warden.on('blocked', ({ id, reason, url }) => log.warn({ id, reason, url }));
 * ```
 */
export interface WardenEvents {
  /** A new token set is in use. */
  refresh: [event: RefreshEvent];
  /** A refresh failed. */
  'refresh-error': [event: RefreshErrorEvent];
  /** The credential's grant was rejected; the app must supply new credentials. */
  'reauth-required': [event: ReauthRequiredEvent];
  /** The credential's tokens were revoked and wiped. */
  revoke: [event: RevokeEvent];
  /** A request was refused or stripped of credentials by the policy. */
  blocked: [event: BlockedEvent];
  /** A stored record failed its integrity check and was discarded. */
  tamper: [event: TamperEvent];
  /** The token store failed to read, write or delete a record; the credential goes on from memory. */
  'store-error': [event: StoreErrorEvent];
  /** Something looked wrong. */
  anomaly: [event: AnomalyEvent];
}

/**
 * One structured log line. Fields never contain a secret; URLs have no query.
 *
 * @example
 * ```ts
 * import { createWarden, type LogRecord } from 'tokenwarden';
 * const warden = createWarden({
 *   logger: (record: LogRecord) => console[record.level](record.message, record.fields),
 * });
 * ```
 */
export interface LogRecord {
  /** Severity. */
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  /** A short message. */
  readonly message: string;
  /** Structured, non-secret fields (credential id, reason, code, URL without query). */
  readonly fields: Readonly<Record<string, unknown>>;
}

/**
 * Receives tokenwarden's log lines. Plug in any logger.
 *
 * @example
 * ```ts
 * const warden = createWarden({ logger: ({ level, message, fields }) => pino[level](fields, message) });
 * ```
 */
export type Logger = (record: LogRecord) => void;
