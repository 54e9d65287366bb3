import {
  invalidArgument,
  OAuthError,
  TokenWardenError,
  type TokenWardenErrorOptions,
} from '../errors.js';
import { abortError, anySignal, delay } from '../internal/abort.js';
import { httpRequest, parseJsonObject } from '../internal/http.js';
import { safeUrl } from '../internal/redact.js';
import { isSecureTransport, parseEndpoint } from '../internal/url.js';
import type { TokenSet } from '../token.js';
import { type ClientAuthentication, createClientAuth } from './client-auth.js';
import { discover } from './discovery.js';
import {
  httpContext,
  normaliseScope,
  OAuthClient,
  OAuthGrantSource,
  type OAuthSourceOptions,
  type OAuthTokenSource,
} from './oauth.js';
import { refreshToken } from './refresh-token.js';
import {
  isTokenValue,
  MAX_LIFETIME_MS,
  oauthErrorFromJson,
  sanitizeText,
} from './token-response.js';
import type { SourceContext } from './types.js';

/** The `grant_type` of the device access token request (RFC 8628 §3.4). */
const DEVICE_CODE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

/** Polling interval when the server names none, in seconds (RFC 8628 §3.2). */
const DEFAULT_INTERVAL_S = 5;
/** What a `slow_down` answer adds to the interval, in seconds (RFC 8628 §3.5). */
const SLOW_DOWN_S = 5;
/** The longest polling interval, in seconds, however often the server says `slow_down`. */
const MAX_INTERVAL_S = 300;
/** The longest user code shown, in characters; real ones have 8 or 9. */
const MAX_USER_CODE = 64;

/**
 * What the app shows the user so that they can approve the sign-in on another device: open
 * `verificationUri` and type `userCode`, or open `verificationUriComplete` (e.g. as a QR code),
 * which carries the code. The device code itself is never part of it.
 *
 * @example
 * ```ts
 * import type { DeviceCodePrompt } from 'tokenwarden';
 * function show(prompt: DeviceCodePrompt): void {
 *   console.log(`Open ${prompt.verificationUri} and enter ${prompt.userCode}`);
 *   console.log(`The code expires at ${new Date(prompt.expiresAt).toLocaleTimeString()}.`);
 * }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8628#section-3.3
 */
export interface DeviceCodePrompt {
  /** The code the user types at the verification URI, e.g. `WDJB-MJHT`. */
  readonly userCode: string;
  /** Where the user goes, on any device with a browser. */
  readonly verificationUri: string;
  /** The verification URI with the user code in it, when the server offers one. */
  readonly verificationUriComplete?: string;
  /** When the codes expire, epoch milliseconds (local clock). */
  readonly expiresAt: number;
  /** The polling interval the server asked for, in seconds. */
  readonly interval: number;
}

/**
 * Options of {@link deviceCode}.
 *
 * @example
 * ```ts
 * import { deviceCode, type DeviceCodeOptions } from 'tokenwarden';
 * const options: DeviceCodeOptions = {
 *   issuer: 'https://auth.example.com',
 *   clientId: 'my-cli',
 *   scope: ['openid', 'offline_access', 'api:read'],
 *   onPrompt: ({ verificationUri, userCode }) => console.log(`Open ${verificationUri}, enter ${userCode}`),
 * };
 * const source = deviceCode(options);
 * ```
 */
export interface DeviceCodeOptions extends OAuthSourceOptions {
  /**
   * The device authorization endpoint. Required with an explicit `tokenEndpoint`.
   * @default discovered from `issuer` (`device_authorization_endpoint`)
   */
  deviceAuthorizationEndpoint?: string | URL | undefined;
  /**
   * The scopes to request at sign-in, as an array or a space-delimited string. Ask for
   * `offline_access` (or whatever your server needs) to get a refresh token; refreshes keep the
   * granted scope.
   * @default undefined (the server's default scope)
   */
  scope?: string | readonly string[] | undefined;
  /**
   * Shows the user where to go and which code to enter. Polling starts when it returns (or its
   * promise resolves), so it should return promptly. When it throws, the sign-in fails with
   * `ERR_SOURCE_FAILED`.
   * @param prompt - The user code, verification URIs, expiry and interval.
   */
  onPrompt: (prompt: DeviceCodePrompt) => void | Promise<void>;
  /**
   * Cancels a sign-in in progress (e.g. on Ctrl+C); the flow then fails with `ERR_ABORTED`.
   * The credential's own signal (its `close()`) cancels it as well. Refreshes ignore it.
   * @default undefined (only the credential's `close()` cancels the sign-in)
   */
  signal?: AbortSignal | undefined;
}

/**
 * A token source for the OAuth 2.0 Device Authorization Grant (RFC 8628), for CLIs and devices
 * without a browser: the user approves the sign-in on another device.
 *
 * `obtain()` refreshes when the credential's current token set has a refresh token, exactly like
 * {@link refreshToken} (rotation; `invalid_grant` makes the credential `reauth-required`).
 * Otherwise it runs the device flow: it asks the device authorization endpoint for codes, hands
 * `onPrompt` the user code and verification URIs, and polls the token endpoint every `interval`
 * seconds (5 when the server names none) until the user approves. `authorization_pending` keeps
 * it polling, `slow_down` adds 5 seconds to the interval, a connection failure doubles it.
 * It stops with `ERR_ACCESS_DENIED` when the user (or server) declines, `ERR_DEVICE_CODE_EXPIRED`
 * when the codes expire (`expired_token`, or `expires_in` passed without an answer), and
 * `ERR_ABORTED` when `signal` or the credential's signal aborts. The credential's `timeout`
 * applies to each request, not to the whole flow.
 *
 * The device code is a secret: it is only ever sent to the token endpoint, never passed to
 * `onPrompt`, kept on the source, or written into an error or event.
 *
 * @param options - Issuer or endpoints, client authentication (a public client by default),
 * scope, `onPrompt`, `signal`.
 * @returns The token source (with `revoke` for RFC 7009).
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for invalid options.
 * @example
 * ```ts
 * import { createWarden, deviceCode } from 'tokenwarden';
 * import { fileStore, envKey } from 'tokenwarden/node';
 * const warden = createWarden({ store: fileStore({ path: '.tokens.json', key: envKey('TOKENS_KEY') }) });
 * const api = warden.register('api', {
 *   source: deviceCode({
 *     issuer: 'https://auth.example.com',
 *     clientId: 'my-cli',
 *     scope: 'openid offline_access',
 *     onPrompt: ({ verificationUri, userCode }) =>
 *       console.error(`To sign in, open ${verificationUri} and enter ${userCode}`),
 *   }),
 *   origins: ['https://api.example.com'],
 * });
 * await api.getToken(); // prompts once; later runs refresh from the stored set
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8628
 */
export function deviceCode(options: DeviceCodeOptions): OAuthTokenSource {
  return new DeviceCodeSource(options);
}

/** What the device authorization endpoint answered, validated. */
interface DeviceAuthorization {
  readonly deviceCode: string;
  readonly prompt: DeviceCodePrompt;
}

class DeviceCodeSource extends OAuthGrantSource {
  readonly kind = 'device_code' as const;
  /** A device flow needs a user: after a sign-out the credential waits for `reauthenticate()`. */
  readonly interactive = true;
  readonly #deviceEndpoint: URL | undefined;
  readonly #auth: ClientAuthentication;
  readonly #refresher: OAuthTokenSource;
  readonly #onPrompt: (prompt: DeviceCodePrompt) => void | Promise<void>;
  readonly #signal: AbortSignal | undefined;

  constructor(options: DeviceCodeOptions) {
    super(new OAuthClient(options, 'deviceCode'), normaliseScope(options.scope, 'scope'));
    this.#deviceEndpoint = secureEndpoint(
      options.deviceAuthorizationEndpoint,
      'deviceAuthorizationEndpoint',
    );
    if (options.tokenEndpoint !== undefined && this.#deviceEndpoint === undefined) {
      throw invalidArgument(
        'deviceCode() needs deviceAuthorizationEndpoint along with an explicit tokenEndpoint (or give issuer alone, for discovery).',
      );
    }
    if (typeof options.onPrompt !== 'function') {
      throw invalidArgument(
        'deviceCode() needs onPrompt: a function that shows the user code and verification URI.',
      );
    }
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw invalidArgument('signal must be an AbortSignal.');
    }
    const client = {
      issuer: options.issuer,
      tokenEndpoint: options.tokenEndpoint,
      revocationEndpoint: options.revocationEndpoint,
      introspectionEndpoint: options.introspectionEndpoint,
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      privateKey: options.privateKey,
      privateKeyAlgorithm: options.privateKeyAlgorithm,
      privateKeyId: options.privateKeyId,
      clientAuth: options.clientAuth,
    };
    // Refreshes are the refresh-token grant's, rotation included; no scope, so that a refresh
    // keeps what the user granted.
    this.#refresher = refreshToken(client);
    this.#auth = createClientAuth({
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      privateKey: options.privateKey,
      privateKeyAlgorithm: options.privateKeyAlgorithm,
      privateKeyId: options.privateKeyId,
      method: options.clientAuth,
    });
    this.#onPrompt = options.onPrompt;
    this.#signal = options.signal;
    Object.freeze(this);
  }

  obtain(context: SourceContext): Promise<TokenSet> {
    if (context.current?.hasRefreshToken) return this.#refresher.obtain(context);
    return this.#signIn(context);
  }

  async #signIn(outer: SourceContext): Promise<TokenSet> {
    const signal = this.#signal ? anySignal([outer.signal, this.#signal]) : outer.signal;
    const context: SourceContext = { ...outer, signal };
    const authorization = await this.#authorize(context);
    const { prompt } = authorization;
    await this.#showPrompt(prompt, context);

    let intervalMs = prompt.interval * 1000;
    const params = new URLSearchParams({
      grant_type: DEVICE_CODE_GRANT_TYPE,
      device_code: authorization.deviceCode,
    });
    for (;;) {
      const remaining = prompt.expiresAt - context.clock.now();
      await delay(Math.max(0, Math.min(intervalMs, remaining)), signal);
      if (context.clock.now() >= prompt.expiresAt) throw expired(context);
      try {
        return await this.client.requestToken(params, context, { requestedScope: this.scope });
      } catch (error) {
        if (error instanceof OAuthError) {
          switch (error.error) {
            case 'authorization_pending':
              continue;
            case 'slow_down':
              intervalMs = Math.min(intervalMs + SLOW_DOWN_S * 1000, MAX_INTERVAL_S * 1000);
              continue;
            case 'access_denied':
              throw new TokenWardenError(
                'ERR_ACCESS_DENIED',
                'The sign-in was declined (access_denied): the user or the authorization server refused the device authorization. Start a new sign-in if that was a mistake.',
                errorOptions(context, error),
              );
            case 'expired_token':
              throw expired(context, error);
          }
        }
        if (
          error instanceof TokenWardenError &&
          (error.code === 'ERR_NETWORK' || error.code === 'ERR_TIMEOUT')
        ) {
          // RFC 8628 §3.5: after a connection failure, poll less often.
          intervalMs = Math.min(intervalMs * 2, MAX_INTERVAL_S * 1000);
          continue;
        }
        throw error;
      }
    }
  }

  /** Asks the device authorization endpoint for a device code and a user code. */
  async #authorize(context: SourceContext): Promise<DeviceAuthorization> {
    const endpoints = await this.client.endpoints(context);
    const url = this.#deviceEndpoint ?? (await discoveredDeviceEndpoint(this.client, context));
    const form = new URLSearchParams();
    if (this.scope !== undefined && this.scope.length > 0) form.set('scope', this.scope.join(' '));
    const headers: Record<string, string> = {};
    await this.#auth.apply(
      form,
      headers,
      endpoints.issuer ?? endpoints.tokenEndpoint.href,
      context.clock,
    );
    const result = await httpRequest(
      { url, form, headers, label: 'device authorization request' },
      httpContext(context),
    );
    const where = safeUrl(url);
    const options = {
      status: result.status,
      credentialId: context.credentialId,
      response: result.response,
    };
    const json = parseJsonObject(result.body);
    if (result.status !== 200) {
      throw (
        (json && oauthErrorFromJson(json, options)) ??
        new TokenWardenError(
          'ERR_HTTP_STATUS',
          `The device authorization request to ${where} answered HTTP ${result.status} without an OAuth error body. Check deviceAuthorizationEndpoint; retry later if it is a server error.`,
          options,
        )
      );
    }
    const invalid = (what: string) =>
      new TokenWardenError(
        'ERR_INVALID_RESPONSE',
        `The device authorization response from ${where} is invalid: ${what}. Check deviceAuthorizationEndpoint.`,
        options,
      );
    if (json === undefined) throw invalid('the body is not a JSON object');

    const device = json['device_code'];
    if (!isTokenValue(device)) {
      throw invalid('device_code is missing or not a string of visible ASCII characters');
    }
    const userCode = json['user_code'];
    if (
      typeof userCode !== 'string' ||
      userCode.length > MAX_USER_CODE ||
      userCode.trim() === '' ||
      sanitizeText(userCode, MAX_USER_CODE) !== userCode
    ) {
      throw invalid(
        `user_code is missing or not a string of at most ${MAX_USER_CODE} printable characters`,
      );
    }
    // Some servers (Google's among them) still name it verification_url, as drafts did.
    const verificationUri = verificationUrl(json['verification_uri'] ?? json['verification_url']);
    if (verificationUri === undefined) {
      throw invalid('verification_uri is missing or not an https URL (http only on loopback)');
    }
    const complete = json['verification_uri_complete'];
    const verificationUriComplete =
      complete === undefined || complete === null ? undefined : verificationUrl(complete);
    if (complete !== undefined && complete !== null && verificationUriComplete === undefined) {
      throw invalid('verification_uri_complete is not an https URL (http only on loopback)');
    }
    const expiresIn = seconds(json['expires_in']);
    if (expiresIn === undefined || expiresIn * 1000 > MAX_LIFETIME_MS) {
      throw invalid('expires_in is missing or not a positive whole number of seconds');
    }
    const rawInterval = json['interval'];
    let interval = DEFAULT_INTERVAL_S;
    if (rawInterval !== undefined && rawInterval !== null) {
      const parsed = seconds(rawInterval, true);
      if (parsed === undefined) throw invalid('interval is not a whole number of seconds');
      // An interval of 0 would poll in a tight loop; one second is the least that makes sense.
      interval = Math.min(Math.max(parsed, 1), MAX_INTERVAL_S);
    }

    const prompt: { -readonly [K in keyof DeviceCodePrompt]: DeviceCodePrompt[K] } = {
      userCode,
      verificationUri,
      expiresAt: result.receivedAt + expiresIn * 1000,
      interval,
    };
    if (verificationUriComplete !== undefined) {
      prompt.verificationUriComplete = verificationUriComplete;
    }
    return { deviceCode: device, prompt: Object.freeze(prompt) };
  }

  async #showPrompt(prompt: DeviceCodePrompt, context: SourceContext): Promise<void> {
    try {
      await this.#onPrompt(prompt);
    } catch {
      // The app's error is not passed on: it may quote the prompt or anything else of the app's.
      throw new TokenWardenError(
        'ERR_SOURCE_FAILED',
        `The onPrompt callback of credential "${context.credentialId}" threw, so the sign-in was not started. Fix the callback.`,
        { credentialId: context.credentialId },
      );
    }
    if (context.signal.aborted) throw abortError(context.signal);
  }
}

/** The device authorization endpoint from the issuer's metadata. */
async function discoveredDeviceEndpoint(client: OAuthClient, context: SourceContext): Promise<URL> {
  const issuer = client.issuer as string;
  const metadata = await discover(issuer, httpContext(context));
  const value = metadata.metadata['device_authorization_endpoint'];
  if (value === undefined || value === null) {
    throw new TokenWardenError(
      'ERR_UNSUPPORTED',
      `The metadata of ${issuer} has no device_authorization_endpoint: the server does not offer the device flow. Enable it there, or configure deviceAuthorizationEndpoint.`,
      { credentialId: context.credentialId },
    );
  }
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || !isSecureTransport(url) || url.hash !== '' || url.username !== '') {
    throw new TokenWardenError(
      'ERR_INVALID_RESPONSE',
      `The metadata of ${issuer} has an unusable device_authorization_endpoint: it must be an https URL (http only on loopback) without fragment or credentials.`,
      { credentialId: context.credentialId },
    );
  }
  return url;
}

function expired(context: SourceContext, cause?: OAuthError): TokenWardenError {
  return new TokenWardenError(
    'ERR_DEVICE_CODE_EXPIRED',
    'The sign-in code expired before the user approved it. Start a new sign-in.',
    cause ? errorOptions(context, cause) : { credentialId: context.credentialId },
  );
}

function errorOptions(context: SourceContext, cause: OAuthError): TokenWardenErrorOptions {
  const options: TokenWardenErrorOptions = { cause, credentialId: context.credentialId };
  if (cause.status !== undefined) options.status = cause.status;
  if (cause.response !== undefined) options.response = cause.response;
  return options;
}

/** A whole number of seconds (a JSON number or a string of digits), positive unless `zero`. */
function seconds(value: unknown, zero = false): number | undefined {
  let number: number;
  if (typeof value === 'number') number = value;
  else if (typeof value === 'string' && /^\d{1,15}$/.test(value)) number = Number(value);
  else return undefined;
  if (!Number.isSafeInteger(number) || number < (zero ? 0 : 1)) return undefined;
  return number;
}

/** A verification URI the user can be sent to: https (http on loopback), no credentials. */
function verificationUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048 || sanitizeText(value, 2048) !== value) {
    return undefined;
  }
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (!isSecureTransport(url) || url.username !== '' || url.password !== '') {
    return undefined;
  }
  return value;
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
