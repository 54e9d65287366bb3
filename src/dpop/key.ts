import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  SignJWT,
} from 'jose';
import { invalidArgument, TokenWardenError } from '../errors.js';
import { INSPECT } from '../internal/redact.js';

/**
 * The signature algorithms a DPoP key can use: `ES256` (ECDSA P-256, the default and the one
 * every DPoP server supports) or `EdDSA` (Ed25519).
 *
 * @example
 * ```ts
 * import type { DpopAlgorithm } from 'tokenwarden';
 * const algorithm: DpopAlgorithm = 'EdDSA';
 * warden.register('api', { source, origins, dpop: { algorithm } });
 * ```
 */
export type DpopAlgorithm = 'ES256' | 'EdDSA';

/**
 * What may be shown of a DPoP key: its algorithm and RFC 7638 SHA-256 thumbprint (the value a
 * server binds tokens to, `cnf.jkt`). Never the key itself.
 *
 * @example
 * ```ts
 * import type { DpopKeyInfo } from 'tokenwarden';
 * const key: DpopKeyInfo | undefined = api.status().dpop;
 * if (key) console.log(`api tokens are bound to key ${key.thumbprint} (${key.algorithm})`);
 * ```
 */
export interface DpopKeyInfo {
  /** The signature algorithm. */
  readonly algorithm: DpopAlgorithm;
  /** The RFC 7638 SHA-256 thumbprint of the public key, base64url. */
  readonly thumbprint: string;
}

/** The algorithms accepted, and the curve of each. */
const CURVES: Readonly<Record<DpopAlgorithm, string>> = { ES256: 'P-256', EdDSA: 'Ed25519' };

/** Public members of the key types a DPoP proof may embed. */
const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
};

/**
 * A DPoP key pair (RFC 9449): the private key signs proofs and never leaves the credential; the
 * public JWK goes into each proof, and its SHA-256 thumbprint (RFC 7638) is what the server binds
 * the tokens to. Prints as its algorithm and thumbprint only. Credentials create and use it;
 * a custom {@link TokenStore} persists it with the record ({@link StoredRecord.dpopKey}): as the
 * CryptoKey pair itself (`pair`, when the store sets `keepsCryptoKeys`), or sealed as its private
 * JWK (`exportPrivateJwk()`, read back with `DpopKey.fromPrivateJwk()`).
 *
 * @example
 * ```ts
 * import { DpopKey, type StoredRecord } from 'tokenwarden';
 * function toJson(record: StoredRecord) {
 *   const key = record.dpopKey;
 *   return key && { algorithm: key.algorithm, jwk: key.exportPrivateJwk() }; // then encrypt it
 * }
 * async function fromJson(saved: { algorithm: 'ES256' | 'EdDSA'; jwk: JsonWebKey }) {
 *   return DpopKey.fromPrivateJwk(saved.algorithm, saved.jwk);
 * }
 * ```
 */
export class DpopKey {
  /** The signature algorithm. */
  readonly algorithm: DpopAlgorithm;
  /** The public key as a JWK with only its public members. */
  readonly publicJwk: Readonly<JWK>;
  /** The RFC 7638 SHA-256 thumbprint of the public key, base64url. */
  readonly thumbprint: string;
  readonly #privateKey: CryptoKey;
  readonly #publicKey: CryptoKey;
  /** The private key as a JWK, when the key is extractable (to be sealed in a store). */
  readonly #privateJwk: JWK | undefined;

  private constructor(
    algorithm: DpopAlgorithm,
    pair: CryptoKeyPair,
    publicJwk: JWK,
    thumbprint: string,
    privateJwk: JWK | undefined,
  ) {
    this.algorithm = algorithm;
    this.#privateKey = pair.privateKey;
    this.#publicKey = pair.publicKey;
    this.publicJwk = Object.freeze(publicJwk);
    this.thumbprint = thumbprint;
    this.#privateJwk = privateJwk === undefined ? undefined : Object.freeze({ ...privateJwk });
    Object.freeze(this);
  }

  /**
   * Generates a key pair. A non-extractable private key cannot be exported by anyone, the app
   * included: what browsers keep in IndexedDB. An extractable one can be sealed into a store.
   * @param algorithm - `ES256` or `EdDSA`.
   * @param extractable - Whether the private key may be exported (to seal it as a JWK).
   * @returns The key.
   * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for another algorithm. A runtime
   * without the algorithm rejects with its own WebCrypto error.
   */
  static async generate(algorithm: DpopAlgorithm, extractable: boolean): Promise<DpopKey> {
    checkAlgorithm(algorithm);
    const pair = await generateKeyPair(algorithm, {
      extractable,
      ...(algorithm === 'EdDSA' ? { crv: 'Ed25519' } : {}),
    });
    return DpopKey.fromPair(algorithm, pair);
  }

  /**
   * Wraps an existing key pair (e.g. one read back from IndexedDB).
   * @param algorithm - The pair's algorithm, `ES256` or `EdDSA`.
   * @param pair - The CryptoKey pair.
   * @returns The key.
   * @throws {@link TokenWardenError} `ERR_INVALID_ARGUMENT` for another algorithm,
   * `ERR_STORE_CORRUPT` when the public key is not an EC or OKP key.
   */
  static async fromPair(algorithm: DpopAlgorithm, pair: CryptoKeyPair): Promise<DpopKey> {
    checkAlgorithm(algorithm);
    const publicJwk = publicMembers(await exportJWK(pair.publicKey));
    const privateJwk = pair.privateKey.extractable ? await exportJWK(pair.privateKey) : undefined;
    return new DpopKey(
      algorithm,
      pair,
      publicJwk,
      await calculateJwkThumbprint(publicJwk, 'sha256'),
      privateJwk,
    );
  }

  /**
   * Rebuilds a key from its private JWK (e.g. one unsealed from a store).
   * @param algorithm - The key's algorithm, `ES256` or `EdDSA`.
   * @param jwk - The private JWK (with its `d` member).
   * @returns The key.
   * @throws {@link TokenWardenError} `ERR_INVALID_ARGUMENT` for another algorithm,
   * `ERR_STORE_CORRUPT` when the JWK is not such a key.
   */
  static async fromPrivateJwk(algorithm: DpopAlgorithm, jwk: JWK): Promise<DpopKey> {
    checkAlgorithm(algorithm);
    if (jwk.crv !== CURVES[algorithm] || typeof jwk.d !== 'string') {
      throw new TokenWardenError(
        'ERR_STORE_CORRUPT',
        `The stored DPoP key is not a private ${algorithm} key.`,
      );
    }
    const publicJwk = publicMembers(jwk);
    const privateKey = (await importJWK({ ...jwk, ext: true }, algorithm, {
      extractable: true,
    })) as CryptoKey;
    const publicKey = (await importJWK(publicJwk, algorithm, { extractable: true })) as CryptoKey;
    return new DpopKey(
      algorithm,
      { privateKey, publicKey },
      publicJwk,
      await calculateJwkThumbprint(publicJwk, 'sha256'),
      jwk,
    );
  }

  /** Whether the private key can be exported (and so sealed into a store as a JWK). */
  get extractable(): boolean {
    return this.#privateJwk !== undefined;
  }

  /** The key pair itself, for stores that keep CryptoKeys as they are (IndexedDB). */
  get pair(): CryptoKeyPair {
    return { privateKey: this.#privateKey, publicKey: this.#publicKey };
  }

  /**
   * The private JWK, for sealing into a store; `undefined` when not extractable.
   * @throws Never.
   */
  exportPrivateJwk(): JWK | undefined {
    return this.#privateJwk === undefined ? undefined : { ...this.#privateJwk };
  }

  /**
   * Signs a DPoP proof JWT: header `typ` `dpop+jwt`, `alg`, the public `jwk`; claims `jti` (128
   * random bits), `htm`, `htu`, `iat` (whole seconds, corrected for the server's clock), and
   * `nonce` and `ath` when given.
   * @internal
   */
  async sign(claims: ProofClaims): Promise<string> {
    const payload: Record<string, unknown> = {
      jti: randomId(),
      htm: claims.htm,
      htu: claims.htu,
      iat: claims.iat,
    };
    if (claims.nonce !== undefined) payload['nonce'] = claims.nonce;
    if (claims.ath !== undefined) payload['ath'] = claims.ath;
    return new SignJWT(payload)
      .setProtectedHeader({ typ: 'dpop+jwt', alg: this.algorithm, jwk: { ...this.publicJwk } })
      .sign(this.#privateKey);
  }

  /**
   * @returns The non-secret description.
   * @throws Never.
   */
  info(): DpopKeyInfo {
    return { algorithm: this.algorithm, thumbprint: this.thumbprint };
  }

  /**
   * @returns The non-secret description.
   * @throws Never.
   */
  toJSON(): DpopKeyInfo {
    return this.info();
  }

  /**
   * @returns `DpopKey(<algorithm>, <thumbprint>)`, never the key.
   * @throws Never.
   */
  toString(): string {
    return `DpopKey(${this.algorithm}, ${this.thumbprint})`;
  }

  /** @internal */
  [INSPECT](): string {
    return this.toString();
  }
}

/** The claims of one proof, computed by the caller. @internal */
export interface ProofClaims {
  readonly htm: string;
  readonly htu: string;
  readonly iat: number;
  readonly nonce?: string | undefined;
  readonly ath?: string | undefined;
}

function checkAlgorithm(algorithm: unknown): asserts algorithm is DpopAlgorithm {
  if (algorithm !== 'ES256' && algorithm !== 'EdDSA') {
    throw invalidArgument("dpop.algorithm must be 'ES256' or 'EdDSA'.");
  }
}

function publicMembers(jwk: JWK): JWK {
  const members = PUBLIC_MEMBERS[jwk.kty ?? ''];
  if (members === undefined) {
    throw new TokenWardenError('ERR_STORE_CORRUPT', 'The DPoP key is not an EC or OKP key.');
  }
  const out: Record<string, unknown> = {};
  for (const member of members) {
    const value = (jwk as Record<string, unknown>)[member];
    if (typeof value !== 'string') {
      throw new TokenWardenError('ERR_STORE_CORRUPT', `The DPoP key has no "${member}" member.`);
    }
    out[member] = value;
  }
  return out as JWK;
}

/** 128 random bits, base64url: a proof's `jti`. */
function randomId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** base64url without padding. @internal */
export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
