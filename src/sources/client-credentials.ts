import { invalidArgument } from '../errors.js';
import type { TokenSet } from '../token.js';
import {
  normaliseScope,
  OAuthClient,
  OAuthGrantSource,
  type OAuthSourceOptions,
  type OAuthTokenSource,
} from './oauth.js';
import { hasControlChars } from './token-response.js';
import type { SourceContext } from './types.js';

/**
 * Options of {@link clientCredentials}.
 *
 * @example
 * ```ts
 * import { clientCredentials, type ClientCredentialsOptions } from 'tokenwarden';
 * const options: ClientCredentialsOptions = {
 *   issuer: 'https://auth.example.com',
 *   clientId: 'billing-service',
 *   clientSecret: process.env.BILLING_SECRET,
 *   resource: 'https://billing.example.com/',
 * };
 * const source = clientCredentials(options);
 * ```
 */
export interface ClientCredentialsOptions extends OAuthSourceOptions {
  /**
   * The scopes to request, as an array or a space-delimited string.
   * @default undefined (the server's default scope)
   */
  scope?: string | readonly string[] | undefined;
  /**
   * An `audience` parameter, for servers that select the API by audience (Auth0 and others).
   * @default undefined (no `audience` is sent)
   */
  audience?: string | undefined;
  /**
   * One or more RFC 8707 resource indicators: absolute URIs without fragment, each sent as its
   * own `resource` parameter.
   * @default undefined (no `resource` is sent)
   */
  resource?: string | URL | ReadonlyArray<string | URL> | undefined;
}

/**
 * A token source for the OAuth 2.0 client credentials grant: a service obtains tokens for itself
 * with its client secret, private key (`private_key_jwt`) or, for public clients, its id alone.
 *
 * Options are validated at once, so misconfiguration fails at start-up with an
 * {@link InvalidArgumentError}.
 *
 * @param options - Issuer or token endpoint, client authentication, scope, audience, resource.
 * @returns The token source (with `revoke` for RFC 7009).
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for invalid options.
 * @example
 * ```ts
 * import { createWarden, clientCredentials } from 'tokenwarden';
 * const warden = createWarden();
 * const billing = warden.register('billing', {
 *   source: clientCredentials({
 *     issuer: 'https://auth.example.com',
 *     clientId: 'billing-service',
 *     clientSecret: process.env.BILLING_SECRET,
 *     scope: ['invoices:read'],
 *   }),
 *   origins: ['https://billing.example.com'],
 * });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 */
export function clientCredentials(options: ClientCredentialsOptions): OAuthTokenSource {
  return new ClientCredentialsSource(options);
}

class ClientCredentialsSource extends OAuthGrantSource {
  readonly kind = 'client_credentials' as const;
  readonly #audience: string | undefined;
  readonly #resources: string[];

  constructor(options: ClientCredentialsOptions) {
    super(new OAuthClient(options, 'clientCredentials'), normaliseScope(options.scope, 'scope'));
    if (
      options.audience !== undefined &&
      (typeof options.audience !== 'string' ||
        options.audience === '' ||
        hasControlChars(options.audience))
    ) {
      throw invalidArgument('audience must be a non-empty string without control characters.');
    }
    this.#audience = options.audience;
    this.#resources = normaliseResources(options.resource);
    Object.freeze(this);
  }

  obtain(context: SourceContext): Promise<TokenSet> {
    const params = new URLSearchParams({ grant_type: 'client_credentials' });
    if (this.scope !== undefined && this.scope.length > 0) {
      params.set('scope', this.scope.join(' '));
    }
    if (this.#audience !== undefined) params.set('audience', this.#audience);
    for (const resource of this.#resources) params.append('resource', resource);
    return this.client.requestToken(params, context, { requestedScope: this.scope });
  }
}

/**
 * Validates RFC 8707 resource indicators: absolute URIs without a fragment.
 *
 * @param value - One resource or a list.
 * @returns The resources as strings, in order, without duplicates.
 * @throws {@link InvalidArgumentError} for a relative URI or one with a fragment.
 * @example
 * ```ts
 * normaliseResources(['https://api.example.com/', 'urn:example:api']);
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8707#section-2
 */
export function normaliseResources(value: unknown): string[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  const result: string[] = [];
  for (const item of list) {
    let url: URL | undefined;
    try {
      url = typeof item === 'string' || item instanceof URL ? new URL(item) : undefined;
    } catch {
      url = undefined;
    }
    if (url === undefined || url.hash !== '' || String(item).includes('#')) {
      throw invalidArgument(
        'resource must be an absolute URI without a fragment (RFC 8707 §2), or an array of them.',
      );
    }
    const text = typeof item === 'string' ? item : url.href;
    if (!result.includes(text)) result.push(text);
  }
  return result;
}
