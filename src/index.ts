/**
 * tokenwarden keeps the API tokens of browser apps and Node services valid, secret and
 * accountable: register a credential once, then every request through its `fetch` or `ky`
 * client carries a fresh token, only in a header, only to allowed origins.
 *
 * @example
 * ```ts
 * import { createWarden, clientCredentials } from 'tokenwarden';
 * const warden = createWarden();
 * const billing = warden.register('billing', {
 *   source: clientCredentials({ issuer: 'https://auth.example.com', clientId: 'svc', clientSecret }),
 *   origins: ['https://billing.example.com'],
 * });
 * const invoices = await billing.ky({ prefix: 'https://billing.example.com/v1/' }).get('invoices').json();
 * ```
 * @packageDocumentation
 */
export type {
  AuditAction,
  AuditFinding,
  AuditFindingKind,
  AuditOptions,
  InventoryEntry,
  InventoryState,
} from './audit.js';
export {
  allowInsecureRequests,
  type BackoffOptions,
  Credential,
  type CredentialOptions,
  type CredentialState,
  type CredentialStatus,
  type CredentialTuning,
  type DpopOptions,
  type GetTokenOptions,
} from './credential.js';
export { type DpopAlgorithm, DpopKey, type DpopKeyInfo } from './dpop/key.js';
export {
  AuthorizationError,
  BlockedRequestError,
  type BlockReason,
  InvalidArgumentError,
  isTokenWardenError,
  OAuthError,
  ReauthRequiredError,
  TokenWardenError,
  type TokenWardenErrorCode,
  type TokenWardenErrorOptions,
} from './errors.js';
export type * from './events.js';
export type { Duration } from './internal/duration.js';
export type {
  AnomalyOptions,
  AuthFailureOptions,
  RateSpikeOptions,
  RefreshFailureOptions,
} from './observe/anomaly.js';
export type {
  CredentialMetrics,
  LatencySummary,
  MetricsSnapshot,
  OriginMetrics,
  RefreshCounts,
  TokenAgeSummary,
} from './observe/metrics.js';
export type { RequestRecord, WardenObserver } from './observe/observer.js';
export type {
  RevocationOutcome,
  RevokeFailure,
  RevokeOptions,
  RevokeResult,
} from './revoke.js';
export * from './sources/index.js';
export type { KeyInput, KeyProvider, SealingKey } from './stores/keys.js';
export { staticKey } from './stores/keys.js';
export { memoryStore } from './stores/memory.js';
export { type SealedStore, sealedStore } from './stores/sealed.js';
export type {
  RecordBackend,
  RecordMeta,
  StoreChange,
  StoredRecord,
  StoreHooks,
  StoreLease,
  StoreLockOptions,
  StoreWriteOptions,
  TokenStore,
  VersionedRecord,
} from './stores/types.js';
export * from './token.js';
export type { CreateKyOptions } from './transport/ky.js';
export type { ForeignOriginAction } from './transport/types.js';
export { createWarden, customFetch, type Warden, type WardenOptions } from './warden.js';
