import type { SkewClock } from '../sources/types.js';
import { base64url, type DpopKey } from './key.js';
import type { DpopNonces, DpopServer } from './nonces.js';

/** What a transport or an OAuth client needs to prove possession of a credential's key. @internal */
export interface DpopProver {
  /** The key's RFC 7638 thumbprint (for `dpop_jkt` and the inventory). */
  readonly thumbprint: string;
  /**
   * A fresh proof for one request (a new `jti` every call): `htm` the method, `htu` the URL
   * without query or fragment, `iat` on the server's clock, the origin's latest nonce, and `ath`
   * when `accessToken` is given (resource requests only).
   */
  proof(server: DpopServer, method: string, url: URL, accessToken?: string): Promise<string>;
  /** Adopts a response's `DPoP-Nonce`; `true` when it changed. */
  learn(server: DpopServer, url: URL, headers: Headers): boolean;
}

/** Builds the prover of a key, with the credential's nonces and clock. @internal */
export function dpopProver(key: DpopKey, nonces: DpopNonces, clock: SkewClock): DpopProver {
  return {
    thumbprint: key.thumbprint,
    async proof(server, method, url, accessToken) {
      const iat = Math.floor((clock.now() + clock.skewMs) / 1000);
      return key.sign({
        htm: method,
        htu: `${url.origin}${url.pathname}`,
        iat,
        nonce: nonces.get(server, url.origin),
        ath: accessToken === undefined ? undefined : await accessTokenHash(accessToken),
      });
    },
    learn: (server, url, headers) => nonces.learn(server, url.origin, headers),
  };
}

/** `ath`: base64url(SHA-256(ASCII(access token))), RFC 9449 §4.2. @internal */
export async function accessTokenHash(accessToken: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken));
  return base64url(new Uint8Array(digest));
}
