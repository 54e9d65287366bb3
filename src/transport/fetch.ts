import type { BlockReason } from '../errors.js';
import { BlockedRequestError, isTokenWardenError, TokenWardenError } from '../errors.js';
import { untilAborted } from '../internal/abort.js';
import { errorKind } from '../internal/error-kind.js';
import { safeUrl } from '../internal/redact.js';
import { isSecureTransport } from '../internal/url.js';
import {
  ALWAYS_STRIPPED_HEADERS,
  isDpopNonceChallenge,
  isOriginAllowed,
  isRedirectStatus,
  manualRedirectsAreOpaque,
  REQUEST_BODY_HEADERS,
  redirectBecomesGet,
  resolveRequestUrl,
  tokenNeedles,
  unauthorizedCallsForRefresh,
  urlContainsToken,
} from './policy.js';
import type { AttachedToken, BlockAction, TransportHost } from './types.js';

/** The default cap on redirects, the same as the Fetch standard's. */
const DEFAULT_MAX_REDIRECTS = 20;

/** `RequestInit` keys the transport sets itself on every hop. */
const CONTROLLED_INIT_KEYS = new Set([
  'method',
  'headers',
  'body',
  'signal',
  'redirect',
  'duplex',
  'window',
]);

/** A request, normalised once, that can be sent several times (redirect hops, the 401 retry). */
interface PreparedRequest {
  /** The URL of the first hop. */
  readonly url: URL;
  /** The URL string as the caller wrote it, scanned for the token alongside the parsed URL. */
  readonly original: string | undefined;
  readonly method: string;
  /** The caller's headers, already stripped of every credential header tokenwarden controls. */
  readonly headers: Headers;
  /** The buffered body, replayable. */
  readonly body: ArrayBuffer | null;
  /** A streamed body, sendable once; a redirect or 401 that needs it again cannot be replayed. */
  readonly stream: ReadableStream<Uint8Array> | null;
  readonly signal: AbortSignal | null;
  readonly redirect: RequestRedirect;
  /** Every other `RequestInit` field, forwarded untouched to the underlying fetch. */
  readonly passthrough: Record<string, unknown>;
}

/** What one pass through the redirect chain ended with. */
interface ChainResult {
  readonly response: Response;
  /** Whether the request that produced `response` carried the token. */
  readonly credentialed: boolean;
}

/** Mutable bookkeeping of one call, for `observed`. */
interface CallState {
  sent: boolean;
  retried: boolean;
  /** A resource server sent a new DPoP nonce during the last chain. */
  nonceChanged: boolean;
}

function now(): number {
  return typeof globalThis.performance?.now === 'function' ? performance.now() : Date.now();
}

function isRequestLike(input: unknown): input is Request {
  if (typeof Request === 'function' && input instanceof Request) return true;
  // A Request from another realm (an iframe, a polyfill) fails `instanceof` but quacks the same.
  return (
    typeof input === 'object' &&
    input !== null &&
    typeof (input as Request).url === 'string' &&
    typeof (input as Request).method === 'string' &&
    typeof (input as Request).clone === 'function' &&
    typeof (input as Request).headers === 'object'
  );
}

function throwIfAborted(signal: AbortSignal | null): void {
  if (signal?.aborted) throw signal.reason;
}

/**
 * Copies headers entry by entry. `new Headers(other)` is not trusted: with request interceptors
 * installed (msw patches the fetch globals) it was seen to drop entries of a Request built from
 * another Request plus init, and a dropped header is a silent change of the caller's request.
 */
function copyHeaders(source: Headers): Headers {
  const copy = new Headers();
  source.forEach((value, name) => {
    copy.append(name, value);
  });
  return copy;
}

function discard(response: Response): void {
  // Release the connection of a response nobody will read; failures do not matter here.
  response.body?.cancel().catch(() => undefined);
}

function passthroughOf(request: Request, init: RequestInit | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (init !== undefined && init !== null) {
    for (const key of Object.keys(init)) {
      if (!CONTROLLED_INIT_KEYS.has(key)) out[key] = (init as Record<string, unknown>)[key];
    }
  }
  // Fields a Request input carries that a fresh fetch call would reset. Only non-default values
  // are copied: some runtimes reject fields they do not implement (Workers reject `cache`).
  const fields: Array<[string, unknown, unknown]> = [
    ['cache', request.cache, 'default'],
    ['credentials', request.credentials, 'same-origin'],
    ['integrity', request.integrity, ''],
    ['keepalive', request.keepalive, false],
    ['referrerPolicy', request.referrerPolicy, ''],
    ['referrer', request.referrer, 'about:client'],
  ];
  for (const [key, value, fallback] of fields) {
    if (!(key in out) && value !== undefined && value !== fallback) out[key] = value;
  }
  // 'navigate' cannot be passed to fetch; 'cors' is the default.
  if (
    !('mode' in out) &&
    request.mode !== undefined &&
    !['cors', 'navigate'].includes(request.mode)
  ) {
    out['mode'] = request.mode;
  }
  return out;
}

/** Methods a simple init may name: already in the form fetch normalises them to. */
const SIMPLE_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const SIMPLE_INIT_KEYS = new Set(['method', 'headers', 'body', 'signal', 'redirect']);
const REDIRECT_MODES = new Set(['follow', 'manual', 'error']);

/**
 * Whether `init` is one that needs no Request to normalise: only method (already normalised),
 * headers, a string body (not on GET or HEAD), signal and redirect. Anything else takes the
 * Request path, so the platform's own rules (and errors) apply to it.
 */
function isSimpleInit(init: RequestInit | undefined): boolean {
  if (init === undefined || init === null) return true;
  if (typeof init !== 'object') return false;
  for (const key of Object.keys(init)) if (!SIMPLE_INIT_KEYS.has(key)) return false;
  const { method, body, redirect, signal } = init;
  if (method !== undefined && !(typeof method === 'string' && SIMPLE_METHODS.has(method))) {
    return false;
  }
  if (redirect !== undefined && !REDIRECT_MODES.has(redirect)) return false;
  if (body !== undefined && body !== null) {
    if (typeof body !== 'string') return false;
    if (method === undefined || method === 'GET' || method === 'HEAD') return false;
  }
  if (signal !== undefined && signal !== null) {
    if (typeof AbortSignal !== 'function' || !(signal instanceof AbortSignal)) return false;
  }
  return true;
}

/** {@link prepare} for a URL and a simple init: what `new Request(url, init)` would give. */
function prepareSimple(
  input: unknown,
  url: URL,
  init: RequestInit | undefined,
  credentialHeaders: Iterable<string>,
): PreparedRequest {
  const headers = new Headers(init?.headers ?? undefined);
  for (const name of credentialHeaders) headers.delete(name);
  let body: ArrayBuffer | null = null;
  if (typeof init?.body === 'string') {
    const bytes = new TextEncoder().encode(init.body);
    body = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    // As the Fetch standard's body extraction does for a string.
    if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
  }
  return {
    url,
    original: typeof input === 'string' ? input : undefined,
    method: init?.method ?? 'GET',
    headers,
    body,
    stream: null,
    signal: init?.signal ?? null,
    redirect: init?.redirect ?? 'follow',
    passthrough: {},
  };
}

async function prepare(
  input: unknown,
  init: RequestInit | undefined,
  credentialHeaders: Iterable<string>,
): Promise<PreparedRequest> {
  const fromRequest = isRequestLike(input);
  const url = fromRequest
    ? resolveRequestUrl(input.url)
    : resolveRequestUrl(input instanceof URL ? input : String(input));
  if (!fromRequest && isSimpleInit(init)) return prepareSimple(input, url, init, credentialHeaders);
  // Let the platform apply its own init-over-Request rules (method normalisation, header
  // replacement, body-on-GET errors) exactly as the global fetch would. A Request without an
  // init is read as it is: copying it would cost a new Request (and its signal) per call.
  const request =
    fromRequest && (init === undefined || init === null)
      ? input
      : new Request(fromRequest ? input : url.href, init);
  const streamed =
    typeof ReadableStream === 'function' && init?.body instanceof ReadableStream
      ? request.body
      : null;
  // Any other body is buffered so redirects (307/308) and the 401 retry can send it again. A
  // Request input's body is always a stream to us, so it is buffered too; callers that must not
  // buffer pass a ReadableStream as init.body.
  const body = streamed === null && request.body !== null ? await request.arrayBuffer() : null;
  const headers = copyHeaders(request.headers);
  for (const name of credentialHeaders) headers.delete(name);
  const signal =
    init?.signal !== undefined ? init.signal : fromRequest ? (input.signal ?? null) : null;
  return {
    url,
    original: typeof input === 'string' ? input : fromRequest ? input.url : undefined,
    method: request.method,
    headers,
    body,
    stream: streamed,
    signal,
    redirect: request.redirect,
    passthrough: passthroughOf(request, init),
  };
}

/**
 * Creates the authenticated fetch of a credential: the one place where a token meets a request.
 * It is fetch-compatible (a `string`, `URL` or `Request` input and an `init` that overrides the
 * Request's fields), so any fetch-based client can sit on top of it.
 *
 * For each call it:
 * 1. resolves the URL (relative URLs only where the runtime has a base URL, i.e. browsers);
 * 2. checks the origin against the allow-list — a foreign origin is refused
 *    (`foreignOrigin: 'block'`, the default) or sent with every credential header removed
 *    (`'send-without-token'`); either way a `blocked` event with reason `origin-not-allowed` is
 *    reported, with action `refused` or `stripped`;
 * 3. refuses plain http except to loopback hosts, unless the credential opted out;
 * 4. acquires the token and refuses any URL that contains it (raw, URL-encoded, base64,
 *    base64url; path, query, fragment, userinfo);
 * 5. removes caller-set headers named like any credential header and puts the token in the
 *    credential's header only;
 * 6. follows redirects itself (`redirect: 'manual'`), re-checking every hop: no credential
 *    header (`Authorization`, the API-key header, `Cookie`, `Proxy-Authorization`, `DPoP`) is
 *    ever sent to an origin other than the request's own, and once stripped it stays stripped;
 * 7. on a 401 that calls for a new token, forces one refresh and replays the request once.
 *
 * Behaviours worth knowing:
 * - Bodies are buffered so they can be replayed after a 307/308 or a 401, except a
 *   `ReadableStream` passed as `init.body`, which is streamed: a 307/308 that would need it again
 *   fails with `ERR_REDIRECT` (as the Fetch standard fails it), and a 401 is returned without a
 *   retry.
 * - `redirect: 'manual'` returns the 3xx response; `redirect: 'error'` fails with `ERR_REDIRECT`.
 * - When the refresh after a 401 fails with `ERR_REAUTH_REQUIRED` (or the caller aborts), that
 *   error is thrown; any other refresh failure returns the original 401 response.
 * - Browsers hide redirect targets from `redirect: 'manual'`. There, a request whose token goes in
 *   `Authorization` is sent with `redirect: 'follow'`, because the Fetch standard makes browsers
 *   drop `Authorization` on a cross-origin redirect; a request whose token goes in a custom
 *   header (which browsers do forward) is sent with `redirect: 'manual'`, and a redirect then
 *   fails with `ERR_REDIRECT` rather than risk sending the key to another origin.
 * - `observed` is reported once per call that sent anything (status 0 on a network error or an
 *   abort, with what the call threw as `error`); a request refused by the policy is reported
 *   only through `blocked`.
 *
 * @param host - The credential side: allow-list, token acquisition and recovery, reporting.
 * @returns A function with the signature of the global `fetch`.
 * @throws The returned function rejects with {@link BlockedRequestError} (`ERR_ORIGIN_NOT_ALLOWED`,
 *   `ERR_INSECURE_TRANSPORT`, `ERR_TOKEN_IN_URL`), {@link TokenWardenError} (`ERR_REDIRECT`,
 *   `ERR_INVALID_ARGUMENT` for a relative URL in Node, `ERR_REAUTH_REQUIRED` and the other errors
 *   of token acquisition), the signal's reason on abort, or the underlying fetch's error.
 * @example
 * ```ts
 * const authenticatedFetch = createAuthenticatedFetch(host);
 * const res = await authenticatedFetch('https://billing.example.com/v1/invoices', {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify({ amount: 10 }),
 * });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.3.2
 * @see https://fetch.spec.whatwg.org/#http-redirect-fetch
 */
export function createAuthenticatedFetch(host: TransportHost): typeof fetch {
  const maxRedirects =
    Number.isInteger(host.maxRedirects) && host.maxRedirects >= 0
      ? host.maxRedirects
      : DEFAULT_MAX_REDIRECTS;
  // Every name removed from caller headers before the token is attached.
  const ownHeaders = [...new Set(host.credentialHeaders.map((name) => name.toLowerCase()))];
  // Every name removed when a request leaves its origin.
  const strippedHeaders = [...new Set([...ownHeaders, ...ALWAYS_STRIPPED_HEADERS])];
  // The last token this fetch attached: lets requests that go out without a token (foreign
  // origins in send-without-token mode) be scanned for it when the host cannot peek.
  let lastRaw: string | undefined;
  // The encoded forms of the token in use, computed once per token rather than per request
  // (the token itself is kept the same way in lastRaw).
  let needles: { readonly raw: string; readonly forms: readonly string[] } | undefined;
  const containsToken = (url: URL, raw: string, original?: string): boolean => {
    if (needles?.raw !== raw) needles = { raw, forms: tokenNeedles(raw) };
    return urlContainsToken(url, raw, original, needles.forms);
  };

  const knownToken = (): string | undefined => {
    try {
      return host.peek?.()?.raw ?? lastRaw;
    } catch {
      return lastRaw;
    }
  };

  const reportableUrl = (url: URL): string => {
    const safe = safeUrl(url);
    const raw = knownToken();
    // safeUrl keeps the path, and a path can carry the token.
    return raw !== undefined && containsToken(new URL(safe), raw)
      ? `${url.origin}/[REDACTED]`
      : safe;
  };

  const report = (reason: BlockReason, url: string, action: BlockAction): void => {
    try {
      host.blocked(reason, url, action);
    } catch {
      // A failing listener must not change what the policy does with the request.
    }
  };

  const block = (
    code: 'ERR_ORIGIN_NOT_ALLOWED' | 'ERR_INSECURE_TRANSPORT' | 'ERR_TOKEN_IN_URL',
    reason: BlockReason,
    url: URL,
    message: string,
  ): BlockedRequestError => {
    const reported = reportableUrl(url);
    report(reason, reported, 'refused');
    return new BlockedRequestError(code, reason, reported, message, { credentialId: host.id });
  };

  const tokenInUrl = (url: URL): BlockedRequestError =>
    block(
      'ERR_TOKEN_IN_URL',
      'token-in-url',
      url,
      `Request blocked: its URL contains the token of credential "${host.id}". Tokens travel only in headers; remove it from the URL.`,
    );

  const redirectError = (message: string): TokenWardenError =>
    new TokenWardenError('ERR_REDIRECT', message, { credentialId: host.id });

  const setToken = (headers: Headers, token: AttachedToken): void => {
    try {
      headers.set(token.header, token.value);
    } catch {
      // The platform's error may quote the value, so it is not kept as the cause.
      throw new TokenWardenError(
        'ERR_SOURCE_FAILED',
        `The token of credential "${host.id}" cannot be sent in the "${token.header}" header (invalid header name or value). Check the token source.`,
        { credentialId: host.id },
      );
    }
  };

  const redirectModeFor = (
    prepared: PreparedRequest,
    token: AttachedToken | undefined,
  ): RequestRedirect => {
    if (!manualRedirectsAreOpaque()) return 'manual';
    if (prepared.redirect !== 'follow') return prepared.redirect;
    // Browsers drop Authorization on a cross-origin redirect themselves but forward any other
    // header, so only an Authorization-borne token may ride a redirect the browser follows.
    // A DPoP proof names the URL it is for, so every hop needs its own: never let the browser
    // follow with one.
    if (token === undefined || (token.header.toLowerCase() === 'authorization' && !token.dpop)) {
      return 'follow';
    }
    return 'manual';
  };

  const runChain = async (
    prepared: PreparedRequest,
    token: AttachedToken | undefined,
    state: CallState,
  ): Promise<ChainResult> => {
    const headers = copyHeaders(prepared.headers);
    let url = prepared.url;
    let method = prepared.method;
    let body: ArrayBuffer | ReadableStream<Uint8Array> | null = prepared.stream ?? prepared.body;
    let credentialed = token !== undefined;
    let hops = 0;
    for (;;) {
      throwIfAborted(prepared.signal);
      const hopHeaders = copyHeaders(headers);
      let sentNonce: string | undefined;
      if (credentialed && token !== undefined) {
        setToken(hopHeaders, token);
        if (token.dpop) {
          sentNonce = token.dpop.nonce('resource', url);
          hopHeaders.set('DPoP', await token.dpop.proof('resource', method, url, token.raw));
        }
      }
      const mode = redirectModeFor(prepared, credentialed ? token : undefined);
      const init: Record<string, unknown> = {
        ...prepared.passthrough,
        method,
        headers: hopHeaders,
        body,
        signal: prepared.signal,
        redirect: mode,
      };
      // Node and the Fetch standard require `duplex: 'half'` for a streamed request body.
      if (body instanceof ReadableStream) init['duplex'] = 'half';
      state.sent = true;
      const response = await host.fetch(url.href, init as RequestInit);
      if (credentialed && token?.dpop) {
        token.dpop.learn('resource', url, response.headers);
        // Compared with the nonce this request carried, not with the stored one: requests sent
        // together with the old nonce each deserve their retry, though the first stored the new.
        const offered = token.dpop.nonce('resource', url);
        state.nonceChanged = offered !== undefined && offered !== sentNonce;
      }

      if (response.type === 'opaqueredirect') {
        if (prepared.redirect === 'manual') return { response, credentialed };
        discard(response);
        throw redirectError(
          'The server redirected, and this runtime hides where to, so tokenwarden cannot check that the credential header stays on its origin. Call the final URL directly.',
        );
      }
      if (mode === 'follow') {
        // The browser followed the redirects; it dropped Authorization if the chain left the
        // origin, so the token reached the final response only if it ended where it began.
        const finalOrigin = response.url ? new URL(response.url).origin : url.origin;
        return { response, credentialed: credentialed && finalOrigin === prepared.url.origin };
      }
      if (!isRedirectStatus(response.status) || prepared.redirect === 'manual') {
        if (hops > 0) {
          try {
            Object.defineProperty(response, 'redirected', { value: true });
          } catch {
            // Cosmetic only: some runtimes freeze Response objects.
          }
        }
        return { response, credentialed };
      }
      const location = response.headers.get('location');
      // A 3xx without Location is a final response, as in the Fetch standard.
      if (location === null) return { response, credentialed };
      discard(response);
      if (prepared.redirect === 'error') {
        throw redirectError(
          `The server redirected the request, and it was made with redirect: 'error' (status ${response.status}).`,
        );
      }
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw redirectError(
          'The server redirected to an invalid URL; the redirect was not followed.',
        );
      }
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw redirectError(
          `The server redirected to a ${next.protocol} URL; only http(s) redirects are followed.`,
        );
      }
      hops += 1;
      if (hops > maxRedirects) {
        throw redirectError(
          `Too many redirects (more than ${maxRedirects}); the last one went to ${reportableUrl(next)}.`,
        );
      }
      if (redirectBecomesGet(response.status, method)) {
        method = 'GET';
        body = null;
        for (const name of REQUEST_BODY_HEADERS) headers.delete(name);
      } else if (body instanceof ReadableStream) {
        throw redirectError(
          `The server answered ${response.status}, which requires sending the body again, but it was a stream that cannot be replayed. Pass the body as a string, bytes or Blob.`,
        );
      }
      const raw = token?.raw ?? knownToken();
      if (raw !== undefined && containsToken(next, raw)) throw tokenInUrl(next);
      if (next.origin !== prepared.url.origin) {
        for (const name of strippedHeaders) headers.delete(name);
        if (credentialed) {
          // Sticky: a chain that left the origin never regains the token, even if it comes
          // back, so another origin cannot steer an authenticated request.
          credentialed = false;
          report('redirect', reportableUrl(next), 'stripped');
        }
      }
      url = next;
    }
  };

  /**
   * Runs the chain, and once more (same token, fresh proofs) when a resource server answered
   * 401 `use_dpop_nonce` with a new nonce (RFC 9449 §9). A streamed body cannot be replayed.
   */
  const runAuthenticated = async (
    prepared: PreparedRequest,
    token: AttachedToken | undefined,
    state: CallState,
  ): Promise<ChainResult> => {
    state.nonceChanged = false;
    const result = await runChain(prepared, token, state);
    if (
      token?.dpop === undefined ||
      !result.credentialed ||
      !state.nonceChanged ||
      prepared.stream !== null ||
      !(
        isDpopNonceChallenge(result.response) ||
        // A browser hides WWW-Authenticate when CORS does not expose it: a 401 that brought a
        // new nonce is then taken for the nonce challenge it almost certainly is.
        (result.response.status === 401 && !result.response.headers.has('www-authenticate'))
      )
    ) {
      return result;
    }
    discard(result.response);
    state.nonceChanged = false;
    return runChain(prepared, token, state);
  };

  const authenticatedFetch = async (
    input: RequestInfo | URL,
    init?: RequestInit,
  ): Promise<Response> => {
    const started = now();
    const prepared = await prepare(input, init, ownHeaders);
    const { url, signal } = prepared;
    throwIfAborted(signal);
    const state: CallState = { sent: false, retried: false, nonceChanged: false };
    let token: AttachedToken | undefined;

    if (!isOriginAllowed(url, host.origins)) {
      if (host.foreignOrigin !== 'send-without-token') {
        throw block(
          'ERR_ORIGIN_NOT_ALLOWED',
          'origin-not-allowed',
          url,
          `Request blocked: ${url.origin} is not an allowed origin of credential "${host.id}". Add it to the credential's origins, or use a fetch without this credential.`,
        );
      }
      const raw = knownToken();
      if (raw !== undefined && containsToken(url, raw, prepared.original)) throw tokenInUrl(url);
      for (const name of strippedHeaders) prepared.headers.delete(name);
      report('origin-not-allowed', reportableUrl(url), 'stripped');
    } else {
      if (!host.allowInsecure && !isSecureTransport(url)) {
        throw block(
          'ERR_INSECURE_TRANSPORT',
          'insecure-transport',
          url,
          `Request blocked: credential "${host.id}" sends tokens over https only (plain http only to loopback hosts). Use an https URL.`,
        );
      }
      token = await untilAborted(host.acquire(signal), signal);
      lastRaw = token.raw;
      if (containsToken(url, token.raw, prepared.original)) throw tokenInUrl(url);
    }

    let status = 0;
    let failure: string | undefined;
    try {
      let result = await runAuthenticated(prepared, token, state);
      status = result.response.status;
      if (
        token !== undefined &&
        result.response.status === 401 &&
        result.credentialed &&
        prepared.stream === null &&
        unauthorizedCallsForRefresh(result.response.headers.get('www-authenticate'))
      ) {
        let fresh: AttachedToken;
        try {
          fresh = await untilAborted(host.recover(token.generation, signal), signal);
        } catch (error) {
          if (
            signal?.aborted ||
            (isTokenWardenError(error) && error.code === 'ERR_REAUTH_REQUIRED')
          ) {
            discard(result.response);
            throw error;
          }
          // Any other refresh failure: the server's own 401 is the most useful answer.
          return result.response;
        }
        discard(result.response);
        lastRaw = fresh.raw;
        if (containsToken(url, fresh.raw, prepared.original)) throw tokenInUrl(url);
        state.retried = true;
        // A retry that fails outright reports 0, like any request that got no response.
        status = 0;
        result = await runAuthenticated(prepared, fresh, state);
      }
      status = result.response.status;
      return result.response;
    } catch (error) {
      failure = errorKind(error);
      throw error;
    } finally {
      if (state.sent) {
        try {
          host.observed({
            method: prepared.method,
            origin: url.origin,
            status,
            durationMs: Math.max(0, now() - started),
            retried: state.retried,
            authenticated: token !== undefined,
            error: failure,
          });
        } catch {
          // Metrics must never break a request.
        }
      }
    }
  };

  return authenticatedFetch as typeof fetch;
}
