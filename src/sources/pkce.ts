// PKCE (RFC 7636) and the random values of an authorization request, on Web Crypto only.
import { TokenWardenError } from '../errors.js';

/** Bytes of randomness in a code verifier, `state` and `nonce`: 256 bits. */
const RANDOM_BYTES = 32;

/**
 * Base64url without padding (RFC 4648 §5), the alphabet of PKCE verifiers and challenges.
 * @internal
 */
export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function webCrypto(): Crypto {
  const crypto = (globalThis as { crypto?: Crypto }).crypto;
  if (crypto?.subtle === undefined || typeof crypto.getRandomValues !== 'function') {
    throw new TokenWardenError(
      'ERR_UNSUPPORTED',
      'Web Crypto (crypto.subtle and crypto.getRandomValues) is missing: a browser sign-in needs a secure context (https, or http on localhost).',
    );
  }
  return crypto;
}

/**
 * A fresh random value of 256 bits as 43 base64url characters: a PKCE code verifier (within the
 * 43–128 characters of `[A-Za-z0-9-._~]` RFC 7636 §4.1 allows), a `state` or a `nonce`.
 * @internal
 */
export function randomValue(): string {
  return base64url(webCrypto().getRandomValues(new Uint8Array(RANDOM_BYTES)));
}

/**
 * The S256 code challenge of a verifier: `BASE64URL(SHA-256(ASCII(verifier)))`.
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.2
 * @internal
 */
export async function codeChallenge(verifier: string): Promise<string> {
  const digest = await webCrypto().subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}
