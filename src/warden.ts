import EventEmitter from 'eventemitter3';
import type { AuditContext, AuditFinding, AuditOptions, InventoryEntry } from './audit.js';
import {
  Credential,
  type CredentialOptions,
  type CredentialRuntime,
  type CredentialTuning,
} from './credential.js';
import { invalidArgument, TokenWardenError } from './errors.js';
import type { Logger, WardenEvents } from './events.js';
import { createSkewClock } from './internal/clock.js';
import { INSPECT } from './internal/redact.js';
import { AnomalyDetector, type AnomalyOptions, anomalySettings } from './observe/anomaly.js';
import { MetricsRecorder, type MetricsSnapshot } from './observe/metrics.js';
import type { RequestRecord, WardenObserver } from './observe/observer.js';
import type { RevokeOptions, RevokeResult } from './revoke.js';
import { memoryStore } from './stores/memory.js';
import type { TokenStore } from './stores/types.js';

/**
 * The option key that replaces the `fetch` tokenwarden uses for every request (token endpoints
 * and APIs). Deliberately awkward: a custom fetch sees every token. Meant for tests, proxies
 * and runtimes without a global fetch.
 *
 * @example
 * ```ts
 * import { createWarden, customFetch } from 'tokenwarden';
 * const warden = createWarden({ [customFetch]: instrumentedFetch });
 * ```
 */
export const customFetch: unique symbol = Symbol('tokenwarden.customFetch');

/**
 * Options of {@link createWarden}.
 *
 * @example
 * ```ts
 * import { createWarden, memoryStore, type WardenOptions } from 'tokenwarden';
 * const options: WardenOptions = {
 *   store: memoryStore(),
 *   logger: ({ level, message, fields }) => console[level](message, fields),
 *   defaults: { keepFresh: true, timeout: '10s' },
 * };
 * const warden = createWarden(options);
 * ```
 */
export interface WardenOptions {
  /**
   * Where token sets are kept.
   * @default memoryStore()
   */
  store?: TokenStore;
  /**
   * Receives structured log lines (never a secret). Silent when omitted.
   * @default undefined (silent)
   */
  logger?: Logger;
  /**
   * Defaults for every credential's tuning options; each `register()` call can override them.
   * @default {}
   */
  defaults?: CredentialTuning;
  /**
   * Anomaly detection: thresholds per detector, or `false` for none. Anomalies are reported as
   * `anomaly` events (and `warn` log lines); see {@link AnomalyOptions} for the kinds, their
   * triggers and defaults.
   * @default {} (every detector on, with its defaults)
   */
  anomalies?: AnomalyOptions | false;
  /**
   * Replaces the global `fetch` for all requests. Dangerous: see {@link customFetch}.
   * @default globalThis.fetch
   */
  [customFetch]?: typeof fetch;
}

/**
 * A registry of credentials that share a store, a clock, a logger and one event stream.
 *
 * @example
 * ```ts
 * const warden = createWarden();
 * const billing = warden.register('billing', { source, origins: ['https://billing.example.com'] });
 * warden.on('reauth-required', ({ id }) => alert(`${id} needs sign-in`));
 * await warden.close();
 * ```
 */
export interface Warden {
  /**
   * Registers a credential.
   * @param id - A unique id (letters, digits, `.`, `_`, `:`, `-`; at most 128 characters).
   * @param options - Source, allowed origins and tuning.
   * @returns The credential.
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for a duplicate or malformed id,
   * bad options, or a closed warden.
   */
  register(id: string, options: CredentialOptions): Credential;
  /**
   * Looks a registered credential up.
   * @param id - The credential id.
   * @returns The credential, or `undefined`.
   * @throws Never.
   */
  get(id: string): Credential | undefined;
  /**
   * Lists the registered credentials.
   * @returns The credentials, in registration order.
   * @throws Never.
   */
  credentials(): Credential[];
  /**
   * Listens to an event of any credential.
   * @param event - The event name.
   * @param listener - Receives the event's payload.
   * @returns This warden.
   * @throws Never.
   */
  on<K extends keyof WardenEvents>(event: K, listener: (...args: WardenEvents[K]) => void): Warden;
  /**
   * Listens to one occurrence of an event.
   * @param event - The event name.
   * @param listener - Receives the event's payload, once.
   * @returns This warden.
   * @throws Never.
   */
  once<K extends keyof WardenEvents>(
    event: K,
    listener: (...args: WardenEvents[K]) => void,
  ): Warden;
  /**
   * Stops listening (all listeners of the event when `listener` is omitted).
   * @param event - The event name.
   * @param listener - The listener to remove.
   * @returns This warden.
   * @throws Never.
   */
  off<K extends keyof WardenEvents>(
    event: K,
    listener?: (...args: WardenEvents[K]) => void,
  ): Warden;
  /**
   * Revokes every registered credential, in parallel, with {@link Credential.revoke}: RFC 7009 at
   * the server where the source supports it, and every local copy wiped in every case. Never
   * rejects half-way: a credential that fails is reported in its own result.
   * @param options - An abort signal and the 503 retry bounds, for every credential.
   * @returns One result per credential, in registration order.
   * @throws Never: a credential that cannot be revoked (e.g. closed) gets a `failed` result with
   * the error's code.
   * @example
   * ```ts
   * const results = await warden.revokeAll();
   * const notAtServer = results.filter((r) => !r.revokedAtServer).map((r) => `${r.id}: ${r.outcome}`);
   * ```
   */
  revokeAll(options?: RevokeOptions): Promise<RevokeResult[]>;
  /**
   * Takes a snapshot of the usage figures of every credential registered with this warden:
   * requests by status class, 401s and 403s, retries, blocked requests, refreshes by reason,
   * latency and token-age percentiles, last use, and the same per destination origin. Plain
   * JSON with no token in it; see {@link MetricsSnapshot} and {@link CredentialMetrics} for the
   * schema and the counting rules. Memory stays bounded: series exist per credential and per
   * origin only (at most 100 origins per credential, the rest under `"(other)"`), never per URL.
   * Figures are cumulative from registration; `close()` drops them.
   * @returns A new snapshot object.
   * @throws Never.
   * @example
   * ```ts
   * const { credentials } = warden.metrics();
   * const billing = credentials.billing;
   * console.log(billing.requests, billing.serverErrors, billing.latencyMs.p95, billing.refreshes);
   * ```
   */
  metrics(): MetricsSnapshot;
  /**
   * Adds an observer that receives every request record and every event of this warden,
   * synchronously (see {@link WardenObserver}). The OpenTelemetry adapter (`tokenwarden/otel`)
   * uses it; so can any exporter of your own.
   * @param observer - An object with optional `request` and `event` methods.
   * @returns A function that removes the observer.
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` when `observer` is not an object or
   * the warden is closed.
   * @example
   * ```ts
   * let serverErrors = 0;
   * const stop = warden.observe({
   *   request: ({ status }) => {
   *     if (status >= 500) serverErrors++;
   *   },
   * });
   * // ... later
   * stop();
   * ```
   */
  observe(observer: WardenObserver): () => void;
  /**
   * Lists every registered credential (in registration order) and then every record in the
   * store that no registered credential owns (`'orphaned'`), with source, scopes, times, usage
   * counts, state and a fingerprint of the access token — never a token. A record that fails its
   * integrity check or cannot be decrypted is listed as `'unreadable'` instead of failing the call.
   * @returns One {@link InventoryEntry} per credential or record.
   * @throws Never: a store that cannot be listed or read marks the entries with the error's code.
   * @example
   * ```ts
   * for (const { id, state, sourceKind, lastUsedAt, fingerprint } of await warden.inventory()) {
   *   console.log(id, state, sourceKind, lastUsedAt && new Date(lastUsedAt), fingerprint);
   * }
   * ```
   */
  inventory(): Promise<InventoryEntry[]>;
  /**
   * Audits the inventory: `unused`, `orphaned`, `over-age`, `over-scoped`, `expiring` and
   * `reauth-required` findings, each with its non-secret evidence (see {@link AuditOptions} for
   * the thresholds and their defaults). Orphaned records are reported only as `orphaned`. With
   * `revoke: true`, unused credentials are revoked and unregistered and orphaned records deleted;
   * each finding says what was done, and the call never rejects half-way.
   * @param options - Thresholds, the audit time, and whether to act.
   * @returns The findings, grouped by credential in inventory order.
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` (a rejection) for a malformed
   * duration or time. Failures while acting are reported in the findings, not thrown.
   * @example
   * ```ts
   * const findings = await warden.audit({ idleFor: '30d', maxAge: '90d', revoke: true });
   * for (const f of findings) console.warn(`${f.id}: ${f.kind} (${f.action})`);
   * ```
   */
  audit(options?: AuditOptions): Promise<AuditFinding[]>;
  /**
   * Closes every credential (timers cleared, token requests in flight aborted), removes every
   * listener and closes the store. A Node process with nothing else to do exits right after.
   * @throws Never, unless a custom store's own `close()` rejects; a second call does nothing.
   */
  close(): Promise<void>;
}

const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Creates a warden. Every option has a default: an in-memory store, the global `fetch`, no logger.
 *
 * @param options - Store, logger, credential defaults.
 * @returns A {@link Warden}.
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for bad options (a store that is not
 * a `TokenStore`, a logger that is not a function, malformed anomaly thresholds), or when no
 * `fetch` exists and no `customFetch` is given.
 * @example
 * ```ts
 * import { createWarden, clientCredentials } from 'tokenwarden';
 * const warden = createWarden();
 * const billing = warden.register('billing', {
 *   source: clientCredentials({ issuer: 'https://auth.example.com', clientId: 'svc', clientSecret }),
 *   origins: ['https://billing.example.com'],
 * });
 * const res = await billing.fetch('https://billing.example.com/v1/ping');
 * ```
 */
export function createWarden(options: WardenOptions = {}): Warden {
  if (options === null || typeof options !== 'object') {
    throw invalidArgument('createWarden(options): options must be an object.');
  }
  const store = options.store ?? memoryStore();
  if (typeof store.get !== 'function' || typeof store.set !== 'function') {
    throw invalidArgument('store must implement the TokenStore contract (get, set, delete, list).');
  }
  const custom = options[customFetch];
  if (typeof (custom ?? globalThis.fetch) !== 'function') {
    throw invalidArgument('No fetch available: pass one with the customFetch option.');
  }
  if (options.logger !== undefined && typeof options.logger !== 'function') {
    throw invalidArgument('logger must be a function receiving { level, message, fields }.');
  }
  const events = new EventEmitter<WardenEvents>();
  const registry = new Map<string, Credential>();
  const defaults = options.defaults ?? {};
  const recorder = new MetricsRecorder();
  const settings = anomalySettings(options.anomalies);
  const registeredAt = new Map<string, number>();
  const observers = new Set<WardenObserver>();
  let closed = false;

  const notify = (call: (observer: WardenObserver) => void): void => {
    for (const observer of observers) {
      try {
        call(observer);
      } catch (error) {
        options.logger?.({
          level: 'error',
          message: 'an observer threw',
          fields: { error: error instanceof Error ? error.name : typeof error },
        });
      }
    }
  };

  const detector =
    settings &&
    new AnomalyDetector(settings, (anomaly) => {
      runtime.emit('anomaly', anomaly);
      options.logger?.({
        level: 'warn',
        message: 'anomaly detected',
        fields: { id: anomaly.id, kind: anomaly.kind, severity: anomaly.severity },
      });
    });

  const runtime: CredentialRuntime = {
    store,
    // The global fetch is looked up per call, so instrumentation that wraps it after the warden
    // was created (tracing, test interceptors) still sees tokenwarden's requests.
    fetch: (input, init) => (custom ?? globalThis.fetch).call(globalThis, input, init),
    clock: createSkewClock(),
    logger: options.logger,
    emit(event, ...args) {
      recorder.event(event, args[0]);
      if (observers.size > 0) notify((observer) => observer.event?.(event, args[0]));
      try {
        (events as unknown as EventEmitter).emit(event, ...args);
      } catch (error) {
        options.logger?.({
          level: 'error',
          message: 'an event listener threw',
          fields: { event, error: error instanceof Error ? error.name : typeof error },
        });
      }
      // Last, so an anomaly this event raises follows it everywhere.
      detector?.event(event, args[0]);
    },
    forget(id) {
      registry.delete(id);
      registeredAt.delete(id);
    },
    attempt: (id) => detector?.attempt(id),
    observe(id, outcome, tokenIssuedAt) {
      const now = recorder.observe(id, outcome, tokenIssuedAt);
      if (observers.size > 0) {
        const record: RequestRecord = {
          id,
          method: outcome.method,
          origin: outcome.origin,
          status: outcome.status,
          durationMs: outcome.durationMs,
          retried: outcome.retried,
          ...(tokenIssuedAt === undefined ? {} : { tokenAgeMs: Math.max(0, now - tokenIssuedAt) }),
          ...(outcome.error === undefined ? {} : { error: outcome.error }),
        };
        notify((observer) => observer.request?.(record));
      }
      detector?.request(id, outcome);
    },
  };

  store.bind?.({
    tamper(id) {
      runtime.emit('tamper', { id, store: store.kind });
      options.logger?.({
        level: 'warn',
        message: 'a stored record failed its integrity check and was discarded',
        fields: { id, store: store.kind },
      });
    },
  });

  const auditContext: AuditContext = {
    store,
    credentials: () => [...registry.values()],
    get: (id) => registry.get(id),
    registeredAt: (id) => registeredAt.get(id),
  };

  const warden: Warden = {
    // The inventory and the audit are loaded on first use: an app that never calls them does
    // not ship them.
    inventory: async () => (await import('./audit.js')).buildInventory(auditContext),
    audit: async (auditOptions) =>
      (await import('./audit.js')).runAudit(auditContext, auditOptions),
    register(id, credentialOptions) {
      if (closed) throw invalidArgument('This warden is closed; create a new one.');
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
        throw invalidArgument(
          'A credential id must be 1-128 characters of letters, digits, ".", "_", ":" or "-".',
        );
      }
      if (registry.has(id)) throw invalidArgument(`A credential "${id}" is already registered.`);
      if (credentialOptions === null || typeof credentialOptions !== 'object') {
        throw invalidArgument(`register("${id}", options): options must be an object.`);
      }
      const credential = new Credential(id, { ...defaults, ...credentialOptions }, runtime);
      registry.set(id, credential);
      registeredAt.set(id, Date.now());
      recorder.track(id);
      detector?.track(id);
      return credential;
    },
    revokeAll(revokeOptions) {
      return Promise.all(
        [...registry.values()].map((credential) =>
          credential.revoke(revokeOptions).catch((caught: unknown): RevokeResult => {
            const error =
              caught instanceof TokenWardenError
                ? caught
                : new TokenWardenError(
                    'ERR_SOURCE_FAILED',
                    `Revoking credential "${credential.id}" failed.`,
                    { credentialId: credential.id },
                  );
            return {
              id: credential.id,
              outcome: 'failed',
              revokedAtServer: false,
              tokens: [],
              failures: [{ token: 'access_token', code: error.code, error }],
              superseded: { revoked: 0, failed: 0 },
              wipedLocally: false,
            };
          }),
        ),
      );
    },
    get: (id) => registry.get(id),
    metrics: () => recorder.snapshot((id) => registry.get(id)?.status().dpop),
    observe(observer) {
      if (observer === null || typeof observer !== 'object') {
        throw invalidArgument(
          'observe(observer): observer must be an object with request/event methods.',
        );
      }
      if (closed) throw invalidArgument('This warden is closed; create a new one.');
      observers.add(observer);
      return () => {
        observers.delete(observer);
      };
    },
    credentials: () => [...registry.values()],
    on(event, listener) {
      events.on(event, listener as never);
      return warden;
    },
    once(event, listener) {
      events.once(event, listener as never);
      return warden;
    },
    off(event, listener) {
      events.off(event, listener as never);
      return warden;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...registry.values()].map((credential) => credential.close()));
      registry.clear();
      registeredAt.clear();
      events.removeAllListeners();
      observers.clear();
      recorder.clear();
      detector?.clear();
      await store.close?.();
    },
  };
  Object.defineProperties(warden, {
    toString: { value: () => `Warden(${registry.size} credentials)` },
    toJSON: { value: () => ({ credentials: [...registry.keys()] }) },
    [INSPECT]: { value: () => `Warden { credentials: ${JSON.stringify([...registry.keys()])} }` },
  });
  return warden;
}
