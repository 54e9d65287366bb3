// Registers credentials against the oidc fixture (test/support/oidc-server.ts) with the options
// the integration tests share. Free of vitest, so that test/fixtures/exit-after-close.ts, which
// runs as a plain Node process, can use it too; the tests get it through ./harness.ts.
import {
  type ClientCredentialsOptions,
  type Credential,
  type CredentialOptions,
  clientCredentials,
  refreshToken,
  type Warden,
} from '../../src/index.js';
import { BASIC_CLIENT_SECRET, type MintedTokens, type OidcServer } from './oidc-server.js';

/** Register options beyond the source and the origins, which the builders fill in. */
export type ExtraOptions = Omit<CredentialOptions, 'source' | 'origins'>;

/** How a client_credentials source authenticates: its options without the issuer. */
export type ClientOptions = Omit<ClientCredentialsOptions, 'issuer'>;

/** The fixture's client_secret_basic client, with {@link BASIC_CLIENT_SECRET}. */
export function basicClient(op: OidcServer): ClientOptions {
  return { clientId: op.clients.basic.clientId, clientSecret: BASIC_CLIENT_SECRET };
}

/** Registers a refresh_token credential of the fixture's refresh client, for the resource server. */
export function refreshCredential(
  op: OidcServer,
  warden: Warden,
  id: string,
  minted: Pick<MintedTokens, 'refreshToken'>,
  extra: ExtraOptions = {},
): Credential {
  return warden.register(id, {
    source: refreshToken({
      issuer: op.issuer,
      clientId: op.clients.refresh.clientId,
      clientSecret: op.clients.refresh.clientSecret,
      refreshToken: minted.refreshToken,
    }),
    origins: [op.resource.origin],
    ...extra,
  });
}

/** Registers a client_credentials credential at the fixture's issuer, for the resource server. */
export function clientCredential(
  op: OidcServer,
  warden: Warden,
  id: string,
  client: ClientOptions,
  extra: ExtraOptions = {},
): Credential {
  return warden.register(id, {
    source: clientCredentials({ issuer: op.issuer, ...client }),
    origins: [op.resource.origin],
    ...extra,
  });
}
