/**
 * The request policy of the authenticated fetch, as pure functions: URL resolution, origin
 * checks, detection of a token inside a URL, redirect semantics and `WWW-Authenticate` parsing.
 * Nothing here performs I/O, so each rule can be tested on its own.
 *
 * @module
 */
import { invalidArgument } from '../errors.js';
import { parseOrigin } from '../internal/url.js';

/**
 * Header names that carry credentials and are removed from every request that leaves the
 * original origin, whatever the credential's own header is. `Authorization` is the only one the
 * Fetch standard strips itself; the others are what follow-redirects, undici and axios
 * advisories were about.
 *
 * @internal
 */
export const ALWAYS_STRIPPED_HEADERS: readonly string[] = Object.freeze([
  'authorization',
  'cookie',
  'proxy-authorization',
  'dpop',
]);

/**
 * The headers that describe a request body; the Fetch standard drops them when a redirect turns
 * the request into a body-less GET.
 *
 * @internal
 */
export const REQUEST_BODY_HEADERS: readonly string[] = Object.freeze([
  'content-encoding',
  'content-language',
  'content-location',
  'content-type',
]);

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * The base URL the environment resolves relative URLs against: the document's base URL in a
 * window, `location.href` in a worker or in Deno with `--location`, nothing in Node.
 *
 * @returns The base URL, or `undefined` when the runtime has none.
 * @example
 * ```ts
 * environmentBase(); // 'https://app.example.com/page' in a browser, undefined in Node
 * ```
 * @internal
 */
export function environmentBase(): string | undefined {
  const scope = globalThis as { document?: { baseURI?: unknown }; location?: { href?: unknown } };
  const fromDocument = scope.document?.baseURI;
  if (typeof fromDocument === 'string' && fromDocument !== '') return fromDocument;
  const fromLocation = scope.location?.href;
  if (typeof fromLocation === 'string' && fromLocation !== '') return fromLocation;
  return undefined;
}

/**
 * Whether this runtime hides redirect targets from `fetch(..., { redirect: 'manual' })` (browsers
 * answer with an `opaqueredirect` response without status or `Location`), so tokenwarden cannot
 * follow redirects itself and has to rely on the browser's own redirect handling.
 *
 * @returns `true` in windows and web workers, `false` in Node, Deno's main thread and similar.
 * @example
 * ```ts
 * if (manualRedirectsAreOpaque()) console.log('the browser follows redirects');
 * ```
 * @internal
 */
export function manualRedirectsAreOpaque(): boolean {
  const scope = globalThis as { document?: unknown; WorkerGlobalScope?: unknown };
  return typeof scope.document === 'object' || typeof scope.WorkerGlobalScope === 'function';
}

/**
 * Resolves the URL a request goes to. Relative URLs resolve against the environment's base URL
 * when there is one (browsers); in Node there is none, so they are refused.
 *
 * @param input - The URL as given to `fetch`.
 * @returns The absolute URL.
 * @throws {@link InvalidArgumentError} (`ERR_INVALID_ARGUMENT`) when the URL is relative and the
 *   runtime has no base URL, or when it is not a valid URL.
 * @example
 * ```ts
 * resolveRequestUrl('https://api.example.com/v1/ping').origin; // 'https://api.example.com'
 * resolveRequestUrl('/v1/ping'); // throws ERR_INVALID_ARGUMENT in Node
 * ```
 * @internal
 */
export function resolveRequestUrl(input: string | URL): URL {
  if (input instanceof URL) return new URL(input.href);
  const base = environmentBase();
  try {
    return base === undefined ? new URL(input) : new URL(input, base);
  } catch {
    // The URL itself is left out of the message: it may carry a secret in its query.
    throw invalidArgument(
      base === undefined
        ? 'The request URL is relative or invalid, and this runtime has no base URL to resolve it against. Pass an absolute URL, or use credential.ky({ prefix }).'
        : 'The request URL is invalid. Pass an absolute http(s) URL.',
    );
  }
}

/**
 * The origin of a URL or URL prefix, in the normalised form that origin allow-lists hold. Use it
 * to add the origin of a ky `prefix` or `baseUrl` to a credential's allowed origins.
 *
 * @param value - An absolute URL such as `'https://billing.example.com/v1/'`, or (in browsers) a
 *   URL relative to the page.
 * @returns The origin, e.g. `'https://billing.example.com'`.
 * @throws {@link InvalidArgumentError} (`ERR_INVALID_ARGUMENT`) when `value` is not an http(s)
 *   URL, contains credentials, or is relative where the runtime has no base URL.
 * @example
 * ```ts
 * import { originOf } from 'tokenwarden';
 * originOf('https://billing.example.com:8443/v1/'); // 'https://billing.example.com:8443'
 * ```
 */
export function originOf(value: string | URL): string {
  if (typeof value !== 'string' && !(value instanceof URL)) {
    throw invalidArgument('prefix must be a URL string or a URL object.');
  }
  const base = environmentBase();
  let url: URL;
  try {
    url = base === undefined ? new URL(value) : new URL(value, base);
  } catch {
    throw invalidArgument(
      'prefix must be an absolute URL such as https://api.example.com/v1/ (relative prefixes work only in browsers).',
    );
  }
  return parseOrigin(url, 'prefix');
}

/**
 * Whether a URL's origin is on an allow-list. Origins compare exactly: scheme, host and port
 * (default ports normalised away by the URL parser).
 *
 * @param url - The request URL.
 * @param origins - Allowed origins, as `URL.origin` strings.
 * @returns `true` when the origin is allowed.
 * @example
 * ```ts
 * isOriginAllowed(new URL('https://a.example.com:443/x'), new Set(['https://a.example.com'])); // true
 * ```
 * @internal
 */
export function isOriginAllowed(url: URL, origins: ReadonlySet<string>): boolean {
  // Opaque origins ('null': data:, blob:, file:) can never be allow-listed.
  return url.origin !== 'null' && origins.has(url.origin);
}

function utf8Base64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * The forms in which a token can appear inside a URL, lower-cased: raw, URL-encoded, and base64
 * and base64url at every byte alignment (so a token inside a larger encoded blob, such as
 * `base64("user:" + token)`, is found too).
 *
 * @param raw - The raw token.
 * @returns The lower-cased needles to look for.
 * @example
 * ```ts
 * tokenNeedles('s3cr3t-token'); // ['s3cr3t-token', ..., 'cznjcjn0lxrva2vu', ...]
 * ```
 * @internal
 */
export function tokenNeedles(raw: string): string[] {
  const needles = new Set<string>();
  if (raw === '') return [];
  needles.add(raw);
  needles.add(encodeURIComponent(raw));
  const token = new TextEncoder().encode(raw);
  for (let shift = 0; shift < 3; shift++) {
    const bytes = new Uint8Array(shift + token.length);
    bytes.set(token, shift);
    const encoded = utf8Base64(bytes);
    // Keep only the characters whose six bits come from the token alone: the leading ones mix in
    // the shift bytes, the trailing partial one mixes in whatever follows the token.
    const core = encoded.slice(Math.ceil((shift * 8) / 6), Math.floor((bytes.length * 8) / 6));
    if (shift > 0 && core.length < 8) continue;
    if (core === '') continue;
    needles.add(core);
    needles.add(core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return [...needles].map((needle) => needle.toLowerCase());
}

function percentDecode(value: string): string {
  // Decode run by run so one malformed escape does not stop the rest from being decoded.
  return value.replace(/(?:%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/**
 * Whether a URL contains a token in any position (userinfo, host, path, query, fragment) and any
 * of the forms of {@link tokenNeedles}, both as written and percent-decoded (repeatedly, to catch
 * double encoding). The match ignores case because the URL parser lower-cases hosts and
 * percent-escapes may use either case.
 *
 * @param url - The parsed request URL.
 * @param raw - The raw token.
 * @param original - The URL string as the caller wrote it, before parsing, if any.
 * @param needles - `tokenNeedles(raw)`, when the caller has them already (they cost more to
 * compute than the search).
 * @returns `true` when the token appears in the URL.
 * @example
 * ```ts
 * urlContainsToken(new URL('https://a.example.com/?t=s3cr3t'), 's3cr3t'); // true
 * ```
 * @internal
 */
export function urlContainsToken(
  url: URL,
  raw: string,
  original?: string,
  needles: readonly string[] = tokenNeedles(raw),
): boolean {
  if (needles.length === 0) return false;
  const haystacks = new Set<string>();
  for (const start of original === undefined ? [url.href] : [url.href, original]) {
    let current = start;
    for (let round = 0; round < 4; round++) {
      haystacks.add(current.toLowerCase());
      const decoded = percentDecode(current);
      if (decoded === current) break;
      current = decoded;
    }
  }
  for (const haystack of haystacks) {
    for (const needle of needles) if (haystack.includes(needle)) return true;
  }
  return false;
}

/**
 * Whether a status is one of the redirects `fetch` follows.
 *
 * @param status - An HTTP status.
 * @returns `true` for 301, 302, 303, 307 and 308.
 * @example
 * ```ts
 * isRedirectStatus(307); // true
 * ```
 * @internal
 */
export function isRedirectStatus(status: number): boolean {
  return REDIRECT_STATUSES.has(status);
}

/**
 * Whether following a redirect drops the request body and turns the request into a GET, as the
 * Fetch standard's HTTP-redirect fetch does: 303 for anything but GET/HEAD, and 301/302 for POST.
 * 307 and 308 keep method and body.
 *
 * @param status - The redirect status.
 * @param method - The method of the request that was redirected.
 * @returns `true` when the next request is a body-less GET.
 * @example
 * ```ts
 * redirectBecomesGet(303, 'PUT'); // true
 * redirectBecomesGet(307, 'POST'); // false
 * ```
 * @see https://fetch.spec.whatwg.org/#http-redirect-fetch
 * @internal
 */
export function redirectBecomesGet(status: number, method: string): boolean {
  if (status === 303) return method !== 'GET' && method !== 'HEAD';
  return (status === 301 || status === 302) && method === 'POST';
}

/** One challenge of a `WWW-Authenticate` header. */
export interface AuthChallenge {
  /** The auth scheme, lower-cased, e.g. `bearer`. */
  readonly scheme: string;
  /** The token68 value, for schemes that use one instead of parameters. */
  readonly token68?: string;
  /** The parameters, names lower-cased, values unquoted. The first occurrence wins. */
  readonly params: ReadonlyMap<string, string>;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))/;

/**
 * Parses a `WWW-Authenticate` header value into its challenges (RFC 9110 §11.6.1): several
 * challenges in one value, quoted strings with escapes and commas, token68 values, and junk that
 * is skipped rather than thrown on.
 *
 * @param header - The header value (several headers joined with `, ` as `Headers.get` does).
 * @returns The challenges in order; empty for an absent or unparseable header.
 * @throws Nothing: malformed input yields fewer challenges, never an exception.
 * @example
 * ```ts
 * parseWwwAuthenticate('Bearer realm="api", error="invalid_token", Basic realm="x"');
 * // [{ scheme: 'bearer', params: Map { realm → 'api', error → 'invalid_token' } },
 * //  { scheme: 'basic', params: Map { realm → 'x' } }]
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-11.6.1
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 */
export function parseWwwAuthenticate(header: string | null | undefined): AuthChallenge[] {
  if (!header) return [];
  type Mutable = { scheme: string; token68?: string; params: Map<string, string> };
  const challenges: Mutable[] = [];
  let current: Mutable | undefined;
  let i = 0;
  const length = header.length;
  const skip = (chars: string): void => {
    while (i < length && chars.includes(header[i] as string)) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < length && TCHAR.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  while (i < length) {
    skip(' \t,');
    if (i >= length) break;
    const name = readToken();
    if (name === '') {
      i++; // A character no grammar rule allows here: skip it and resynchronise.
      continue;
    }
    skip(' \t');
    if (header[i] === '=' && current !== undefined) {
      i++;
      skip(' \t');
      let value: string;
      if (header[i] === '"') {
        i++;
        value = '';
        while (i < length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < length) i++;
          value += header[i];
          i++;
        }
        i++; // the closing quote (or past the end of an unterminated string)
      } else {
        value = readToken();
      }
      const key = name.toLowerCase();
      if (!current.params.has(key)) current.params.set(key, value);
      continue;
    }
    current = { scheme: name.toLowerCase(), params: new Map() };
    challenges.push(current);
    const token68 = TOKEN68.exec(header.slice(i));
    if (token68) {
      current.token68 = token68[0];
      i += token68[0].length;
    }
  }
  return challenges;
}

/**
 * Whether a resource server's 401 asks for a DPoP nonce: a `DPoP` challenge with
 * `error="use_dpop_nonce"` (RFC 9449 §9).
 *
 * @param response - The response.
 * @returns `true` for a nonce challenge.
 * @example
 * ```ts
 * const retry = isDpopNonceChallenge(response) && response.headers.has('dpop-nonce');
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-9
 * @internal
 */
export function isDpopNonceChallenge(response: Response): boolean {
  if (response.status !== 401) return false;
  return parseWwwAuthenticate(response.headers.get('www-authenticate')).some(
    (challenge) =>
      challenge.scheme === 'dpop' && challenge.params.get('error') === 'use_dpop_nonce',
  );
}

/**
 * Decides whether a 401 calls for a new token: yes when the response has no challenge, when a
 * Bearer or DPoP challenge says `error="invalid_token"`, or when a challenge carries no `error`
 * at all (an expired or revoked token is often answered that way). Other errors
 * (`invalid_request`, `insufficient_scope`, `use_dpop_nonce`) are not cured by a new token.
 * Challenges of other schemes count only when there is no Bearer or DPoP challenge, so an API-key
 * scheme such as `ApiKey` is handled the same way.
 *
 * @param header - The response's `WWW-Authenticate` header.
 * @returns `true` when one refresh-and-retry is worth doing.
 * @example
 * ```ts
 * unauthorizedCallsForRefresh('Bearer error="invalid_token"'); // true
 * unauthorizedCallsForRefresh('Bearer error="insufficient_scope"'); // false
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 * @internal
 */
export function unauthorizedCallsForRefresh(header: string | null): boolean {
  const challenges = parseWwwAuthenticate(header);
  const tokenChallenges = challenges.filter((c) => c.scheme === 'bearer' || c.scheme === 'dpop');
  const relevant = tokenChallenges.length > 0 ? tokenChallenges : challenges;
  if (relevant.length === 0) return true;
  return relevant.some((challenge) => {
    const error = challenge.params.get('error');
    return error === undefined || error === 'invalid_token';
  });
}
