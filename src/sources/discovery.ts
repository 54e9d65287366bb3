import { invalidArgument, isTokenWardenError, TokenWardenError } from '../errors.js';
import { untilAborted } from '../internal/abort.js';
import { type HttpContext, httpRequest, parseJsonObject } from '../internal/http.js';
import { safeUrl } from '../internal/redact.js';
import { isSecureTransport } from '../internal/url.js';
import { sanitizeText } from './token-response.js';

/**
 * The parts of authorization server metadata tokenwarden uses, validated.
 *
 * @example
 * ```ts
 * import type { AuthorizationServerMetadata } from 'tokenwarden';
 * const metadata: AuthorizationServerMetadata = {
 *   issuer: 'https://auth.example.com',
 *   tokenEndpoint: 'https://auth.example.com/oauth/token',
 *   revocationEndpoint: 'https://auth.example.com/oauth/revoke',
 *   metadata: { issuer: 'https://auth.example.com', token_endpoint: '...', grant_types_supported: ['client_credentials'] },
 * };
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 */
export interface AuthorizationServerMetadata {
  /** The issuer identifier, exactly as configured (and as the server stated it). */
  readonly issuer: string;
  /** The token endpoint (https, or http on loopback). */
  readonly tokenEndpoint: string;
  /** The RFC 7009 revocation endpoint, when the server has one. */
  readonly revocationEndpoint?: string;
  /** The RFC 7662 introspection endpoint, when the server has one. */
  readonly introspectionEndpoint?: string;
  /** Every member of the metadata document (`__proto__`-style keys removed), for later use. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** The well-known suffix of RFC 8414 authorization server metadata. */
const OAUTH_WELL_KNOWN = '/.well-known/oauth-authorization-server';
/** The well-known suffix of OpenID Connect discovery. */
const OIDC_WELL_KNOWN = '/.well-known/openid-configuration';

interface CacheEntry {
  readonly promise: Promise<AuthorizationServerMetadata>;
  readonly controller: AbortController;
  settled: boolean;
  waiters: number;
}

// Module-wide so every source with the same issuer shares one discovery, whichever warden or
// credential it belongs to.
const cache = new Map<string, CacheEntry>();

/**
 * Fetches and validates the metadata of an authorization server from its issuer identifier:
 * RFC 8414 first (`/.well-known/oauth-authorization-server` inserted between host and path),
 * then OpenID Connect discovery (`<issuer>/.well-known/openid-configuration`) when the first
 * answers with a non-200 status or a redirect.
 *
 * The result is used only when its `issuer` equals the configured one exactly (a trailing slash
 * counts), so a document served for another issuer cannot redirect token requests. Endpoints must
 * be https (http only on loopback).
 *
 * Results are cached per issuer for the life of the process, and concurrent callers share one
 * request. A failure is not cached. A caller's abort fails only that caller; the shared request
 * is cancelled once every caller waiting for it has given up.
 *
 * @param issuer - The issuer identifier, e.g. `https://auth.example.com`.
 * @param context - Fetch, signal, timeout, byte cap and clock for the request.
 * @returns The validated metadata.
 * @throws {@link TokenWardenError} `ERR_ISSUER_MISMATCH`, `ERR_INVALID_RESPONSE`,
 * `ERR_HTTP_STATUS`, `ERR_REDIRECT`, `ERR_NETWORK`, `ERR_TIMEOUT`, `ERR_ABORTED`,
 * `ERR_RESPONSE_TOO_LARGE`; `ERR_INVALID_ARGUMENT` for an issuer that is not a valid identifier.
 * @example
 * ```ts
 * const metadata = await discover('https://auth.example.com', {
 *   fetch, timeoutMs: 10_000, maxResponseBytes: 65_536,
 * });
 * metadata.tokenEndpoint; // 'https://auth.example.com/oauth/token'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3 (metadata request)
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.3 (issuer validation)
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
 */
export async function discover(
  issuer: string,
  context: HttpContext,
): Promise<AuthorizationServerMetadata> {
  const issuerUrl = parseIssuer(issuer);
  const caller = context.signal;
  if (caller?.aborted) throw abortedError();

  let entry = cache.get(issuer);
  if (entry === undefined || entry.controller.signal.aborted) {
    const controller = new AbortController();
    const created: CacheEntry = {
      promise: fetchMetadata(issuer, issuerUrl, { ...context, signal: controller.signal }),
      controller,
      settled: false,
      waiters: 0,
    };
    created.promise.then(
      () => {
        created.settled = true;
      },
      () => {
        created.settled = true;
        if (cache.get(issuer) === created) cache.delete(issuer);
      },
    );
    cache.set(issuer, created);
    entry = created;
  }
  if (entry.settled || caller === undefined) return entry.promise;

  const shared = entry;
  shared.waiters += 1;
  try {
    return await untilAborted(shared.promise, caller, abortedError, () => {
      // Nobody else waits: stop the request rather than let it run to its timeout.
      if (shared.waiters === 1 && !shared.settled) shared.controller.abort();
    });
  } finally {
    shared.waiters -= 1;
  }
}

/**
 * Forgets cached discovery results, e.g. after an authorization server moved its endpoints.
 *
 * @param issuer - One issuer to forget; all when omitted.
 * @throws Never.
 * @example
 * ```ts
 * clearDiscoveryCache('https://auth.example.com');
 * ```
 */
export function clearDiscoveryCache(issuer?: string): void {
  if (issuer === undefined) cache.clear();
  else cache.delete(issuer);
}

/**
 * Validates an issuer identifier: an https URL (http only on loopback) without query, fragment
 * or credentials. The string itself is kept for the exact comparison with the metadata.
 *
 * @param issuer - The configured issuer.
 * @returns The parsed URL.
 * @throws {@link InvalidArgumentError} when it is not a valid issuer identifier.
 * @example
 * ```ts
 * parseIssuer('https://auth.example.com/tenant'); // URL
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 */
export function parseIssuer(issuer: unknown): URL {
  if (typeof issuer !== 'string' || issuer === '') {
    throw invalidArgument('issuer must be a URL string such as "https://auth.example.com".');
  }
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw invalidArgument('issuer is not a valid absolute URL.');
  }
  if (!isSecureTransport(url)) {
    throw invalidArgument('issuer must use https (http is accepted only for loopback hosts).');
  }
  if (url.search !== '' || url.hash !== '' || issuer.includes('?') || issuer.includes('#')) {
    throw invalidArgument('issuer must not contain a query or fragment (RFC 8414 §2).');
  }
  if (url.username !== '' || url.password !== '') {
    throw invalidArgument('issuer must not contain credentials.');
  }
  return url;
}

/**
 * The RFC 8414 metadata URL of an issuer: the well-known segment goes between host and path.
 *
 * @param issuer - The parsed issuer.
 * @returns E.g. `https://example.com/.well-known/oauth-authorization-server/tenant` for the issuer
 * `https://example.com/tenant`.
 * @example
 * ```ts
 * oauthMetadataUrl(new URL('https://example.com/tenant')).href;
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.1
 */
export function oauthMetadataUrl(issuer: URL): URL {
  const url = new URL(issuer.href);
  url.pathname =
    issuer.pathname === '/' ? OAUTH_WELL_KNOWN : `${OAUTH_WELL_KNOWN}${issuer.pathname}`;
  return url;
}

/**
 * The OpenID Connect discovery URL of an issuer: the well-known segment is appended to the path.
 *
 * @param issuer - The parsed issuer.
 * @returns E.g. `https://example.com/tenant/.well-known/openid-configuration`.
 * @example
 * ```ts
 * openIdConfigurationUrl(new URL('https://example.com/tenant')).href;
 * ```
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationRequest
 */
export function openIdConfigurationUrl(issuer: URL): URL {
  const url = new URL(issuer.href);
  url.pathname = `${issuer.pathname.replace(/\/$/, '')}${OIDC_WELL_KNOWN}`;
  return url;
}

async function fetchMetadata(
  issuer: string,
  issuerUrl: URL,
  context: HttpContext,
): Promise<AuthorizationServerMetadata> {
  let lastError: TokenWardenError | undefined;
  for (const url of [oauthMetadataUrl(issuerUrl), openIdConfigurationUrl(issuerUrl)]) {
    let result: Awaited<ReturnType<typeof httpRequest>>;
    try {
      result = await httpRequest({ url, label: 'discovery request' }, context);
    } catch (error) {
      // Servers that lack a document often redirect unknown paths to a login page.
      if (isTokenWardenError(error) && error.code === 'ERR_REDIRECT') {
        lastError = error;
        continue;
      }
      throw error;
    }
    if (result.status !== 200) {
      lastError = new TokenWardenError(
        'ERR_HTTP_STATUS',
        `The discovery request to ${safeUrl(url)} answered HTTP ${result.status}. Check the issuer, or configure tokenEndpoint explicitly.`,
        { status: result.status, response: result.response },
      );
      continue;
    }
    // A document that exists but is wrong is final: falling back could only downgrade.
    return validateMetadata(issuer, result.body, url, result.response);
  }
  throw lastError as TokenWardenError;
}

function validateMetadata(
  issuer: string,
  body: string,
  url: URL,
  response: Response,
): AuthorizationServerMetadata {
  const where = safeUrl(url);
  const json = parseJsonObject(body);
  if (json === undefined) {
    throw new TokenWardenError(
      'ERR_INVALID_RESPONSE',
      `The metadata at ${where} is not a JSON object. Check the issuer.`,
      { status: 200, response },
    );
  }
  const stated = json['issuer'];
  if (stated !== issuer) {
    const shown = typeof stated === 'string' ? `"${sanitizeText(stated, 200)}"` : 'no issuer';
    throw new TokenWardenError(
      'ERR_ISSUER_MISMATCH',
      `The metadata at ${where} names ${shown}, not the configured issuer "${issuer}". The issuer must match exactly, including any trailing slash; fix the configured issuer.`,
      { status: 200, response },
    );
  }
  const tokenEndpoint = metadataEndpoint(json, 'token_endpoint', where, response);
  if (tokenEndpoint === undefined) {
    throw new TokenWardenError(
      'ERR_INVALID_RESPONSE',
      `The metadata at ${where} has no token_endpoint. Configure tokenEndpoint explicitly.`,
      { status: 200, response },
    );
  }
  const revocationEndpoint = metadataEndpoint(json, 'revocation_endpoint', where, response);
  const introspectionEndpoint = metadataEndpoint(json, 'introspection_endpoint', where, response);
  const metadata: {
    -readonly [K in keyof AuthorizationServerMetadata]: AuthorizationServerMetadata[K];
  } = { issuer, tokenEndpoint, metadata: Object.freeze(json) };
  if (revocationEndpoint !== undefined) metadata.revocationEndpoint = revocationEndpoint;
  if (introspectionEndpoint !== undefined) metadata.introspectionEndpoint = introspectionEndpoint;
  return Object.freeze(metadata);
}

function metadataEndpoint(
  json: Record<string, unknown>,
  name: string,
  where: string,
  response: Response,
): string | undefined {
  const value = json[name];
  if (value === undefined || value === null) return undefined;
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || !isSecureTransport(url) || url.hash !== '' || url.username !== '') {
    throw new TokenWardenError(
      'ERR_INVALID_RESPONSE',
      `The metadata at ${where} has an unusable ${name}: it must be an https URL (http only on loopback) without fragment or credentials.`,
      { status: 200, response },
    );
  }
  return url.href;
}

function abortedError(): TokenWardenError {
  return new TokenWardenError('ERR_ABORTED', "Discovery was aborted by the caller's signal.");
}
