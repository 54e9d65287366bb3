// The DPoP nonces of a credential. Apart from the proofs (./proof.ts) and the key (./key.ts),
// which need jose and are loaded only by DPoP-bound credentials, when they first need them.

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
