// The setup the two revocation suites share: test/integration/revoke.test.ts (the client revokes
// with credential.revoke() and warden.revokeAll()) and test/integration/revocation.test.ts (the
// server revokes a token or a grant behind the client's back). Both run against one
// oidc-provider per file, with a warden closed after each test, and hold refresh_token
// credentials on freshly minted grants.
import type { Credential, Warden, WardenOptions } from '../../src/index.js';
import { refreshCredential, useOidcServer, useWarden } from './harness.js';
import type { MintedTokens, OidcServer } from './oidc-server.js';

/** A refresh_token credential on a grant minted for it. */
export interface GrantCredential {
  readonly op: OidcServer;
  /** The grant as minted at the server (its first refresh token, before any rotation). */
  readonly minted: MintedTokens;
  readonly cred: Credential;
}

export interface RevocationFixture {
  /** The oidc-provider server of this file (inside tests and hooks only). */
  readonly server: () => OidcServer;
  /** Creates a warden that is closed after the test. */
  readonly newWarden: (options?: WardenOptions) => Warden;
  /** Mints a new grant at the server and registers `id` on `warden` with its refresh token. */
  onNewGrant(warden: Warden, id: string): Promise<GrantCredential>;
}

/** Call at the top of a test file: registers the server's and the warden's hooks. */
export function useRevocationFixture(): RevocationFixture {
  const server = useOidcServer();
  const newWarden = useWarden();
  return {
    server,
    newWarden,
    async onNewGrant(warden, id) {
      const op = server();
      const minted = await op.mintRefreshToken();
      return { op, minted, cred: refreshCredential(op, warden, id, minted) };
    },
  };
}
