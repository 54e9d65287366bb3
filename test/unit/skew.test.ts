import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCredentials, createWarden } from '../../src/index.js';

const AUTH = 'https://auth.example.test';
const HOUR = 3_600_000;

function unsignedJwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'at+jwt' })}.${part(claims)}.c2lnbmF0dXJl`;
}

const server = setupServer(
  // A server whose clock runs an hour ahead, issuing JWTs valid for 10 minutes of its time
  // and stating no expires_in.
  http.post(`${AUTH}/token`, () => {
    const serverNow = Date.now() + HOUR;
    return HttpResponse.json(
      {
        access_token: unsignedJwt({ exp: Math.floor(serverNow / 1000) + 600 }),
        token_type: 'Bearer',
      },
      { headers: { date: new Date(serverNow).toUTCString() } },
    );
  }),
);
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

describe('clock skew', () => {
  it("corrects a JWT's exp by the offset learned from the token response's Date header", async () => {
    const warden = createWarden();
    const credential = warden.register('skewed', {
      source: clientCredentials({
        tokenEndpoint: `${AUTH}/token`,
        clientId: 'c',
        clientSecret: 's',
      }),
      origins: ['https://api.example.test'],
    });
    const token = await credential.getToken();
    const lifetime = token.expiresAt - Date.now();
    // Ten minutes on our clock; without the correction it would be an hour and ten minutes.
    expect(lifetime).toBeGreaterThan(590_000);
    expect(lifetime).toBeLessThanOrEqual(600_000);
    expect(credential.status().refreshAt).toBeLessThan(token.expiresAt);
    await warden.close();
  });
});
