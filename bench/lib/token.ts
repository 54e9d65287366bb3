// Tokens shaped and sized like real access tokens: an RS256-signed JWT of about 900 characters
// (header, a payload with the usual claims and scopes, a 256-byte signature), as Auth0, Entra ID
// and Keycloak issue. Cost that grows with the token's length shows up as it would in production.
import { randomBytes } from 'node:crypto';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWT-shaped access token for `client`, unique by `n`, expiring at `exp` (epoch seconds). */
export function jwtLikeToken(client: string, n: number, exp: number): string {
  const header = b64({ alg: 'RS256', typ: 'at+jwt', kid: 'bench-key-1' });
  const payload = b64({
    iss: 'https://auth.example.test/',
    sub: `${client}@clients`,
    aud: 'https://api.example.test/',
    iat: exp - 3_600,
    exp,
    jti: `${client}-${n}-${randomBytes(8).toString('hex')}`,
    client_id: client,
    scope: 'invoices:read invoices:write customers:read customers:write reports:read',
    azp: client,
    gty: 'client-credentials',
    permissions: ['invoices:read', 'invoices:write', 'customers:read', 'customers:write'],
  });
  return `${header}.${payload}.${randomBytes(256).toString('base64url')}`;
}
