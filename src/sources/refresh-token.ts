import { invalidArgument, TokenWardenError } from '../errors.js';
import type { TokenSet } from '../token.js';
import {
  normaliseScope,
  OAuthClient,
  OAuthGrantSource,
  type OAuthSourceOptions,
  type OAuthTokenSource,
} from './oauth.js';
import { isTokenValue } from './token-response.js';
import type { SourceContext } from './types.js';

/**
 * Options of {@link refreshToken}.
 *
 * @example
 * ```ts
 * import { refreshToken, type RefreshTokenOptions } from 'tokenwarden';
 * const options: RefreshTokenOptions = {
 *   issuer: 'https://auth.example.com',
 *   clientId: 'spa',
 *   refreshToken: savedRefreshToken,
 *   scope: ['profile:read'],
 * };
 * warden.register('profile', { source: refreshToken(options), origins: ['https://api.example.com'] });
 * ```
 */
export interface RefreshTokenOptions extends OAuthSourceOptions {
  /**
   * The refresh token to start from (e.g. from a sign-in done elsewhere). Once the credential
   * holds a token set with a refresh token, that one is used instead, so a rotated token always
   * wins over this initial value. Kept in a private field.
   * @default undefined (the credential's current token set must carry one)
   */
  refreshToken?: string | undefined;
  /**
   * Scopes to request on refresh. Only ever a subset of the original grant: a refresh cannot
   * widen scope (RFC 6749 §6), and without this option no `scope` parameter is sent, which keeps
   * the originally granted scope.
   * @default undefined (keep the granted scope)
   */
  scope?: string | readonly string[] | undefined;
}

/**
 * A token source for the OAuth 2.0 refresh token grant, with rotation: when the server returns a
 * new refresh token it replaces the old one at once (in this source and in the returned token
 * set, which the credential stores); when it returns none, the old one is kept.
 *
 * The refresh token comes from `context.current` (the credential's current token set) when it
 * has one, else from the `refreshToken` option. With neither, `obtain()` fails with
 * `ERR_REAUTH_REQUIRED` without contacting the server. An `invalid_grant` answer surfaces as an
 * {@link OAuthError}, which credentials turn into the `reauth-required` state.
 *
 * @param options - Issuer or token endpoint, client authentication, initial refresh token, scope.
 * @returns The token source (with `revoke` for RFC 7009).
 * @throws {@link InvalidArgumentError} `ERR_INVALID_ARGUMENT` for invalid options.
 * @example
 * ```ts
 * import { refreshToken } from 'tokenwarden';
 * const source = refreshToken({
 *   issuer: 'https://auth.example.com',
 *   clientId: 'spa',                   // a public client: no secret
 *   refreshToken: savedRefreshToken,
 * });
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2 (refresh token rotation)
 */
export function refreshToken(options: RefreshTokenOptions): OAuthTokenSource {
  return new RefreshTokenSource(options);
}

class RefreshTokenSource extends OAuthGrantSource {
  readonly kind = 'refresh_token' as const;
  #refreshToken: string | undefined;

  constructor(options: RefreshTokenOptions) {
    super(new OAuthClient(options, 'refreshToken'), normaliseScope(options.scope, 'scope'));
    if (options.refreshToken !== undefined && !isTokenValue(options.refreshToken)) {
      throw invalidArgument(
        'refreshToken must be a non-empty string of visible ASCII characters (no whitespace).',
      );
    }
    this.#refreshToken = options.refreshToken;
    Object.freeze(this);
  }

  async obtain(context: SourceContext): Promise<TokenSet> {
    const used = context.current?.revealRefreshToken() ?? this.#refreshToken;
    if (used === undefined) {
      throw new TokenWardenError(
        'ERR_REAUTH_REQUIRED',
        'There is no refresh token to redeem. Sign in again, or pass refreshToken to refreshToken().',
        { credentialId: context.credentialId },
      );
    }
    const params = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: used });
    if (this.scope !== undefined && this.scope.length > 0) {
      params.set('scope', this.scope.join(' '));
    }
    const set = await this.client.requestToken(params, context, {
      requestedScope: this.scope ?? context.current?.scope,
    });
    const rotated = set.revealRefreshToken();
    if (rotated !== undefined) {
      // The old token is dead once the server rotated it; never offer it again.
      this.#refreshToken = rotated;
      return set;
    }
    return set.with({ refreshToken: used });
  }
}
