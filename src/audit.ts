import { type Credential, type CredentialState, pendingUses } from './credential.js';
import type { DpopKeyInfo } from './dpop/key.js';
import { invalidArgument, TokenWardenError } from './errors.js';
import { type Duration, toMs } from './internal/duration.js';
import type { RevokeOptions, RevokeResult } from './revoke.js';
import type { SourceKind } from './sources/types.js';
import type { StoredRecord, TokenStore } from './stores/types.js';

/**
 * The state of an {@link InventoryEntry}: a registered credential's {@link CredentialState},
 * `'orphaned'` for a readable record in the store that no registered credential owns, or
 * `'unreadable'` for a record that failed its integrity check or could not be decrypted.
 *
 * @example
 * ```ts
 * import type { InventoryState } from 'tokenwarden';
 * const stale = (await warden.inventory()).filter((e) => e.state === ('orphaned' satisfies InventoryState));
 * ```
 */
export type InventoryState = CredentialState | 'orphaned' | 'unreadable';

/**
 * One line of `warden.inventory()`: a registered credential or a stored record, described
 * without any secret. Times are epoch milliseconds.
 *
 * @example
 * ```ts
 * import type { InventoryEntry } from 'tokenwarden';
 * const entries: InventoryEntry[] = await warden.inventory();
 * console.table(entries.map(({ id, state, sourceKind, lastUsedAt, fingerprint }) =>
 *   ({ id, state, sourceKind, lastUsedAt, fingerprint })));
 * ```
 */
export interface InventoryEntry {
  /** The credential id (the store key). */
  readonly id: string;
  /** Whether a credential with this id is registered with the warden. */
  readonly registered: boolean;
  /** The state; see {@link InventoryState}. */
  readonly state: InventoryState;
  /** The source kind, for registered credentials. */
  readonly sourceKind?: SourceKind;
  /** The issuer or token endpoint, for registered OAuth credentials. */
  readonly issuer?: string;
  /** The OAuth client id, for registered OAuth credentials. */
  readonly clientId?: string;
  /** The scopes the credential asks for, when it says. */
  readonly requestedScope?: readonly string[];
  /** The scopes of the current token, as granted by the server. */
  readonly grantedScope?: readonly string[];
  /** When the current token (or key) was obtained. */
  readonly issuedAt?: number;
  /** When the current token expires (absent when it never does). */
  readonly expiresAt?: number;
  /** When the credential first stored a token set. */
  readonly createdAt?: number;
  /** When a request last carried the token. */
  readonly lastUsedAt?: number;
  /** When the current token set was stored. */
  readonly lastRefreshedAt?: number;
  /** Requests that carried a token of this credential, over its life. */
  readonly uses?: number;
  /** Token sets the credential obtained, over its life. */
  readonly refreshes?: number;
  /** Whether the current token set holds a refresh token. */
  readonly hasRefreshToken: boolean;
  /**
   * The first 16 hex digits of the SHA-256 of the access token: enough to match a token seen
   * elsewhere (a server log, another instance), never enough to use it.
   */
  readonly fingerprint?: string;
  /** The DPoP key the tokens are bound to (algorithm and thumbprint), for DPoP-bound records. */
  readonly dpop?: DpopKeyInfo;
  /** Why the record is `'unreadable'`: the error code, when reading failed with one. */
  readonly error?: string;
}

/**
 * What an audit found: `unused` (no request for `idleFor`), `orphaned` (a stored record nobody
 * registered), `over-age` (the token or key is older than `maxAge`, e.g. a key never rotated),
 * `over-scoped` (the server granted scopes the credential did not ask for), `expiring` (a
 * long-lived token or key expires within `expiringWithin`), `reauth-required` (a user must sign
 * in again).
 *
 * @example
 * ```ts
 * import type { AuditFindingKind } from 'tokenwarden';
 * const urgent: AuditFindingKind[] = ['expiring', 'reauth-required'];
 * ```
 */
export type AuditFindingKind =
  | 'unused'
  | 'orphaned'
  | 'over-age'
  | 'over-scoped'
  | 'expiring'
  | 'reauth-required';

/**
 * What `audit({ revoke: true })` did about a finding: `revoked` (an unused credential revoked
 * with `credential.revoke()` and unregistered), `deleted` (an orphaned record removed from the
 * store) or `none`.
 *
 * @example
 * ```ts
 * import type { AuditAction } from 'tokenwarden';
 * const done = (await warden.audit({ revoke: true })).filter((f) => f.action !== ('none' satisfies AuditAction));
 * ```
 */
export type AuditAction = 'revoked' | 'deleted' | 'none';

/**
 * Options of `warden.audit()`.
 *
 * @example
 * ```ts
 * import type { AuditOptions } from 'tokenwarden';
 * const options: AuditOptions = { idleFor: '14d', maxAge: '90d', expiringWithin: '7d', revoke: false };
 * const findings = await warden.audit(options);
 * ```
 */
export interface AuditOptions extends RevokeOptions {
  /**
   * A registered credential with no request for this long is `unused`; one never used is
   * `unused` when its first token (or its registration) is this old.
   * @default '30d'
   */
  idleFor?: Duration;
  /**
   * A credential whose current token or key was obtained longer ago than this is `over-age`.
   * @default '90d'
   */
  maxAge?: Duration;
  /**
   * A token or key that expires within this window is `expiring`. Tokens whose whole lifetime
   * is shorter than the window (ordinary access tokens, renewed automatically) are not reported.
   * @default '7d'
   */
  expiringWithin?: Duration;
  /**
   * The time the audit is made at (a `Date` or epoch milliseconds).
   * @default Date.now()
   */
  now?: Date | number;
  /**
   * Acts on the findings: `unused` registered credentials are revoked (`credential.revoke()`,
   * with this call's abort signal and retry bounds) and unregistered; `orphaned` records are
   * deleted from the store. Never rejects half-way: each finding says what was done.
   * @default false
   */
  revoke?: boolean;
}

/**
 * One finding of `warden.audit()`, with the non-secret evidence behind it.
 *
 * @example
 * ```ts
 * import type { AuditFinding } from 'tokenwarden';
 * const findings: AuditFinding[] = await warden.audit({ idleFor: '30d' });
 * for (const f of findings) console.warn(`${f.id}: ${f.kind}`, f.lastUsedAt, f.extraScope, f.fingerprint);
 * ```
 */
export interface AuditFinding {
  /** The credential id. */
  readonly id: string;
  /** What was found. */
  readonly kind: AuditFindingKind;
  /** Whether the credential is registered. */
  readonly registered: boolean;
  /** The inventory state at the time of the audit. */
  readonly state: InventoryState;
  /** What was done about it (always `'none'` without `revoke: true`). */
  readonly action: AuditAction;
  /** The revocation result, when `action` is `'revoked'` or revoking failed. */
  readonly revocation?: RevokeResult;
  /** The error code, when acting on the finding failed. */
  readonly error?: string;
  /** When the credential first stored a token set. */
  readonly createdAt?: number;
  /** When the current token or key was obtained. */
  readonly issuedAt?: number;
  /** When the current token expires. */
  readonly expiresAt?: number;
  /** When a request last carried the token. */
  readonly lastUsedAt?: number;
  /** How long since the last use (or since creation, when never used), in ms; for `unused`. */
  readonly idleMs?: number;
  /** How old the current token or key is, in ms; for `over-age`. */
  readonly ageMs?: number;
  /** The scopes asked for; for `over-scoped`. */
  readonly requestedScope?: readonly string[];
  /** The scopes granted; for `over-scoped`. */
  readonly grantedScope?: readonly string[];
  /** The scopes granted but not asked for; for `over-scoped`. */
  readonly extraScope?: readonly string[];
  /** The access token's fingerprint (see {@link InventoryEntry.fingerprint}). */
  readonly fingerprint?: string;
}

/** What the warden hands the inventory. @internal */
export interface AuditContext {
  readonly store: TokenStore;
  credentials(): Credential[];
  get(id: string): Credential | undefined;
  registeredAt(id: string): number | undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

async function fingerprint(record: StoredRecord): Promise<string> {
  const bytes = new TextEncoder().encode(record.tokens.revealAccessToken());
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

type Read = { record?: StoredRecord; error?: string; unreadable: boolean };

async function read(store: TokenStore, id: string, listed: boolean): Promise<Read> {
  try {
    const record = await store.get(id);
    // A listed id that reads as absent failed its integrity check (the store discarded it).
    return record ? { record, unreadable: false } : { unreadable: listed };
  } catch (error) {
    return {
      unreadable: true,
      error: error instanceof TokenWardenError ? error.code : 'ERR_STORE_UNAVAILABLE',
    };
  }
}

async function describe(
  id: string,
  credential: Credential | undefined,
  found: Read,
): Promise<InventoryEntry> {
  const entry: Mutable<InventoryEntry> = {
    id,
    registered: credential !== undefined,
    state: 'orphaned',
    hasRefreshToken: false,
  };
  const { record } = found;
  if (credential) {
    const status = credential.status();
    entry.state = status.state;
    entry.sourceKind = status.source.kind;
    if (status.source.issuer !== undefined) entry.issuer = status.source.issuer;
    if (status.source.clientId !== undefined) entry.clientId = status.source.clientId;
    if (status.source.scope !== undefined) entry.requestedScope = status.source.scope;
    if (status.lastUsedAt !== undefined) entry.lastUsedAt = status.lastUsedAt;
    if (status.state === 'empty' && record) {
      entry.state = Date.now() < record.tokens.expiresAt ? 'valid' : 'expired';
    }
    if (status.state === 'empty' && found.unreadable) entry.state = 'unreadable';
  } else if (found.unreadable) {
    entry.state = 'unreadable';
  }
  if (found.error !== undefined) entry.error = found.error;
  if (record) {
    const info = record.tokens.info();
    entry.issuedAt = info.issuedAt;
    if (Number.isFinite(info.expiresAt)) entry.expiresAt = info.expiresAt;
    if (info.scope !== undefined) entry.grantedScope = info.scope;
    entry.hasRefreshToken = info.hasRefreshToken;
    const { meta } = record;
    if (meta.createdAt > 0) entry.createdAt = meta.createdAt;
    if (meta.refreshedAt > 0) entry.lastRefreshedAt = meta.refreshedAt;
    const lastUsedAt = Math.max(meta.lastUsedAt ?? 0, entry.lastUsedAt ?? 0);
    if (lastUsedAt > 0) entry.lastUsedAt = lastUsedAt;
    // The stored count (every process's flushed uses) plus this process's unflushed ones.
    entry.uses = meta.uses + (credential ? pendingUses(credential) : 0);
    entry.refreshes = meta.refreshes;
    entry.fingerprint = await fingerprint(record);
    if (record.dpopKey) entry.dpop = record.dpopKey.info();
  }
  return entry;
}

/** Builds the inventory: registered credentials in registration order, then orphans. @internal */
export async function buildInventory(context: AuditContext): Promise<InventoryEntry[]> {
  let listed: string[] = [];
  let listError: string | undefined;
  try {
    listed = await context.store.list();
  } catch (error) {
    listError = error instanceof TokenWardenError ? error.code : 'ERR_STORE_UNAVAILABLE';
  }
  const inStore = new Set(listed);
  const registered = context.credentials();
  const ids = new Set(registered.map((c) => c.id));
  const orphans = listed.filter((id) => !ids.has(id));
  const entries = await Promise.all([
    ...registered.map(async (credential) => {
      const found = await read(context.store, credential.id, inStore.has(credential.id));
      if (listError !== undefined && !found.record && found.error === undefined) {
        found.error = listError;
      }
      return describe(credential.id, credential, found);
    }),
    ...orphans.map(async (id) => describe(id, undefined, await read(context.store, id, true))),
  ]);
  return entries;
}

function evidence(entry: InventoryEntry): Mutable<Partial<AuditFinding>> {
  const out: Mutable<Partial<AuditFinding>> = {};
  if (entry.createdAt !== undefined) out.createdAt = entry.createdAt;
  if (entry.issuedAt !== undefined) out.issuedAt = entry.issuedAt;
  if (entry.expiresAt !== undefined) out.expiresAt = entry.expiresAt;
  if (entry.lastUsedAt !== undefined) out.lastUsedAt = entry.lastUsedAt;
  if (entry.fingerprint !== undefined) out.fingerprint = entry.fingerprint;
  return out;
}

function errorCode(caught: unknown): string {
  return caught instanceof TokenWardenError ? caught.code : 'ERR_SOURCE_FAILED';
}

/** Runs an audit over the inventory, acting on it when asked. @internal */
export async function runAudit(
  context: AuditContext,
  options: AuditOptions = {},
): Promise<AuditFinding[]> {
  const idleFor = toMs(options.idleFor ?? '30d', 'idleFor');
  const maxAge = toMs(options.maxAge ?? '90d', 'maxAge');
  const expiringWithin = toMs(options.expiringWithin ?? '7d', 'expiringWithin');
  const now =
    options.now === undefined
      ? Date.now()
      : options.now instanceof Date
        ? options.now.getTime()
        : options.now;
  if (typeof now !== 'number' || !Number.isFinite(now)) {
    throw invalidArgument('now must be a Date or epoch milliseconds.');
  }
  const inventory = await buildInventory(context);
  const findings: Mutable<AuditFinding>[] = [];
  const add = (entry: InventoryEntry, kind: AuditFindingKind, extra: Partial<AuditFinding> = {}) =>
    findings.push({
      id: entry.id,
      kind,
      registered: entry.registered,
      state: entry.state,
      action: 'none',
      ...evidence(entry),
      ...extra,
    });
  for (const entry of inventory) {
    if (!entry.registered) {
      add(entry, 'orphaned');
      continue;
    }
    if (entry.state === 'closed') continue;
    const since = entry.lastUsedAt ?? entry.createdAt ?? context.registeredAt(entry.id);
    if (since !== undefined && now - since >= idleFor)
      add(entry, 'unused', { idleMs: now - since });
    const obtained = entry.issuedAt ?? entry.lastRefreshedAt;
    if (obtained !== undefined && now - obtained > maxAge) {
      add(entry, 'over-age', { ageMs: now - obtained });
    }
    if (entry.requestedScope && entry.grantedScope) {
      const asked = new Set(entry.requestedScope);
      const extraScope = entry.grantedScope.filter((scope) => !asked.has(scope));
      if (extraScope.length > 0) {
        add(entry, 'over-scoped', {
          requestedScope: entry.requestedScope,
          grantedScope: entry.grantedScope,
          extraScope,
        });
      }
    }
    if (
      entry.expiresAt !== undefined &&
      entry.expiresAt - now <= expiringWithin &&
      (entry.issuedAt === undefined || entry.expiresAt - entry.issuedAt > expiringWithin)
    ) {
      add(entry, 'expiring');
    }
    if (entry.state === 'reauth-required') add(entry, 'reauth-required');
  }
  if (options.revoke === true) {
    const { signal, maxAttempts, maxRetryWait } = options;
    const revokeOptions: RevokeOptions = { signal, maxAttempts, maxRetryWait };
    await Promise.all(
      findings.map(async (finding) => {
        if (finding.kind === 'orphaned') {
          try {
            await context.store.delete(finding.id);
            finding.action = 'deleted';
          } catch (caught) {
            finding.error = errorCode(caught);
          }
        } else if (finding.kind === 'unused') {
          const credential = context.get(finding.id);
          if (!credential) return;
          try {
            finding.revocation = await credential.revoke(revokeOptions);
            finding.action = 'revoked';
            await credential.close();
          } catch (caught) {
            finding.error = errorCode(caught);
          }
        }
      }),
    );
  }
  return findings;
}
