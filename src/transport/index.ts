/**
 * The transport: the authenticated fetch (headers, origin policy, 401 retry, redirects) and the
 * ky client built on it.
 *
 * @module
 */
export { createAuthenticatedFetch } from './fetch.js';
export type { CreateKyOptions } from './ky.js';
export { createKy } from './ky.js';
export type { AuthChallenge } from './policy.js';
export { originOf, parseWwwAuthenticate } from './policy.js';
export type {
  AttachedToken,
  BlockAction,
  ForeignOriginAction,
  RequestOutcome,
  TransportHost,
} from './types.js';
