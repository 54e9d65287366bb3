// A custom token source: tokens from an in-house token service that is not an OAuth server, with
// the same refresh, single-flight, backoff, storage and policy as any other source.
//
//   npm run build   # the examples import the package, `tokenwarden`, from dist/
//   TOKEN_SERVICE=https://tokens.internal.example.com SERVICE_NAME=inventory \
//   INTERNAL_API=https://inventory.internal.example.com npx tsx examples/custom-source.ts
//
// TOKEN_SERVICE  POST /mint { service } -> { token, ttl } (ttl in seconds); the call itself is
//                authenticated by the network (a mesh, mTLS), not by a secret of this script
// SERVICE_NAME   the service to mint a token for
// INTERNAL_API   the API's origin: the only origin the token is sent to
import { createWarden, customSource, isTokenWardenError, OAuthError } from 'tokenwarden';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Set ${name}; see the header of examples/custom-source.ts.`);
  return value;
}

const tokenService = required('TOKEN_SERVICE');
const internalApi = required('INTERNAL_API');

const source = customSource(async ({ signal, credentialId, current }) => {
  // `current` holds non-secret facts about the token being replaced, never the token.
  if (current)
    console.info(`${credentialId}: replacing a token that expires at ${current.expiresAt}`);
  const response = await fetch(new URL('/mint', tokenService), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ service: required('SERVICE_NAME') }),
    signal, // the credential's timeout, and close()
  });
  // 403: this service may no longer mint tokens. An OAuthError with invalid_grant moves the
  // credential to reauth-required instead of retrying with backoff.
  if (response.status === 403) throw new OAuthError('invalid_grant', 'no longer allowed to mint');
  if (!response.ok) throw new Error(`the token service answered ${response.status}`);
  const { token, ttl } = (await response.json()) as { token: string; ttl: number };
  // Validated like a token response: a missing or non-string token fails with ERR_SOURCE_FAILED
  // naming the field, never its value.
  return { accessToken: token, expiresIn: ttl };
});

const warden = createWarden();
const inventory = warden.register('inventory', { source, origins: [internalApi] });

try {
  const response = await inventory.fetch(new URL('/v1/items?limit=10', internalApi));
  console.info(`inventory: ${response.status}`);
  console.info(inventory.status()); // state, expiry, requests: no token
} catch (error) {
  if (!isTokenWardenError(error)) throw error;
  console.error(error.code, error.message);
} finally {
  await warden.close();
}
