import { isTokenWardenError, TokenWardenError } from '../errors.js';
import type { SkewClock } from '../sources/types.js';
import { untilAborted } from './abort.js';
import { safeUrl } from './redact.js';

/** The limits and plumbing one of tokenwarden's own requests runs with. */
export interface HttpContext {
  /** The fetch to use (the credential's, so tests and proxies can inject one). */
  readonly fetch: typeof fetch;
  /**
   * The caller's signal; aborting it fails the request with `ERR_ABORTED`.
   * @default undefined (only the timeout ends the request)
   */
  readonly signal?: AbortSignal | undefined;
  /** How long the whole exchange (headers and body) may take, in milliseconds. */
  readonly timeoutMs: number;
  /** Largest response body read, in bytes. */
  readonly maxResponseBytes: number;
  /**
   * Receives each response's `Date` header and local receipt time.
   * @default undefined (`Date.now` for the receipt time, no skew learned)
   */
  readonly clock?: SkewClock | undefined;
}

/** One of tokenwarden's own requests: a token, discovery or revocation request. */
export interface HttpRequest {
  /** The endpoint. Never carries a secret: secrets go in the form body or headers. */
  readonly url: URL;
  /**
   * The method.
   * @default 'GET', or 'POST' when `form` is given
   */
  readonly method?: 'GET' | 'POST';
  /**
   * A form body, sent as `application/x-www-form-urlencoded;charset=UTF-8`.
   * @default no body
   */
  readonly form?: URLSearchParams;
  /**
   * Extra request headers (e.g. `Authorization: Basic ...`).
   * @default undefined (no extra headers)
   */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * What the request is, for error messages.
   * @default 'request'
   */
  readonly label?: string;
}

/** A response read in full, within the byte cap. */
export interface HttpResult {
  /** The HTTP status. */
  readonly status: number;
  /** The response headers. */
  readonly headers: Headers;
  /** The body decoded as UTF-8 (invalid sequences replaced). */
  readonly body: string;
  /** Local time the response headers arrived, epoch milliseconds. */
  readonly receivedAt: number;
  /** The response itself, body consumed; attach it to errors, never read it again. */
  readonly response: Response;
}

/** The `Content-Type` of every form body tokenwarden sends. */
export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded;charset=UTF-8';

/**
 * Sends one of tokenwarden's own requests and reads its body within limits.
 *
 * Redirects are never followed (`redirect: 'manual'`, a 3xx fails with `ERR_REDIRECT`) because a
 * redirected POST would carry client credentials to wherever the server points. The body is read
 * from the stream and the stream cancelled as soon as it exceeds the cap, so memory stays bounded
 * whatever the server sends. The `Date` header is reported to the context's clock.
 *
 * @param request - URL, method, form body and headers.
 * @param context - Fetch, signal, timeout, byte cap and clock.
 * @returns The status, headers, decoded body and receipt time.
 * @throws {@link TokenWardenError} `ERR_REDIRECT` on a 3xx, `ERR_RESPONSE_TOO_LARGE` over the cap,
 * `ERR_TIMEOUT`, `ERR_ABORTED` when the caller's signal aborts, `ERR_NETWORK` when the server
 * cannot be reached.
 * @example
 * ```ts
 * const result = await httpRequest(
 *   { url: new URL('https://auth.example.com/token'), form: new URLSearchParams({ grant_type: 'client_credentials' }) },
 *   { fetch, timeoutMs: 10_000, maxResponseBytes: 65_536 },
 * );
 * const json = parseJsonObject(result.body);
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.2 (token requests use POST)
 */
export async function httpRequest(request: HttpRequest, context: HttpContext): Promise<HttpResult> {
  const url = request.url;
  const label = request.label ?? 'request';
  const where = safeUrl(url);
  const headers = new Headers(request.headers);
  headers.set('accept', 'application/json');
  let body: string | undefined;
  if (request.form !== undefined) {
    headers.set('content-type', FORM_CONTENT_TYPE);
    body = request.form.toString();
  }
  const method = request.method ?? (body === undefined ? 'GET' : 'POST');

  return withDeadline(
    { signal: context.signal, timeoutMs: context.timeoutMs, what: `The ${label} to ${where}` },
    async (signal, race) => {
      const init: RequestInit = { method, headers, redirect: 'manual', signal };
      if (body !== undefined) init.body = body;
      let response: Response;
      try {
        response = await race(context.fetch(url.href, init));
      } catch (error) {
        if (isTokenWardenError(error) || signal.aborted) throw error;
        throw new TokenWardenError(
          'ERR_NETWORK',
          `The ${label} to ${where} failed: the server could not be reached. Check the URL, DNS and network.`,
          { cause: safeCause(error) },
        );
      }
      const receivedAt = context.clock?.now() ?? Date.now();
      context.clock?.observe(response.headers.get('date'), receivedAt);

      if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
        discard(response);
        throw new TokenWardenError(
          'ERR_REDIRECT',
          `The ${label} to ${where} was answered with a redirect, which tokenwarden never follows for its own requests. Configure the final endpoint URL.`,
          { status: response.status, response },
        );
      }
      const text = await readCapped(response, context.maxResponseBytes, race, label, where);
      return {
        status: response.status,
        headers: response.headers,
        body: text,
        receivedAt,
        response,
      };
    },
    (error) =>
      new TokenWardenError(
        'ERR_NETWORK',
        `The ${label} to ${where} failed while reading the answer. Check the network and retry.`,
        { cause: safeCause(error) },
      ),
  );
}

/**
 * Parses JSON and returns it only when the top level is a plain object. Members named
 * `__proto__`, `constructor` or `prototype` are dropped at every depth, so nothing built from the
 * result (spread, `Object.assign`, merges) can reach a prototype.
 *
 * @param text - The response body.
 * @returns The object, or `undefined` for anything else (invalid JSON, `null`, an array, a string).
 * @example
 * ```ts
 * parseJsonObject('{"access_token":"x"}'); // { access_token: 'x' }
 * parseJsonObject('[]');                   // undefined
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1 (a token response is a JSON object)
 */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    // A BOM is not JSON, but some servers send one; it changes nothing about the content.
    const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    value = JSON.parse(source, (key, member: unknown) =>
      key === '__proto__' || key === 'constructor' || key === 'prototype' ? undefined : member,
    );
  } catch {
    // Includes RangeError from absurdly deep nesting: still "not a JSON object".
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

/** Options of {@link withDeadline}. */
export interface DeadlineOptions {
  /**
   * The caller's signal.
   * @default undefined (only the deadline ends the task)
   */
  readonly signal?: AbortSignal | undefined;
  /** Milliseconds before the task fails with `ERR_TIMEOUT`. */
  readonly timeoutMs: number;
  /** The subject of the timeout and abort messages, e.g. `The token request to https://...`. */
  readonly what: string;
}

/**
 * Runs an async task under a timeout and the caller's signal. The task receives a signal that
 * aborts on either, and a `race` helper that rejects a promise as soon as that signal aborts,
 * so a fetch or callback that ignores its signal cannot hang the caller.
 *
 * A plain `setTimeout` that is cleared when the task settles is used instead of
 * `AbortSignal.timeout` + `AbortSignal.any`: it needs no feature detection (both are missing in
 * older runtimes), leaves no timer behind, and follows fake timers in tests.
 *
 * @param options - Caller signal, timeout and message subject.
 * @param task - The work; must honour the signal or use `race`.
 * @param mapError - Turns an error the task threw (not a timeout or abort) into a coded error.
 * @returns The task's result.
 * @throws {@link TokenWardenError} `ERR_TIMEOUT`, `ERR_ABORTED`, or what `mapError` returns.
 * @example
 * ```ts
 * const value = await withDeadline({ signal, timeoutMs: 5_000, what: 'The rotate callback' },
 *   (signal, race) => race(rotate({ signal })),
 *   (error) => new TokenWardenError('ERR_SOURCE_FAILED', 'rotate failed', { cause: error }));
 * ```
 */
export async function withDeadline<T>(
  options: DeadlineOptions,
  task: (signal: AbortSignal, race: <R>(promise: Promise<R>) => Promise<R>) => Promise<T>,
  mapError: (error: unknown) => unknown,
): Promise<T> {
  const caller = options.signal;
  if (caller?.aborted) throw abortedError(options.what);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      controller.abort(new DOMException('The operation timed out.', 'TimeoutError'));
    },
    Math.max(0, options.timeoutMs),
  );
  const onCallerAbort = (): void => controller.abort(caller?.reason);
  caller?.addEventListener('abort', onCallerAbort, { once: true });

  const signal = controller.signal;
  const race = <R>(promise: Promise<R>): Promise<R> => untilAborted(promise, signal);

  try {
    return await race(task(signal, race));
  } catch (error) {
    if (timedOut) {
      throw new TokenWardenError(
        'ERR_TIMEOUT',
        `${options.what} did not complete within ${options.timeoutMs} ms. Check that the server is reachable, or raise the timeout.`,
      );
    }
    if (caller?.aborted) throw abortedError(options.what);
    if (isTokenWardenError(error)) throw error;
    throw mapError(error);
  } finally {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onCallerAbort);
  }
}

function abortedError(what: string): TokenWardenError {
  return new TokenWardenError('ERR_ABORTED', `${what} was aborted by the caller's signal.`);
}

async function readCapped(
  response: Response,
  maxBytes: number,
  race: <R>(promise: Promise<R>) => Promise<R>,
  label: string,
  where: string,
): Promise<string> {
  const tooLarge = (): TokenWardenError =>
    new TokenWardenError(
      'ERR_RESPONSE_TOO_LARGE',
      `The answer to the ${label} to ${where} exceeded ${maxBytes} bytes and was not read. Check the endpoint URL.`,
      { status: response.status, response },
    );
  const declared = response.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
    discard(response);
    throw tooLarge();
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let total = 0;
  let text = '';
  try {
    for (;;) {
      const chunk = await race(reader.read());
      if (chunk.done) break;
      const value: unknown = chunk.value;
      if (!(value instanceof Uint8Array)) {
        throw new TokenWardenError(
          'ERR_INVALID_RESPONSE',
          `The answer to the ${label} to ${where} is not a byte stream. Check the injected fetch.`,
        );
      }
      total += value.byteLength;
      if (total > maxBytes) throw tooLarge();
      text += decoder.decode(value, { stream: true });
    }
    return text + decoder.decode();
  } catch (error) {
    // Cancelling tells the server side to stop producing: this is what bounds memory on a huge
    // answer. It is not awaited because a misbehaving stream could keep it pending forever.
    reader.cancel().catch(() => {});
    throw error;
  }
}

function discard(response: Response): void {
  response.body?.cancel().catch(() => {});
}

/**
 * A cause safe to attach to a network error: the error's name and a system code such as
 * `ECONNREFUSED`, nothing else, because a custom fetch's error message could echo anything.
 */
function safeCause(error: unknown): Error | undefined {
  if (!(error instanceof Error)) return undefined;
  const nested = (error as { cause?: { code?: unknown } }).cause;
  const code = nested?.code ?? (error as { code?: unknown }).code;
  const suffix = typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? `: ${code}` : '';
  const name = /^[A-Za-z]{1,40}$/.test(error.name) ? error.name : 'Error';
  return new Error(`${name}${suffix}`);
}
