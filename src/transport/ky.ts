import type { KyInstance, Options } from 'ky';
import ky from 'ky';
import { invalidArgument } from '../errors.js';
import { createAuthenticatedFetch } from './fetch.js';
import type { TransportHost } from './types.js';

/**
 * Options of `credential.ky()`: every ky option except `fetch`, which is always the
 * credential's authenticated fetch. `prefix` and `baseUrl` work as in ky 2; when absolute,
 * their origin is added to the origins that ky instance may send the token to.
 *
 * @example
 * ```ts
 * const options: CreateKyOptions = { prefix: 'https://billing.example.com/v1/', retry: 2 };
 * const api = billing.ky(options);
 * ```
 */
export type CreateKyOptions = Omit<Options, 'fetch'>;

/**
 * Creates a ky instance whose every request goes through the authenticated fetch. ky's retries,
 * timeouts, hooks and body helpers run above it, so each retry attempt is checked against the
 * policy and carries the current token, and a 401 refresh-and-retry happens inside one ky
 * attempt. Hooks never see the token: it is added below them.
 *
 * A `prefix` cannot be bypassed: ky joins it in front of every string input, so an absolute or
 * protocol-relative string stays under the prefix, and a `URL` or `Request` input (to which ky
 * does not apply the prefix) is still checked against the allow-list.
 *
 * @param transport - A credential's transport host, or an authenticated fetch built with
 *   {@link createAuthenticatedFetch}.
 * @param options - ky options (ky 2: `prefix`, `baseUrl`, `retry`, `timeout`, `hooks`, ...).
 * @returns A ky instance.
 * @throws {@link InvalidArgumentError} (`ERR_INVALID_ARGUMENT`) when `options.fetch` is set: a
 *   custom fetch would bypass tokenwarden's policy, so the underlying fetch belongs to the
 *   credential instead.
 * @example
 * ```ts
 * const api = createKy(host, { prefix: 'https://billing.example.com/v1/', retry: 2 });
 * const invoices = await api.get('invoices').json();
 * ```
 */
export function createKy(
  transport: TransportHost | typeof fetch,
  options: CreateKyOptions = {},
): KyInstance {
  if ((options as Options).fetch !== undefined) {
    throw invalidArgument(
      'ky options must not set fetch: requests must go through the credential. Configure the underlying fetch on the credential instead.',
    );
  }
  const authenticatedFetch =
    typeof transport === 'function' ? transport : createAuthenticatedFetch(transport);
  return ky.create({ ...options, fetch: authenticatedFetch });
}
