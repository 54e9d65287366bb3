import type { SkewClock } from '../sources/types.js';
import { base64url, type DpopKey } from './key.js';

/**
 * Which kind of server a proof is for: nonces are kept separately for authorization servers
 * (token requests) and resource servers (API requests), per origin.
 * @internal
 */
export type DpopServer = 'authorization' | 'resource';

/** A nonce value as RFC 9449 §8.1 allows it (`NQCHAR`: visible ASCII without `"` and `\`). */
const NONCE = /^[\x21\x23-\x5B\x5D-\x7E]{1,512}$/;
/** Origins whose nonce is remembered, per kind of server. */
const MAX_ORIGINS = 64;

/**
 * The server-provided nonces of one credential, per origin and kind of server, as the latest
 * `DPoP-Nonce` response header set them. Bounded: the oldest origin is forgotten first.
 * @internal
 */
export class DpopNonces {
  readonly #maps: Record<DpopServer, Map<string, string>> = {
    authorization: new Map(),
    resource: new Map(),
  };

  /** The nonce to put in the next proof for `origin`, if the server gave one. */
  get(server: DpopServer, origin: string): string | undefined {
    return this.#maps[server].get(origin);
  }

  /**
   * Adopts the `DPoP-Nonce` header of a response from `origin`.
   * @returns Whether the nonce changed (a retry with it can succeed).
   */
  learn(server: DpopServer, origin: string, headers: Headers): boolean {
    const value = headers.get('dpop-nonce')?.trim();
    if (value === undefined || !NONCE.test(value)) return false;
    const map = this.#maps[server];
    const previous = map.get(origin);
    map.delete(origin);
    map.set(origin, value);
    if (map.size > MAX_ORIGINS) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    return previous !== value;
  }
}

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
