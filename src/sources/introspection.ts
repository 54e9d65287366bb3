import { invalidArgument } from '../errors.js';
import { createSkewClock } from '../internal/clock.js';
import { type Duration, toMs } from '../internal/duration.js';
import type { OAuthTokenSource, TokenTypeHint } from './oauth.js';
import { sanitizeText } from './token-response.js';

/**
 * What an authorization server says about a token (RFC 7662 §2.2): whether it is active, and
 * its non-secret claims. Only an `active` member that is the boolean `true` makes `active`
 * true: `"true"`, `1` or a missing member mean inactive.
 *
 * @example
 * ```ts
 * import { introspect, type IntrospectionResult } from 'tokenwarden';
 * const result: IntrospectionResult = await introspect(source, suspiciousToken);
 * if (result.active) console.log(result.clientId, result.scope, new Date((result.exp ?? 0) * 1000));
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2.2
 */
export interface IntrospectionResult {
  /** Whether the token is active (only a boolean `true` in the response counts). */
  readonly active: boolean;
  /** The scopes, split on spaces. */
  readonly scope?: readonly string[];
  /** The client the token was issued to (`client_id`). */
  readonly clientId?: string;
  /** The resource owner's human-readable identifier. */
  readonly username?: string;
  /** The token type, e.g. `Bearer`. */
  readonly tokenType?: string;
  /** Expiry, seconds since the epoch. */
  readonly exp?: number;
  /** Issue time, seconds since the epoch. */
  readonly iat?: number;
  /** Not-before time, seconds since the epoch. */
  readonly nbf?: number;
  /** The subject. */
  readonly sub?: string;
  /** The audience(s). */
  readonly aud?: string | readonly string[];
  /** The issuer. */
  readonly iss?: string;
  /** The token's identifier. */
  readonly jti?: string;
}

/**
 * Options of {@link introspect}.
 *
 * @example
 * ```ts
 * await introspect(source, token, { hint: 'refresh_token', timeout: '5s' });
 * ```
 */
export interface IntrospectOptions {
  /**
   * The `token_type_hint`.
   * @default undefined (no `token_type_hint` is sent)
   */
  hint?: TokenTypeHint | undefined;
  /**
   * Stops the request.
   * @default undefined (not abortable)
   */
  signal?: AbortSignal | undefined;
  /**
   * Timeout of the request (and of discovery, when it runs first).
   * @default '30s'
   */
  timeout?: Duration | undefined;
  /**
   * The fetch to use.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch | undefined;
}

/**
 * Asks the authorization server whether a token is active (RFC 7662 token introspection), at the
 * source's introspection endpoint (its `introspectionEndpoint` option, else the issuer's
 * `introspection_endpoint` metadata), authenticated as the source's client. Use it to check that
 * a revocation took, or to look a token up during an incident.
 *
 * @param source - An OAuth source: {@link clientCredentials} or {@link refreshToken}.
 * @param token - The raw token; it is sent only in the request body, to that endpoint.
 * @param options - Token type hint, abort signal, timeout, fetch.
 * @returns `active` (only a boolean `true` counts) and the non-secret claims; raw members beyond
 * the documented ones are not returned.
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` (synchronously) when `source` is not
 * an OAuth source or `token` is not a non-empty string.
 * @throws {@link TokenWardenError} `ERR_UNSUPPORTED` when no introspection endpoint is known,
 * `ERR_HTTP_STATUS`, `ERR_INVALID_RESPONSE`, `ERR_OAUTH_ERROR` ({@link OAuthError}, e.g.
 * `invalid_client`), or a transport code (`ERR_NETWORK`, `ERR_TIMEOUT`, `ERR_ABORTED`,
 * `ERR_REDIRECT`, `ERR_RESPONSE_TOO_LARGE`).
 * @example
 * ```ts
 * import { clientCredentials, introspect } from 'tokenwarden';
 * const source = clientCredentials({ issuer: 'https://auth.example.com', clientId: 'svc', clientSecret });
 * const { active } = await introspect(source, leakedToken, { hint: 'access_token' });
 * if (active) await revokeLeakedToken();
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7662
 */
export function introspect(
  source: OAuthTokenSource,
  token: string,
  options: IntrospectOptions = {},
): Promise<IntrospectionResult> {
  if (!source || typeof (source as Partial<OAuthTokenSource>).introspect !== 'function') {
    throw invalidArgument(
      'introspect() needs an OAuth source such as clientCredentials() or refreshToken().',
    );
  }
  if (typeof token !== 'string' || token === '') {
    throw invalidArgument('introspect() needs the token as a non-empty string.');
  }
  const fetcher = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  return source.introspect(
    token,
    {
      credentialId: 'introspection',
      current: undefined,
      signal: options.signal ?? new AbortController().signal,
      fetch: fetcher,
      timeoutMs: toMs(options.timeout ?? '30s', 'timeout'),
      maxResponseBytes: 65_536,
      defaultLifetimeMs: 3_600_000,
      clock: createSkewClock(),
    },
    options.hint,
  );
}

/**
 * Reads an introspection response: `active` is true only for the boolean `true`; claims of the
 * wrong type are dropped.
 *
 * @param json - The response object.
 * @returns The result.
 * @example
 * ```ts
 * parseIntrospection({ active: 'true' }); // { active: false }
 * ```
 * @internal
 */
export function parseIntrospection(json: Record<string, unknown>): IntrospectionResult {
  const result: { -readonly [K in keyof IntrospectionResult]: IntrospectionResult[K] } = {
    active: json['active'] === true,
  };
  const text = (name: string): string | undefined => {
    const value = json[name];
    return typeof value === 'string' ? sanitizeText(value, 512) : undefined;
  };
  const time = (name: string): number | undefined => {
    const value = json[name];
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  };
  const scope = text('scope');
  if (scope !== undefined) result.scope = scope.split(' ').filter((s) => s !== '');
  const clientId = text('client_id');
  if (clientId !== undefined) result.clientId = clientId;
  const username = text('username');
  if (username !== undefined) result.username = username;
  const tokenType = text('token_type');
  if (tokenType !== undefined) result.tokenType = tokenType;
  for (const name of ['exp', 'iat', 'nbf'] as const) {
    const value = time(name);
    if (value !== undefined) result[name] = value;
  }
  for (const name of ['sub', 'iss', 'jti'] as const) {
    const value = text(name);
    if (value !== undefined) result[name] = value;
  }
  const aud = json['aud'];
  if (typeof aud === 'string') result.aud = sanitizeText(aud, 512);
  else if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) {
    result.aud = aud.map((a: string) => sanitizeText(a, 512));
  }
  return Object.freeze(result);
}
