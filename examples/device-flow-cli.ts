// A command-line tool that signs its user in with the device authorization grant (RFC 8628) and
// keeps the tokens in the OS keychain: the first run prints a code to enter in a browser on any
// device; later runs refresh from the keychain without asking. `--logout` revokes and forgets.
//
//   npm run build   # the examples import the package, `tokenwarden`, from dist/
//   ISSUER=https://auth.example.com CLIENT_ID=my-cli API=https://api.example.com/v1/me \
//   npx tsx examples/device-flow-cli.ts [--logout]
//
// ISSUER     the authorization server (its metadata names the device authorization endpoint)
// CLIENT_ID  a public client (no secret) allowed the device_code and refresh_token grants
// API        the URL to call; its origin is the only one the token may be sent to
//
// The keychain needs the optional peer dependency `@napi-rs/keyring` and, on Linux, a Secret
// Service (gnome-keyring or KWallet).
import { createWarden, deviceCode, isTokenWardenError } from 'tokenwarden';
import { keychainStore } from 'tokenwarden/node';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Set ${name}; see the header of examples/device-flow-cli.ts.`);
  return value;
}

const api = new URL(required('API'));
const warden = createWarden({ store: keychainStore({ service: 'my-cli' }) });
const me = warden.register('me', {
  source: deviceCode({
    issuer: required('ISSUER'),
    clientId: required('CLIENT_ID'),
    scope: ['openid', 'offline_access'],
    // Called once per sign-in; the source then polls the token endpoint at the server's pace.
    onPrompt: ({ verificationUri, verificationUriComplete, userCode, expiresAt }) => {
      process.stderr.write(
        `To sign in, open ${verificationUriComplete ?? verificationUri} and enter ${userCode}` +
          ` (before ${new Date(expiresAt).toLocaleTimeString()}).\n`,
      );
    },
    signal: AbortSignal.timeout(10 * 60_000),
  }),
  origins: [api.origin],
});

try {
  if (process.argv.includes('--logout')) {
    const { outcome } = await me.revoke(); // RFC 7009 at the server, then wiped from the keychain
    process.stderr.write(`Signed out (${outcome}).\n`);
  } else {
    const response = await me.fetch(api); // signs in first when the keychain holds nothing
    process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
  }
} catch (error) {
  if (!isTokenWardenError(error)) throw error;
  // ERR_ACCESS_DENIED: the user said no; ERR_DEVICE_CODE_EXPIRED: nobody signed in before the code expired.
  process.stderr.write(`${error.code}: ${error.message}\n`);
  process.exitCode = 1;
} finally {
  await warden.close();
}
