// The cycle with credential.ts is harmless: parseRetryAfter is only called, never read at load.
import { parseRetryAfter } from './credential.js';
import { TokenWardenError } from './errors.js';
import { abortError } from './internal/abort.js';
import { type Duration, toMs } from './internal/duration.js';
import type { OAuthTokenSource, TokenTypeHint } from './sources/oauth.js';
import type { RevokedToken, SourceContext, TokenSource } from './sources/types.js';
import type { TokenSet } from './token.js';

/**
 * Options of {@link Credential.revoke} and `warden.revokeAll()`.
 *
 * @example
 * ```ts
 * // Sign out, but do not wait more than 10 s for the authorization server.
 * const result = await billing.revoke({ signal: AbortSignal.timeout(10_000) });
 * ```
 */
export interface RevokeOptions {
  /**
   * Stops the server calls (the local copies are wiped anyway); the result then lists the
   * unrevoked tokens with `ERR_ABORTED`.
   * @default undefined (not abortable)
   */
  signal?: AbortSignal | undefined;
  /**
   * Most attempts per token when the server answers 503 (RFC 7009 §2.2.1).
   * @default 3
   */
  maxAttempts?: number | undefined;
  /**
   * Longest wait between attempts; a longer `Retry-After` is cut down to it.
   * @default '30s'
   */
  maxRetryWait?: Duration | undefined;
}

/**
 * What happened at the server when a credential was revoked:
 * - `'revoked'`: every held token was revoked;
 * - `'partial'`: some were, some failed (see `failures`);
 * - `'failed'`: none could be revoked;
 * - `'unsupported'`: the source cannot revoke (no revocation endpoint; an API key or a custom
 *   source without a `revoke` callback);
 * - `'nothing-held'`: there was no token to revoke.
 *
 * In every case the local copies were wiped.
 *
 * @example
 * ```ts
 * import type { RevocationOutcome } from 'tokenwarden';
 * const outcome: RevocationOutcome = (await billing.revoke()).outcome;
 * if (outcome === 'failed' || outcome === 'partial') alertOps('revoke at the server by hand');
 * ```
 */
export type RevocationOutcome = 'revoked' | 'partial' | 'failed' | 'unsupported' | 'nothing-held';

/**
 * A token the server did not revoke, and why (never the token itself).
 *
 * @example
 * ```ts
 * for (const { token, code, status } of (await billing.revoke()).failures) {
 *   console.warn(`${token} not revoked: ${code} ${status ?? ''}`);
 * }
 * ```
 */
export interface RevokeFailure {
  /** Which token. */
  readonly token: RevokedToken;
  /** The error code (`ERR_HTTP_STATUS`, `ERR_OAUTH`, `ERR_NETWORK`, `ERR_ABORTED`, ...). */
  readonly code: string;
  /** The HTTP status, when the server answered. */
  readonly status?: number;
  /** The error, which carries no secret. */
  readonly error: TokenWardenError;
}

/**
 * The result of {@link Credential.revoke}: what the server revoked; the local copies (memory,
 * store, other tabs and processes) are always wiped.
 *
 * @example
 * ```ts
 * const result = await billing.revoke();
 * // { id: 'billing', outcome: 'revoked', revokedAtServer: true,
 * //   tokens: ['refresh_token', 'access_token'], failures: [],
 * //   superseded: { revoked: 0, failed: 0 }, wipedLocally: true }
 * ```
 */
export interface RevokeResult {
  /** The credential id. */
  readonly id: string;
  /** What happened at the server. */
  readonly outcome: RevocationOutcome;
  /** Whether every held token was revoked at the server (`outcome === 'revoked'`). */
  readonly revokedAtServer: boolean;
  /** The tokens revoked at the server, in the order they were revoked. */
  readonly tokens: readonly RevokedToken[];
  /** The tokens the server did not revoke, with the reason. */
  readonly failures: readonly RevokeFailure[];
  /**
   * The earlier access tokens of the credential: replaced by a refresh in this instance before
   * they expired, they stay valid at the server until then, so they are revoked too (OAuth
   * sources; the 8 most recent). `revoked` counts those the server revoked, `failed` those it
   * did not (they expire on their own); neither changes `outcome`.
   */
  readonly superseded: {
    /** Earlier access tokens the server revoked. */
    readonly revoked: number;
    /** Earlier access tokens it did not revoke (they expire on their own). */
    readonly failed: number;
  };
  /**
   * Whether the local copies were wiped: `true` whatever the server said; `false` only from
   * `warden.revokeAll()` for a credential that could not be revoked at all (it was closed).
   */
  readonly wipedLocally: boolean;
}

/** What the server part of a revocation produced. @internal */
export interface ServerRevocation {
  readonly outcome: RevocationOutcome;
  readonly tokens: RevokedToken[];
  readonly failures: RevokeFailure[];
  readonly superseded: { revoked: number; failed: number };
}

/** Whether a source revokes through RFC 7009 (the OAuth sources). */
function isOAuthSource(source: TokenSource): source is OAuthTokenSource {
  const candidate = source as Partial<OAuthTokenSource>;
  return typeof candidate.revoke === 'function' && typeof candidate.endpoints === 'function';
}

/**
 * Revokes a held token set at its issuer: RFC 7009 for OAuth sources (the refresh token first,
 * then the access token, each with its `token_type_hint`; a 503 retried after `Retry-After`; then
 * the `superseded` access tokens, best effort), the source's `revokeCurrent` otherwise.
 * @internal
 */
export async function revokeAtServer(
  source: TokenSource,
  held: TokenSet | undefined,
  context: SourceContext,
  options: RevokeOptions,
  superseded: readonly TokenSet[] = [],
): Promise<ServerRevocation> {
  const tokens: RevokedToken[] = [];
  const failures: RevokeFailure[] = [];
  const earlier = { revoked: 0, failed: 0 };
  const result = (outcome: RevocationOutcome): ServerRevocation => ({
    outcome,
    tokens,
    failures,
    superseded: earlier,
  });
  if (held === undefined) return result('nothing-held');
  const retry: RetryPolicy = {
    maxAttempts: Math.max(1, Math.floor(options.maxAttempts ?? 3)),
    maxWaitMs: toMs(options.maxRetryWait ?? '30s', 'maxRetryWait'),
    signal: context.signal,
  };
  if (isOAuthSource(source)) {
    const list: [TokenTypeHint, string][] = [];
    const refresh = held.revealRefreshToken();
    if (refresh !== undefined) list.push(['refresh_token', refresh]);
    list.push(['access_token', held.revealAccessToken()]);
    for (const [hint, token] of list) {
      try {
        const revoked = await withRetry(() => source.revoke(token, hint, context), retry);
        if (!revoked) return result('unsupported');
        tokens.push(hint);
      } catch (error) {
        failures.push(failure(hint, error, context.credentialId));
      }
    }
    const now = Date.now();
    for (const set of superseded) {
      if (set.expiresAt <= now) continue;
      try {
        const token = set.revealAccessToken();
        await withRetry(() => source.revoke(token, 'access_token', context), retry);
        earlier.revoked++;
      } catch {
        earlier.failed++;
      }
    }
  } else if (typeof source.revokeCurrent === 'function') {
    const kind: RevokedToken = source.kind === 'api_key' ? 'api_key' : 'access_token';
    const revokeCurrent = source.revokeCurrent.bind(source);
    try {
      tokens.push(...(await withRetry(() => revokeCurrent(context), retry)));
    } catch (error) {
      failures.push(failure(kind, error, context.credentialId));
    }
  } else {
    return result('unsupported');
  }
  return result(failures.length === 0 ? 'revoked' : tokens.length === 0 ? 'failed' : 'partial');
}

interface RetryPolicy {
  readonly maxAttempts: number;
  readonly maxWaitMs: number;
  readonly signal: AbortSignal;
}

/** Calls `fn`, again after a 503 (honouring `Retry-After`, capped), at most `maxAttempts` times. */
async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (policy.signal.aborted) throw abortError(policy.signal);
    try {
      return await fn();
    } catch (error) {
      if (
        !(error instanceof TokenWardenError) ||
        error.status !== 503 ||
        attempt >= policy.maxAttempts
      ) {
        throw error;
      }
      const retryAfter = parseRetryAfter(error.response?.headers.get('retry-after') ?? null);
      await delay(Math.min(retryAfter ?? 1_000, policy.maxWaitMs), policy.signal);
    }
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function failure(token: RevokedToken, caught: unknown, credentialId: string): RevokeFailure {
  const error =
    caught instanceof TokenWardenError
      ? caught
      : new TokenWardenError(
          'ERR_SOURCE_FAILED',
          `Revoking the ${token} of credential "${credentialId}" failed.`,
          { credentialId },
        );
  const result: { -readonly [K in keyof RevokeFailure]: RevokeFailure[K] } = {
    token,
    code: error.code,
    error,
  };
  if (error.status !== undefined) result.status = error.status;
  return result;
}
