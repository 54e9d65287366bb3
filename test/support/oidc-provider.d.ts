// oidc-provider ships no type declarations. These cover only what test/support/oidc-server.ts
// uses; widen them there when the fixture needs more.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** A stored artefact (token, grant) as the provider's models expose it. */
  export interface ProviderToken {
    jti: string;
    kind: string;
    clientId?: string;
    grantId?: string;
    accountId?: string;
    scope?: string;
    gty?: string;
    consumed?: unknown;
    readonly isValid: boolean;
    readonly isExpired: boolean;
    readonly expiration: number;
    save(): Promise<string>;
    destroy(): Promise<void>;
  }

  export interface ProviderGrant extends ProviderToken {
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
  }

  export interface TokenModel<T extends ProviderToken> {
    new (payload: Record<string, unknown>): T;
    find(value: string, options?: { ignoreExpiration?: boolean }): Promise<T | undefined>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  /** The subset of the Koa context the provider hands grant handlers. */
  export interface ProviderContext {
    oidc: {
      client?: { clientId: string } & Record<string, unknown>;
      params?: Record<string, unknown>;
    };
    body: unknown;
  }

  export type GrantHandler = (ctx: ProviderContext) => Promise<void>;

  export class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    registerGrantType(
      name: string,
      handler: GrantHandler,
      params?: string | readonly string[] | Set<string>,
      allowedDuplicateParameters?: string | readonly string[] | Set<string>,
    ): void;
    on(event: string, listener: (...args: unknown[]) => void): this;
    readonly Grant: TokenModel<ProviderGrant> & {
      find(id: string): Promise<ProviderGrant | undefined>;
    };
    readonly AccessToken: TokenModel<ProviderToken>;
    readonly ClientCredentials: TokenModel<ProviderToken>;
    readonly RefreshToken: TokenModel<ProviderToken>;
  }

  type OidcErrorClass = new (description?: string, detail?: string) => Error;

  export const errors: {
    InvalidTarget: OidcErrorClass;
    InvalidGrant: OidcErrorClass;
    InvalidRequest: OidcErrorClass;
    InvalidScope: OidcErrorClass;
  };

  export default Provider;
}
