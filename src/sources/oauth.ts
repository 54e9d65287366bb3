import { invalidArgument, TokenWardenError } from '../errors.js';
import {
  type HttpContext,
  type HttpResult,
  httpRequest,
  parseJsonObject,
} from '../internal/http.js';
import { INSPECT, safeUrl } from '../internal/redact.js';
import { isSecureTransport, parseEndpoint } from '../internal/url.js';
import type { TokenSet } from '../token.js';
import {
  type ClientAuthentication,
  type ClientAuthMethod,
  type ClientSecret,
  createClientAuth,
  type PrivateKeyInput,
} from './client-auth.js';
import { discover, parseIssuer } from './discovery.js';
import { type IntrospectionResult, parseIntrospection } from './introspection.js';
import { oauthErrorFromJson, parseTokenResponse } from './token-response.js';
import type { SourceContext, SourceInfo, SourceKind, TokenSource } from './types.js';

/**
 * Options every OAuth source accepts: where the authorization server is, and how the client
 * authenticates. Give `issuer` (endpoints by discovery) or `tokenEndpoint` (explicit), or both
 * (explicit endpoints, `issuer` as the `private_key_jwt` audience).
 *
 * @example
 * ```ts
 * import { clientCredentials, refreshToken, type OAuthSourceOptions } from 'tokenwarden';
 * const server: OAuthSourceOptions = { issuer: 'https://auth.example.com', clientId: 'svc', clientSecret };
 * const jobs = clientCredentials({ ...server, scope: 'jobs:run' });
 * const user = refreshToken({ ...server, refreshToken: savedRefreshToken });
 * ```
 */
export interface OAuthSourceOptions {
  /**
   * The issuer identifier. Endpoints are discovered from it (RFC 8414, then OpenID Connect) and
   * the metadata is used only if its `issuer` equals this string exactly.
   * @default undefined (then `tokenEndpoint` is required)
   */
  issuer?: string | undefined;
  /**
   * The token endpoint. When given, no discovery happens.
   * @default discovered from `issuer`
   */
  tokenEndpoint?: string | URL | undefined;
  /**
   * The RFC 7009 revocation endpoint.
   * @default discovered from `issuer` when discovery is used, else none
   */
  revocationEndpoint?: string | URL | undefined;
  /**
   * The RFC 7662 introspection endpoint, used by {@link introspect}.
   * @default discovered from `issuer` when discovery is used, else none
   */
  introspectionEndpoint?: string | URL | undefined;
  /** The OAuth client id. */
  clientId: string;
  /**
   * The client secret (confidential clients). Kept in a private field, printed as `[REDACTED]`.
   * @default undefined (no secret: a public client, or `privateKey` authenticates it)
   */
  clientSecret?: string | ClientSecret | undefined;
  /**
   * The private key for `private_key_jwt` client authentication.
   * @default undefined (no `private_key_jwt`)
   */
  privateKey?: PrivateKeyInput | undefined;
  /**
   * The JWS algorithm of `private_key_jwt` assertions.
   * @default the JWK's `alg`, else inferred from the key (`RS256`, `PS256`, `ES256`, `EdDSA`, ...)
   */
  privateKeyAlgorithm?: string | undefined;
  /**
   * The `kid` of `private_key_jwt` assertions.
   * @default the JWK's `kid`, else none
   */
  privateKeyId?: string | undefined;
  /**
   * The client authentication method.
   * @default `client_secret_basic` with `clientSecret`, `private_key_jwt` with `privateKey`,
   * `none` (public client) otherwise
   */
  clientAuth?: ClientAuthMethod | undefined;
}

/**
 * The endpoints an OAuth source talks to.
 *
 * @example
 * ```ts
 * import type { OAuthEndpoints, OAuthTokenSource, SourceContext } from 'tokenwarden';
 * async function describeServer(source: OAuthTokenSource, context: SourceContext): Promise<string> {
 *   const { tokenEndpoint, revocationEndpoint }: OAuthEndpoints = await source.endpoints(context);
 *   return `${tokenEndpoint.href}, revocation: ${revocationEndpoint?.href ?? 'none'}`;
 * }
 * ```
 */
export interface OAuthEndpoints {
  /** The issuer identifier, when configured. */
  readonly issuer?: string;
  /** The token endpoint. */
  readonly tokenEndpoint: URL;
  /** The revocation endpoint, when known. */
  readonly revocationEndpoint?: URL;
  /** The introspection endpoint, when known. */
  readonly introspectionEndpoint?: URL;
}

/**
 * Which token an RFC 7009 revocation request names.
 *
 * @example
 * ```ts
 * import type { OAuthTokenSource, SourceContext, TokenTypeHint } from 'tokenwarden';
 * async function signOut(source: OAuthTokenSource, context: SourceContext): Promise<void> {
 *   const hint: TokenTypeHint = 'refresh_token';
 *   const token = context.current?.revealRefreshToken();
 *   if (token !== undefined) await source.revoke(token, hint, context);
 * }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 */
export type TokenTypeHint = 'access_token' | 'refresh_token';

/**
 * A token source that talks to an OAuth authorization server. Besides obtaining tokens it can
 * revoke them (RFC 7009) with the same client authentication.
 *
 * @example
 * ```ts
 * import { clientCredentials, type OAuthTokenSource } from 'tokenwarden';
 * const source: OAuthTokenSource = clientCredentials({
 *   issuer: 'https://auth.example.com', clientId: 'svc', clientSecret,
 * });
 * source.info(); // { kind: 'client_credentials', issuer: 'https://auth.example.com', clientId: 'svc' }
 * warden.register('svc', { source, origins: ['https://api.example.com'] });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2
 */
export interface OAuthTokenSource extends TokenSource {
  /**
   * Resolves the endpoints (runs discovery on first use, then from cache).
   * @param context - The credential's context.
   * @returns The endpoints.
   * @throws {@link TokenWardenError} from discovery, when the endpoints are not configured:
   * `ERR_NETWORK`, `ERR_TIMEOUT`, `ERR_ABORTED`, `ERR_HTTP_STATUS`, `ERR_REDIRECT`,
   * `ERR_RESPONSE_TOO_LARGE`, `ERR_INVALID_RESPONSE`, `ERR_ISSUER_MISMATCH`.
   */
  endpoints(context: SourceContext): Promise<OAuthEndpoints>;
  /**
   * Revokes a token at the server (RFC 7009). A 200 with any body is success.
   * @param token - The raw token.
   * @param hint - Which kind of token it is.
   * @param context - The credential's context.
   * @returns `true` when the server revoked it, `false` when no revocation endpoint is known.
   * @throws {@link TokenWardenError} `ERR_HTTP_STATUS` (e.g. 503; read `Retry-After` from
   * `error.response`), `ERR_OAUTH_ERROR` ({@link OAuthError}), a transport code (`ERR_NETWORK`,
   * `ERR_TIMEOUT`, `ERR_ABORTED`, `ERR_REDIRECT`, `ERR_RESPONSE_TOO_LARGE`), or a discovery code
   * (see {@link OAuthTokenSource.endpoints}).
   * @see https://www.rfc-editor.org/rfc/rfc7009#section-2
   */
  revoke(token: string, hint: TokenTypeHint, context: SourceContext): Promise<boolean>;
  /**
   * Asks the server about a token (RFC 7662), with the source's client authentication. Only an
   * `active` member that is the boolean `true` makes the result active. {@link introspect} is the
   * convenient form.
   * @param token - The raw token.
   * @param context - A context (`introspect()` builds one).
   * @param hint - Which kind of token it is, when known.
   * @returns The result: `active` and the non-secret claims.
   * @throws {@link TokenWardenError} `ERR_UNSUPPORTED` when no introspection endpoint is known,
   * `ERR_HTTP_STATUS`, `ERR_INVALID_RESPONSE`, `ERR_OAUTH_ERROR` ({@link OAuthError}), or a
   * transport code (`ERR_NETWORK`, `ERR_TIMEOUT`, `ERR_ABORTED`, `ERR_REDIRECT`,
   * `ERR_RESPONSE_TOO_LARGE`).
   * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
   */
  introspect(
    token: string,
    context: SourceContext,
    hint?: TokenTypeHint,
  ): Promise<IntrospectionResult>;
}

/** Options of {@link OAuthClient.requestToken}. */
export interface TokenRequestOptions {
  /**
   * The scopes asked for, recorded when the response names none.
   * @default undefined (no scope recorded)
   */
  readonly requestedScope?: readonly string[] | undefined;
  /**
   * The token type the response must have.
   * @default 'Bearer'
   */
  readonly expectedTokenType?: string | null;
}

/**
 * The shared plumbing of OAuth sources: validated options, endpoint resolution, client
 * authentication, token and revocation requests. Holds the client secret or key in a private
 * field and prints without it.
 *
 * @internal Used by the source factories; not part of the public API.
 */
export class OAuthClient {
  readonly clientId: string;
  readonly issuer: string | undefined;
  readonly #auth: ClientAuthentication;
  readonly #tokenEndpoint: URL | undefined;
  readonly #revocationEndpoint: URL | undefined;
  readonly #introspectionEndpoint: URL | undefined;

  /**
   * @param options - The OAuth options, validated here, synchronously.
   * @param name - The factory name, for messages.
   * @throws {@link InvalidArgumentError} on any invalid option.
   */
  constructor(options: OAuthSourceOptions, name: string) {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgument(`${name}() needs an options object.`);
    }
    if (options.issuer !== undefined) parseIssuer(options.issuer);
    this.issuer = options.issuer;
    this.#tokenEndpoint = secureEndpoint(options.tokenEndpoint, 'tokenEndpoint');
    this.#revocationEndpoint = secureEndpoint(options.revocationEndpoint, 'revocationEndpoint');
    this.#introspectionEndpoint = secureEndpoint(
      options.introspectionEndpoint,
      'introspectionEndpoint',
    );
    if (this.issuer === undefined && this.#tokenEndpoint === undefined) {
      throw invalidArgument(`${name}() needs issuer (for discovery) or tokenEndpoint.`);
    }
    this.#auth = createClientAuth({
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      privateKey: options.privateKey,
      privateKeyAlgorithm: options.privateKeyAlgorithm,
      privateKeyId: options.privateKeyId,
      method: options.clientAuth,
    });
    this.clientId = this.#auth.clientId;
    Object.freeze(this);
  }

  /** The client authentication method in use. */
  get clientAuth(): ClientAuthMethod {
    return this.#auth.method;
  }

  /**
   * Non-secret facts for {@link SourceInfo}.
   * @returns The issuer (or token endpoint without query) and client id.
   */
  describe(): Pick<SourceInfo, 'issuer' | 'clientId'> {
    const issuer = this.issuer ?? safeUrl(this.#tokenEndpoint as URL);
    return { issuer, clientId: this.clientId };
  }

  /**
   * The endpoints: explicit ones, or discovered from the issuer.
   * @param context - The credential's context.
   * @returns The endpoints.
   * @throws {@link TokenWardenError} from discovery.
   */
  async endpoints(context: SourceContext): Promise<OAuthEndpoints> {
    if (this.#tokenEndpoint !== undefined) {
      const explicit: { -readonly [K in keyof OAuthEndpoints]: OAuthEndpoints[K] } = {
        tokenEndpoint: this.#tokenEndpoint,
      };
      if (this.issuer !== undefined) explicit.issuer = this.issuer;
      if (this.#revocationEndpoint !== undefined) {
        explicit.revocationEndpoint = this.#revocationEndpoint;
      }
      if (this.#introspectionEndpoint !== undefined) {
        explicit.introspectionEndpoint = this.#introspectionEndpoint;
      }
      return explicit;
    }
    const metadata = await discover(this.issuer as string, httpContext(context));
    const found: { -readonly [K in keyof OAuthEndpoints]: OAuthEndpoints[K] } = {
      issuer: metadata.issuer,
      tokenEndpoint: new URL(metadata.tokenEndpoint),
    };
    const revocation = this.#revocationEndpoint ?? metadata.revocationEndpoint;
    if (revocation !== undefined) found.revocationEndpoint = new URL(revocation);
    const introspection = this.#introspectionEndpoint ?? metadata.introspectionEndpoint;
    if (introspection !== undefined) found.introspectionEndpoint = new URL(introspection);
    return found;
  }

  /**
   * Sends a token request with the grant's parameters plus client authentication, and parses
   * the answer.
   *
   * @param grantParams - `grant_type` and the grant's own parameters.
   * @param context - The credential's context.
   * @param options - Requested scope and expected token type.
   * @returns The validated token set.
   * @throws {@link OAuthError}, or {@link TokenWardenError} with a transport or response code.
   * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.2
   */
  async requestToken(
    grantParams: URLSearchParams,
    context: SourceContext,
    options: TokenRequestOptions = {},
  ): Promise<TokenSet> {
    const endpoints = await this.endpoints(context);
    const url = endpoints.tokenEndpoint;
    const dpop = context.dpop;
    let result: HttpResult;
    for (let attempt = 0; ; attempt++) {
      // Everything per attempt: a client assertion and a DPoP proof are single-use.
      const form = new URLSearchParams(grantParams);
      const headers: Record<string, string> = {};
      await this.#auth.apply(form, headers, audience(endpoints), context.clock);
      const sentNonce = dpop?.nonce('authorization', url);
      if (dpop) headers['dpop'] = await dpop.proof('authorization', 'POST', url);
      result = await httpRequest(
        { url, form, headers, label: 'token request' },
        httpContext(context),
      );
      dpop?.learn('authorization', url, result.headers);
      const offered = dpop?.nonce('authorization', url);
      const changed = offered !== undefined && offered !== sentNonce;
      // RFC 9449 §8: a server that wants a nonce answers 400 use_dpop_nonce with a fresh one;
      // one retry with it, never more.
      if (attempt > 0 || !changed || result.status !== 400) break;
      if (parseJsonObject(result.body)?.['error'] !== 'use_dpop_nonce') break;
    }
    const expected = options.expectedTokenType === undefined ? 'Bearer' : options.expectedTokenType;
    const set = await parseTokenResponse(result.status, result.body, {
      receivedAt: result.receivedAt,
      defaultLifetimeMs: context.defaultLifetimeMs,
      skewMs: context.clock.skewMs,
      expectedTokenType: dpop ? null : expected,
      requestedScope: options.requestedScope,
      credentialId: context.credentialId,
      response: result.response,
    });
    if (dpop) {
      const type = set.tokenType.toLowerCase();
      if (type !== 'dpop' && !(type === 'bearer' && dpop.allowBearer)) {
        throw new TokenWardenError(
          'ERR_INVALID_RESPONSE',
          `The token endpoint ${safeUrl(url)} answered a DPoP-bound token request with token_type ${type === 'bearer' ? 'Bearer' : 'other than DPoP'}: the token would not be bound to the credential's key. Enable DPoP at the server for this client, or set dpop.allowBearer to accept bearer tokens.`,
          { credentialId: context.credentialId, status: result.status },
        );
      }
    }
    return set;
  }

  /**
   * Revokes a token (RFC 7009).
   * @param token - The raw token.
   * @param hint - `access_token` or `refresh_token`.
   * @param context - The credential's context.
   * @returns `true` when revoked, `false` when no revocation endpoint is known.
   * @throws {@link OAuthError}, or {@link TokenWardenError} `ERR_HTTP_STATUS` / transport codes.
   * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
   */
  async revoke(token: string, hint: TokenTypeHint, context: SourceContext): Promise<boolean> {
    const endpoints = await this.endpoints(context);
    if (endpoints.revocationEndpoint === undefined) return false;
    const form = new URLSearchParams({ token, token_type_hint: hint });
    const headers: Record<string, string> = {};
    await this.#auth.apply(form, headers, audience(endpoints), context.clock);
    const result = await httpRequest(
      { url: endpoints.revocationEndpoint, form, headers, label: 'revocation request' },
      httpContext(context),
    );
    // RFC 7009 §2.2: the content of a 200 is ignored; the token is gone either way.
    if (result.status === 200) return true;
    const errorOptions = {
      status: result.status,
      credentialId: context.credentialId,
      response: result.response,
    };
    const json = parseJsonObject(result.body);
    throw (
      (json && oauthErrorFromJson(json, errorOptions)) ??
      new TokenWardenError(
        'ERR_HTTP_STATUS',
        `The revocation request to ${safeUrl(endpoints.revocationEndpoint)} answered HTTP ${result.status}. Retry later (see the Retry-After header on error.response).`,
        errorOptions,
      )
    );
  }

  /**
   * Introspects a token (RFC 7662).
   * @param token - The raw token.
   * @param context - The context.
   * @param hint - The token type hint, when known.
   * @returns `active` (only a boolean `true` counts) and the non-secret claims.
   * @throws {@link TokenWardenError} `ERR_UNSUPPORTED` without an endpoint, `ERR_HTTP_STATUS`,
   * `ERR_INVALID_RESPONSE`, {@link OAuthError}, or transport codes.
   * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
   */
  async introspect(
    token: string,
    context: SourceContext,
    hint?: TokenTypeHint,
  ): Promise<IntrospectionResult> {
    const endpoints = await this.endpoints(context);
    if (endpoints.introspectionEndpoint === undefined) {
      throw new TokenWardenError(
        'ERR_UNSUPPORTED',
        'No introspection endpoint is known: configure introspectionEndpoint, or use an issuer whose metadata has introspection_endpoint.',
        { credentialId: context.credentialId },
      );
    }
    const form = new URLSearchParams({ token });
    if (hint !== undefined) form.set('token_type_hint', hint);
    const headers: Record<string, string> = { accept: 'application/json' };
    await this.#auth.apply(form, headers, audience(endpoints), context.clock);
    const result = await httpRequest(
      { url: endpoints.introspectionEndpoint, form, headers, label: 'introspection request' },
      httpContext(context),
    );
    const errorOptions = {
      status: result.status,
      credentialId: context.credentialId,
      response: result.response,
    };
    const json = parseJsonObject(result.body);
    if (result.status === 200 && json) return parseIntrospection(json);
    throw (
      (result.status !== 200 && json && oauthErrorFromJson(json, errorOptions)) ||
      new TokenWardenError(
        result.status === 200 ? 'ERR_INVALID_RESPONSE' : 'ERR_HTTP_STATUS',
        result.status === 200
          ? `The introspection response from ${safeUrl(endpoints.introspectionEndpoint)} is not a JSON object.`
          : `The introspection request to ${safeUrl(endpoints.introspectionEndpoint)} answered HTTP ${result.status}.`,
        errorOptions,
      )
    );
  }

  /** @returns The non-secret description. */
  toJSON(): Record<string, unknown> {
    return { ...this.describe(), clientAuth: this.#auth.method };
  }

  /** @internal */
  [INSPECT](): string {
    return `OAuthClient ${JSON.stringify(this.toJSON())}`;
  }
}

/**
 * Normalises a scope option (`'a b'` or `['a', 'b']`) into scope tokens.
 *
 * @param value - The option value.
 * @param name - The option name, for messages.
 * @returns The tokens, or `undefined` when not given.
 * @throws {@link InvalidArgumentError} for malformed scopes.
 * @example
 * ```ts
 * normaliseScope('invoices:read invoices:write', 'scope'); // ['invoices:read', 'invoices:write']
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.3
 */
export function normaliseScope(value: unknown, name: string): string[] | undefined {
  if (value === undefined) return undefined;
  const list =
    typeof value === 'string'
      ? value.split(' ').filter((token) => token !== '')
      : Array.isArray(value)
        ? [...(value as unknown[])]
        : undefined;
  if (
    list === undefined ||
    // RFC 6749 §3.3 scope-token: visible ASCII except `"` and `\`.
    !list.every((token) => typeof token === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(token))
  ) {
    throw invalidArgument(
      `${name} must be a space-delimited string or an array of scope tokens (visible ASCII, no spaces, quotes or backslashes).`,
    );
  }
  return [...new Set(list as string[])];
}

/**
 * The `HttpContext` of a source's requests, from the credential's context.
 * @param context - The credential's context.
 * @returns The HTTP context.
 * @internal
 */
export function httpContext(context: SourceContext): HttpContext {
  return {
    fetch: context.fetch,
    signal: context.signal,
    timeoutMs: context.timeoutMs,
    maxResponseBytes: context.maxResponseBytes,
    clock: context.clock,
  };
}

function audience(endpoints: OAuthEndpoints): string {
  // RFC 7523 §3 allows the token endpoint; the issuer is preferred because it is one unambiguous
  // string per server (and what the audience-injection fixes of 2025 require).
  return endpoints.issuer ?? endpoints.tokenEndpoint.href;
}

function secureEndpoint(value: unknown, name: string): URL | undefined {
  if (value === undefined) return undefined;
  const url = parseEndpoint(value, name);
  if (!isSecureTransport(url)) {
    throw invalidArgument(`${name} must use https (http is accepted only for loopback hosts).`);
  }
  if (url.username !== '' || url.password !== '') {
    throw invalidArgument(`${name} must not contain credentials.`);
  }
  return url;
}

/**
 * What every OAuth grant source shares: its client, the scopes it asks for, endpoint
 * resolution, RFC 7009 revocation and a printable form without secrets. Grants add `obtain()`.
 *
 * @internal
 */
export abstract class OAuthGrantSource implements OAuthTokenSource {
  abstract readonly kind: SourceKind;
  protected readonly client: OAuthClient;
  protected readonly scope: string[] | undefined;

  /**
   * @param client - The validated client.
   * @param scope - The normalised scopes, if configured.
   */
  constructor(client: OAuthClient, scope: string[] | undefined) {
    this.client = client;
    this.scope = scope;
  }

  abstract obtain(context: SourceContext): Promise<TokenSet>;

  info(): SourceInfo {
    const info: { -readonly [K in keyof SourceInfo]: SourceInfo[K] } = {
      kind: this.kind,
      ...this.client.describe(),
    };
    if (this.scope !== undefined) info.scope = [...this.scope];
    return info;
  }

  endpoints(context: SourceContext): Promise<OAuthEndpoints> {
    return this.client.endpoints(context);
  }

  revoke(token: string, hint: TokenTypeHint, context: SourceContext): Promise<boolean> {
    return this.client.revoke(token, hint, context);
  }

  introspect(
    token: string,
    context: SourceContext,
    hint?: TokenTypeHint,
  ): Promise<IntrospectionResult> {
    return this.client.introspect(token, context, hint);
  }

  toJSON(): Record<string, unknown> {
    return { ...this.info(), clientAuth: this.client.clientAuth };
  }

  /** @internal */
  [INSPECT](): string {
    return `TokenSource ${JSON.stringify(this.toJSON())}`;
  }
}
