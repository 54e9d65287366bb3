import { type JWK, type KeyObject, SignJWT } from 'jose';
import { InvalidArgumentError, invalidArgument } from '../errors.js';
import { INSPECT, REDACTED } from '../internal/redact.js';
import { hasControlChars } from './token-response.js';
import type { SkewClock } from './types.js';

/**
 * How a client authenticates at the token endpoint.
 *
 * - `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret.
 * - `client_secret_post`: `client_id` and `client_secret` in the form body.
 * - `private_key_jwt`: a signed JWT assertion (RFC 7523), no shared secret.
 * - `none`: a public client (a browser app or CLI) sends only its `client_id`.
 *
 * @example
 * ```ts
 * import { clientCredentials, type ClientAuthMethod } from 'tokenwarden';
 * // This server accepts the secret only in the form body.
 * const clientAuth: ClientAuthMethod = 'client_secret_post';
 * const source = clientCredentials({ issuer, clientId: 'svc', clientSecret, clientAuth });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3
 * @see https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication
 */
export type ClientAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'private_key_jwt'
  | 'none';

/**
 * A private key that signs `private_key_jwt` assertions: a WebCrypto `CryptoKey` (may be
 * non-extractable), a Node `KeyObject`, or a private JWK (with `d`).
 *
 * @example
 * ```ts
 * import { importPKCS8 } from 'jose';
 * import { clientCredentials, type PrivateKeyInput } from 'tokenwarden';
 * const privateKey: PrivateKeyInput = await importPKCS8(process.env.CLIENT_KEY_PEM!, 'ES256');
 * const source = clientCredentials({ issuer, clientId: 'svc', privateKey, privateKeyId: 'svc-2025' });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 */
export type PrivateKeyInput = CryptoKey | KeyObject | JWK;

/** Options of {@link createClientAuth}. */
export interface ClientAuthOptions {
  /** The OAuth client id. */
  clientId: string;
  /**
   * The client secret, for `client_secret_basic` and `client_secret_post`.
   * @default undefined (no secret)
   */
  clientSecret?: string | ClientSecret | undefined;
  /**
   * The private key for `private_key_jwt`.
   * @default undefined (no `private_key_jwt`)
   */
  privateKey?: PrivateKeyInput | undefined;
  /**
   * The JWS algorithm of the assertion (`RS256`, `PS256`, `ES256`, `EdDSA`, ...).
   * @default the JWK's `alg`, else inferred from the key: `RS256` for RSA, `PS256` for RSA-PSS,
   * `ES256`/`ES384`/`ES512` by curve, `EdDSA` for Ed25519
   */
  privateKeyAlgorithm?: string | undefined;
  /**
   * The `kid` header of the assertion, so the server can pick the right registered key.
   * @default the JWK's `kid`, else none
   */
  privateKeyId?: string | undefined;
  /**
   * The authentication method.
   * @default `client_secret_basic` with a secret, `private_key_jwt` with a private key, `none`
   * otherwise
   */
  method?: ClientAuthMethod | undefined;
}

/**
 * A client secret. It prints as `[REDACTED]` through `toString`, `toJSON` and `util.inspect`,
 * so options objects can be logged without leaking it.
 *
 * @example
 * ```ts
 * const secret = new ClientSecret(process.env.CLIENT_SECRET!);
 * console.log({ secret }); // { secret: [REDACTED] }
 * ```
 */
export class ClientSecret {
  readonly #value: string;

  /**
   * @param value - The secret.
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` when it is not a non-empty string.
   */
  constructor(value: string) {
    if (typeof value !== 'string' || value === '') {
      throw invalidArgument('clientSecret must be a non-empty string.');
    }
    this.#value = value;
    Object.freeze(this);
  }

  /**
   * The raw secret, for the token request only.
   * @returns The secret.
   * @throws Never.
   */
  reveal(): string {
    return this.#value;
  }

  /**
   * @returns `'[REDACTED]'`.
   * @throws Never.
   */
  toString(): string {
    return REDACTED;
  }

  /**
   * @returns `'[REDACTED]'`.
   * @throws Never.
   */
  toJSON(): string {
    return REDACTED;
  }

  /** @internal */
  [INSPECT](): string {
    return REDACTED;
  }
}

/**
 * Applies one client authentication method to token, revocation and introspection requests.
 * Holds the secret or key in private fields; prints as `[REDACTED]`.
 */
export interface ClientAuthentication {
  /** The method in use. */
  readonly method: ClientAuthMethod;
  /** The client id. */
  readonly clientId: string;
  /**
   * Adds the client's credentials to a request.
   * @param body - The form body; receives `client_id`, `client_secret` or the assertion.
   * @param headers - The request headers; receives `Authorization: Basic ...`.
   * @param audience - The `aud` of a `private_key_jwt` assertion: the issuer identifier, or the
   * token endpoint when no issuer is known.
   * @param clock - For the assertion's `iat`/`exp` on the server's clock.
   */
  apply(
    body: URLSearchParams,
    headers: Record<string, string>,
    audience: string,
    clock: SkewClock,
  ): Promise<void>;
}

/** The assertion type of RFC 7523 client authentication. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Lifetime of a `private_key_jwt` assertion, seconds. Short, because it is a bearer credential. */
export const ASSERTION_LIFETIME_S = 60;

const ASYMMETRIC_ALG = /^(?:(?:RS|PS|ES)(?:256|384|512)|EdDSA|Ed25519)$/;

/**
 * Builds the client authentication for an OAuth source, validating the options synchronously.
 *
 * `client_secret_basic` form-urlencodes the id and secret *before* base64, as RFC 6749 §2.3.1
 * requires, so secrets with `%`, `:`, `+`, spaces or non-ASCII characters authenticate.
 * `private_key_jwt` signs a fresh assertion per request with `iss` = `sub` = client id, `aud` =
 * the issuer as a single string, a 128-bit random `jti`, and a 60-second lifetime.
 *
 * @param options - Client id, secret or private key, and method.
 * @returns The client authentication.
 * @throws {@link InvalidArgumentError} when the method and the material do not fit together.
 * @example
 * ```ts
 * const auth = createClientAuth({ clientId: 'billing', clientSecret: process.env.SECRET });
 * auth.method; // 'client_secret_basic'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-3
 */
export function createClientAuth(options: ClientAuthOptions): ClientAuthentication {
  return new ClientAuth(options);
}

class ClientAuth implements ClientAuthentication {
  readonly method: ClientAuthMethod;
  readonly clientId: string;
  readonly #secret: ClientSecret | undefined;
  readonly #key: PrivateKeyInput | undefined;
  readonly #alg: string | undefined;
  readonly #kid: string | undefined;

  constructor(options: ClientAuthOptions) {
    const { clientId } = options;
    if (typeof clientId !== 'string' || clientId === '' || hasControlChars(clientId)) {
      throw invalidArgument('clientId must be a non-empty string without control characters.');
    }
    this.clientId = clientId;
    const secret =
      options.clientSecret === undefined
        ? undefined
        : options.clientSecret instanceof ClientSecret
          ? options.clientSecret
          : new ClientSecret(options.clientSecret);
    const key = options.privateKey;
    if (key !== undefined && (typeof key !== 'object' || key === null)) {
      throw invalidArgument('privateKey must be a CryptoKey, a KeyObject or a private JWK.');
    }
    let method = options.method;
    if (method === undefined) {
      if (secret !== undefined && key !== undefined) {
        throw invalidArgument(
          'Both clientSecret and privateKey were given: choose one, or set clientAuth explicitly.',
        );
      }
      method = secret !== undefined ? 'client_secret_basic' : key ? 'private_key_jwt' : 'none';
    }
    switch (method) {
      case 'client_secret_basic':
      case 'client_secret_post':
        if (secret === undefined)
          throw invalidArgument(`clientAuth "${method}" needs clientSecret.`);
        if (key !== undefined) throw invalidArgument(`clientAuth "${method}" takes no privateKey.`);
        break;
      case 'private_key_jwt':
        if (key === undefined)
          throw invalidArgument('clientAuth "private_key_jwt" needs privateKey.');
        if (secret !== undefined) {
          throw invalidArgument('clientAuth "private_key_jwt" takes no clientSecret.');
        }
        break;
      case 'none':
        if (secret !== undefined || key !== undefined) {
          throw invalidArgument(
            'clientAuth "none" is for public clients: remove clientSecret and privateKey.',
          );
        }
        break;
      default:
        throw invalidArgument(
          'clientAuth must be client_secret_basic, client_secret_post, private_key_jwt or none.',
        );
    }
    this.method = method;
    this.#secret = secret;
    this.#key = key;
    if (key !== undefined) {
      const alg = options.privateKeyAlgorithm ?? inferAlgorithm(key);
      if (typeof alg !== 'string' || !ASYMMETRIC_ALG.test(alg)) {
        throw invalidArgument(
          'privateKeyAlgorithm must be an asymmetric JWS algorithm (RS256, PS256, ES256, EdDSA, ...); set it when it cannot be inferred from the key.',
        );
      }
      this.#alg = alg;
      const kid = options.privateKeyId ?? (isJwk(key) ? key.kid : undefined);
      if (kid !== undefined && (typeof kid !== 'string' || kid === '')) {
        throw invalidArgument('privateKeyId must be a non-empty string.');
      }
      this.#kid = kid;
    }
    Object.freeze(this);
  }

  async apply(
    body: URLSearchParams,
    headers: Record<string, string>,
    audience: string,
    clock: SkewClock,
  ): Promise<void> {
    switch (this.method) {
      case 'client_secret_basic': {
        const secret = (this.#secret as ClientSecret).reveal();
        headers['authorization'] =
          `Basic ${btoa(`${formUrlEncode(this.clientId)}:${formUrlEncode(secret)}`)}`;
        return;
      }
      case 'client_secret_post':
        body.set('client_id', this.clientId);
        body.set('client_secret', (this.#secret as ClientSecret).reveal());
        return;
      case 'private_key_jwt':
        body.set('client_id', this.clientId);
        body.set('client_assertion_type', JWT_BEARER_ASSERTION_TYPE);
        body.set('client_assertion', await this.#assertion(audience, clock));
        return;
      case 'none':
        body.set('client_id', this.clientId);
        return;
    }
  }

  async #assertion(audience: string, clock: SkewClock): Promise<string> {
    // iat and exp are on the server's clock, so a skewed client does not send an assertion the
    // server considers expired or not yet valid.
    const now = Math.floor((clock.now() + clock.skewMs) / 1000);
    const header: { alg: string; kid?: string } = { alg: this.#alg as string };
    if (this.#kid !== undefined) header.kid = this.#kid;
    try {
      return await new SignJWT({})
        .setProtectedHeader(header)
        .setIssuer(this.clientId)
        .setSubject(this.clientId)
        // One string, never an array: an array audience is what CVE-2025-27370/27371 abuse.
        .setAudience(audience)
        .setJti(randomId())
        .setIssuedAt(now)
        .setExpirationTime(now + ASSERTION_LIFETIME_S)
        .sign(this.#key as PrivateKeyInput);
    } catch (error) {
      const reason =
        error instanceof Error && /^[A-Za-z]{1,40}$/.test(error.name) ? error.name : 'Error';
      throw new InvalidArgumentError(
        `privateKey could not sign a ${this.#alg} client assertion (${reason}). Check that the key is a private key for that algorithm and allows signing.`,
      );
    }
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): Record<string, unknown> {
    return { method: this.method, clientId: this.clientId };
  }

  [INSPECT](): string {
    return `ClientAuthentication ${JSON.stringify(this.toJSON())}`;
  }
}

/**
 * The `application/x-www-form-urlencoded` encoding of one value (spaces as `+`), as RFC 6749
 * §2.3.1 requires for the Basic credentials.
 *
 * @param value - A client id or secret.
 * @returns The encoded value.
 * @example
 * ```ts
 * formUrlEncode('a b%:+é'); // 'a+b%25%3A%2B%C3%A9'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#appendix-B
 */
export function formUrlEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/** 128 random bits, base64url: unguessable and, in practice, never repeated. */
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function isJwk(key: PrivateKeyInput): key is JWK {
  return typeof (key as JWK).kty === 'string';
}

function inferAlgorithm(key: PrivateKeyInput): string | undefined {
  if (isJwk(key)) {
    if (typeof key.d !== 'string') {
      throw invalidArgument('privateKey is a public JWK: a private JWK (with "d") is needed.');
    }
    if (typeof key.alg === 'string') return key.alg;
    if (key.kty === 'RSA') return 'RS256';
    if (key.kty === 'EC') return curveAlg(key.crv);
    if (key.kty === 'OKP' && key.crv === 'Ed25519') return 'EdDSA';
    return undefined;
  }
  const candidate = key as {
    type?: unknown;
    algorithm?: { name?: unknown; namedCurve?: unknown; hash?: { name?: unknown } };
    asymmetricKeyType?: unknown;
    asymmetricKeyDetails?: { namedCurve?: unknown };
  };
  if (candidate.type !== 'private') {
    throw invalidArgument('privateKey must be a private key (not a public or secret key).');
  }
  if (candidate.algorithm !== undefined && typeof candidate.algorithm === 'object') {
    const { name, namedCurve, hash } = candidate.algorithm;
    const bits = typeof hash?.name === 'string' ? hash.name.replace('SHA-', '') : '256';
    if (name === 'RSASSA-PKCS1-v1_5') return `RS${bits}`;
    if (name === 'RSA-PSS') return `PS${bits}`;
    if (name === 'ECDSA') return curveAlg(namedCurve);
    if (name === 'Ed25519') return 'EdDSA';
    return undefined;
  }
  switch (candidate.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    case 'ec':
      return curveAlg(candidate.asymmetricKeyDetails?.namedCurve);
    case 'ed25519':
      return 'EdDSA';
    default:
      return undefined;
  }
}

function curveAlg(curve: unknown): string | undefined {
  switch (curve) {
    case 'P-256':
    case 'prime256v1':
      return 'ES256';
    case 'P-384':
    case 'secp384r1':
      return 'ES384';
    case 'P-521':
    case 'secp521r1':
      return 'ES512';
    default:
      return undefined;
  }
}
