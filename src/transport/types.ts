import type { BlockReason } from '../errors.js';
import type { DpopContext } from '../sources/types.js';

/**
 * What a request policy does with a request to an origin that is not allow-listed.
 *
 * @example
 * ```ts
 * import type { ForeignOriginAction } from 'tokenwarden';
 * // Follow links to other sites, but never with the token.
 * const foreignOrigin: ForeignOriginAction = 'send-without-token';
 * warden.register('crawler', { source, origins: ['https://api.example.com'], foreignOrigin });
 * ```
 */
export type ForeignOriginAction = 'block' | 'send-without-token';

/**
 * What happened to a request the policy reported: `refused` — it was not sent at all;
 * `stripped` — it was sent, but without any credential header (a foreign origin in
 * `send-without-token` mode, or a redirect to another origin).
 */
export type BlockAction = 'refused' | 'stripped';

/** A token as the transport attaches it. */
export interface AttachedToken {
  /** Header name, e.g. `Authorization`. */
  readonly header: string;
  /** Full header value, e.g. `Bearer abc`. */
  readonly value: string;
  /** The raw token (to detect it in URLs). */
  readonly raw: string;
  /** A number that changes each time the credential's token changes. */
  readonly generation: number;
  /**
   * The DPoP prover when the token is DPoP-bound: every request attempt (each redirect hop,
   * each retry) then carries a fresh `DPoP` proof header for its own method and URL.
   */
  readonly dpop?: DpopContext | undefined;
}

/** The part of a credential the authenticated fetch talks to. @internal */
export interface TransportHost {
  /** The credential id. */
  readonly id: string;
  /** Allowed origins (normalised `URL.origin` strings). */
  readonly origins: ReadonlySet<string>;
  /** Whether plain http to non-loopback hosts is allowed (dangerous opt-out). */
  readonly allowInsecure: boolean;
  /** What to do with a request to a foreign origin. */
  readonly foreignOrigin: ForeignOriginAction;
  /** Every header name that can carry a credential and must never cross origins. */
  readonly credentialHeaders: readonly string[];
  /** The underlying fetch. */
  readonly fetch: typeof fetch;
  /** Largest number of redirects followed. */
  readonly maxRedirects: number;
  /** A token to attach now; waits for a refresh only if no valid token exists. */
  acquire(signal?: AbortSignal | null): Promise<AttachedToken>;
  /**
   * The response to a request sent with `generation` was a 401 that calls for a new token:
   * force one refresh (shared with other callers that saw the same token fail) and return the
   * new token, or throw if none can be had.
   */
  recover(generation: number, signal?: AbortSignal | null): Promise<AttachedToken>;
  /**
   * The token the credential holds right now, without refreshing or waiting, or `undefined`.
   * Optional: when present, the transport also scans the URLs of requests that go out without
   * a token (foreign origins in `send-without-token` mode) for the token.
   */
  peek?(): AttachedToken | undefined;
  /**
   * Reports a blocked or stripped request (emits the `blocked` event). `url` is already
   * sanitised (no query, fragment or userinfo). `action` says whether the request was sent.
   */
  blocked(reason: BlockReason, url: string, action?: BlockAction): void;
  /** Reports the outcome of a request (for metrics). */
  observed(outcome: RequestOutcome): void;
}

/** The outcome of one authenticated request, as metrics see it. */
export interface RequestOutcome {
  /** The request method as sent first (upper case for the standard methods). */
  readonly method: string;
  /** The request's origin. */
  readonly origin: string;
  /** The final status, or 0 for a network error. */
  readonly status: number;
  /** Wall time in milliseconds. */
  readonly durationMs: number;
  /** Whether the request was retried after a 401. */
  readonly retried: boolean;
  /** Whether a token was attached. */
  readonly authenticated: boolean;
  /**
   * What the call failed with, when it threw rather than returned a response: the code of a
   * tokenwarden error, else the thrown error's name (`TimeoutError`, `AbortError`, `TypeError`),
   * else the `typeof` of the thrown value. `undefined` when the call returned.
   */
  readonly error?: string | undefined;
}
