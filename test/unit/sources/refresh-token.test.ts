import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { OAuthError, type TokenWardenError } from '../../../src/errors.js';
import { refreshToken } from '../../../src/sources/refresh-token.js';
import { TokenSet } from '../../../src/token.js';
import { makeContext, rejection, TOKEN_ENDPOINT, thrown, useMsw } from './support.js';

const server = useMsw();

/** A token endpoint that rotates: each redemption returns rt-(n+1), or none when told so. */
function rotatingServer(options: { rotate?: boolean; scope?: string } = {}) {
  const redeemed: URLSearchParams[] = [];
  server.use(
    http.post(TOKEN_ENDPOINT, async ({ request }) => {
      const form = new URLSearchParams(await request.text());
      redeemed.push(form);
      const body: Record<string, unknown> = {
        access_token: `at-${redeemed.length}`,
        token_type: 'Bearer',
        expires_in: 300,
      };
      if (options.rotate !== false) body['refresh_token'] = `rt-${redeemed.length}`;
      if (options.scope !== undefined) body['scope'] = options.scope;
      return HttpResponse.json(body);
    }),
  );
  return redeemed;
}

function source(extra: Partial<Parameters<typeof refreshToken>[0]> = {}) {
  return refreshToken({
    tokenEndpoint: TOKEN_ENDPOINT,
    clientId: 'app',
    refreshToken: 'rt-0',
    ...extra,
  });
}

describe('refreshToken', () => {
  it('redeems the configured token, then each rotated one replaces the last', async () => {
    const redeemed = rotatingServer();
    const rt = source();
    expect(rt.kind).toBe('refresh_token');
    let current: TokenSet | undefined;
    for (let i = 1; i <= 3; i += 1) {
      current = await rt.obtain(makeContext({ current }));
      expect(current.revealAccessToken()).toBe(`at-${i}`);
      expect(current.revealRefreshToken()).toBe(`rt-${i}`);
    }
    expect(redeemed.map((form) => form.get('refresh_token'))).toEqual(['rt-0', 'rt-1', 'rt-2']);
    expect(redeemed[0]?.get('grant_type')).toBe('refresh_token');
    expect(redeemed[0]?.get('client_id')).toBe('app');
  });

  it('never offers a rotated-away token again, even without a current set', async () => {
    const redeemed = rotatingServer();
    const rt = source();
    await rt.obtain(makeContext());
    await rt.obtain(makeContext());
    expect(redeemed.map((form) => form.get('refresh_token'))).toEqual(['rt-0', 'rt-1']);
  });

  it('keeps the old refresh token when the response carries none', async () => {
    rotatingServer({ rotate: false });
    const set = await source().obtain(makeContext());
    expect(set.revealAccessToken()).toBe('at-1');
    expect(set.revealRefreshToken()).toBe('rt-0');
    expect(set.hasRefreshToken).toBe(true);
  });

  it("prefers the credential's current refresh token over the configured one", async () => {
    const redeemed = rotatingServer();
    const current = new TokenSet({
      accessToken: 'old',
      refreshToken: 'rt-from-store',
      expiresAt: Date.now(),
      issuedAt: Date.now() - 1_000,
      scope: ['profile'],
    });
    const set = await source().obtain(makeContext({ current }));
    expect(redeemed[0]?.get('refresh_token')).toBe('rt-from-store');
    expect(redeemed[0]?.has('scope')).toBe(false);
    expect(set.scope).toEqual(['profile']);
  });

  it('sends scope only when configured, and records the granted scope', async () => {
    const redeemed = rotatingServer({ scope: 'read' });
    const set = await source({ scope: ['read'] }).obtain(makeContext());
    expect(redeemed[0]?.get('scope')).toBe('read');
    expect(set.scope).toEqual(['read']);
  });

  it('without any refresh token → ERR_REAUTH_REQUIRED and no request', async () => {
    const redeemed = rotatingServer();
    const error = (await rejection(
      refreshToken({ tokenEndpoint: TOKEN_ENDPOINT, clientId: 'app' }).obtain(makeContext()),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_REAUTH_REQUIRED');
    expect(error.credentialId).toBe('test-credential');
    expect(redeemed).toHaveLength(0);
  });

  it('invalid_grant surfaces as an OAuthError without the refresh token in it', async () => {
    server.use(
      http.post(TOKEN_ENDPOINT, () =>
        HttpResponse.json(
          { error: 'invalid_grant', error_description: 'Token was revoked' },
          { status: 400 },
        ),
      ),
    );
    const error = (await rejection(
      source({ refreshToken: 'SENTINEL-rt' }).obtain(makeContext()),
    )) as OAuthError;
    expect(error).toBeInstanceOf(OAuthError);
    expect(error.error).toBe('invalid_grant');
    expect(`${error.message}${JSON.stringify(error)}${error.stack}`).not.toContain('SENTINEL');
  });

  it.each([
    ['an empty refresh token', ''],
    ['a refresh token with CRLF', 'rt\r\nx'],
    ['a refresh token with a space', 'rt x'],
  ])('%s → ERR_INVALID_ARGUMENT', (_, value) => {
    expect(thrown(() => source({ refreshToken: value }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('does not print the refresh token', () => {
    const rt = source({ refreshToken: 'SENTINEL-rt' });
    expect(JSON.stringify(rt)).not.toContain('SENTINEL');
    expect(JSON.stringify(rt.info())).not.toContain('SENTINEL');
  });
});
