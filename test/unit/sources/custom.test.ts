import { base64url } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { OAuthError, type TokenWardenError } from '../../../src/errors.js';
import { createSkewClock } from '../../../src/internal/clock.js';
import { customSource } from '../../../src/sources/custom.js';
import { TokenSet } from '../../../src/token.js';
import { makeContext, rejection, thrown } from './support.js';

const NOW = 1_700_000_000_000;
const clock = createSkewClock({ now: () => NOW });
const context = (overrides = {}) => makeContext({ clock, ...overrides });
const SENTINEL = 'SENTINEL-custom-token';

describe('customSource', () => {
  it('builds a token set from expiresIn', async () => {
    const source = customSource(async () => ({
      accessToken: SENTINEL,
      expiresIn: 300,
      scope: 'a b',
    }));
    expect(source.kind).toBe('custom');
    expect(source.header).toBeUndefined();
    const set = await source.obtain(context());
    expect(set.revealAccessToken()).toBe(SENTINEL);
    expect(set.expiresAt).toBe(NOW + 300_000);
    expect(set.expirySource).toBe('expires_in');
    expect(set.tokenType).toBe('Bearer');
    expect(set.scope).toEqual(['a', 'b']);
  });

  it('accepts expiresAt, a token type, a refresh token and a scope array; sync functions too', async () => {
    const set = await customSource(() => ({
      accessToken: 't',
      expiresAt: new Date(NOW + 60_000),
      tokenType: 'MAC',
      refreshToken: 'r',
      scope: ['x'],
    })).obtain(context());
    expect(set.expiresAt).toBe(NOW + 60_000);
    expect(set.expirySource).toBe('explicit');
    expect(set.tokenType).toBe('MAC');
    expect(set.revealRefreshToken()).toBe('r');
    expect(set.scope).toEqual(['x']);
  });

  it('falls back to a JWT exp, then to the default lifetime', async () => {
    const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
    const jwt = `${encode({ alg: 'ES256' })}.${encode({ exp: NOW / 1000 + 600 })}.c2ln`;
    const fromJwt = await customSource(async () => ({ accessToken: jwt })).obtain(context());
    expect(fromJwt.expirySource).toBe('jwt');
    expect(fromJwt.expiresAt).toBe(NOW + 600_000);
    const opaque = await customSource(async () => ({ accessToken: 'opaque' })).obtain(
      context({ defaultLifetimeMs: 90_000 }),
    );
    expect(opaque.expirySource).toBe('default');
    expect(opaque.expiresAt).toBe(NOW + 90_000);
  });

  it('passes signal, credential id and the non-secret facts of the current set', async () => {
    const fn = vi.fn(async () => ({ accessToken: 'next', expiresIn: 60 }));
    const current = new TokenSet({
      accessToken: SENTINEL,
      refreshToken: SENTINEL,
      expiresAt: NOW,
      issuedAt: NOW - 1,
    });
    await customSource(fn).obtain(context({ current }));
    const [[received]] = fn.mock.calls as unknown as [[Record<string, unknown>]];
    expect(received['signal']).toBeInstanceOf(AbortSignal);
    expect(received['credentialId']).toBe('test-credential');
    expect(received['current']).toMatchObject({ hasRefreshToken: true, expiresAt: NOW });
    expect(JSON.stringify(received['current'])).not.toContain('SENTINEL');
  });

  it('takes a header and scheme like apiKey', () => {
    expect(
      customSource(async () => ({ accessToken: 't' }), { header: 'X-Internal' }).header,
    ).toEqual({
      name: 'X-Internal',
      scheme: null,
    });
    expect(
      thrown(() => customSource(async () => ({ accessToken: 't' }), { header: 'bad header' })),
    ).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
    expect(thrown(() => customSource('nope' as never))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it.each([
    ['null', null],
    ['a string', SENTINEL],
    ['an array', [SENTINEL]],
    ['an empty object', {}],
    ['an empty accessToken', { accessToken: '' }],
    ['an accessToken with CRLF', { accessToken: `${SENTINEL}\r\nX-Evil: 1` }],
    ['a numeric accessToken', { accessToken: 42 }],
    ['a negative expiresIn', { accessToken: SENTINEL, expiresIn: -1 }],
    ['a zero expiresIn', { accessToken: SENTINEL, expiresIn: 0 }],
    ['a string expiresIn', { accessToken: SENTINEL, expiresIn: '3600' }],
    ['a NaN expiresIn', { accessToken: SENTINEL, expiresIn: Number.NaN }],
    ['an absurd expiresIn', { accessToken: SENTINEL, expiresIn: 1e12 }],
    [
      'both expiresIn and expiresAt',
      { accessToken: SENTINEL, expiresIn: 60, expiresAt: NOW + 60_000 },
    ],
    ['a past expiresAt', { accessToken: SENTINEL, expiresAt: NOW - 1 }],
    ['an invalid Date', { accessToken: SENTINEL, expiresAt: new Date('x') }],
    ['an empty refreshToken', { accessToken: SENTINEL, refreshToken: '' }],
    ['a tokenType with a space', { accessToken: SENTINEL, tokenType: 'Bearer x' }],
    ['a scope of numbers', { accessToken: SENTINEL, scope: [1, 2] }],
    ['a scope object', { accessToken: SENTINEL, scope: { a: 1 } }],
  ])('a result that is %s → ERR_SOURCE_FAILED without the token', async (_, result) => {
    const error = (await rejection(
      customSource(async () => result as never).obtain(context()),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_SOURCE_FAILED');
    expect(error.credentialId).toBe('test-credential');
    expect(`${error.message}${JSON.stringify(error)}`).not.toContain('SENTINEL');
  });

  it('wraps a thrown error with it as the cause; passes tokenwarden errors through', async () => {
    const cause = new Error('token service down');
    const wrapped = (await rejection(
      customSource(async () => {
        throw cause;
      }).obtain(context()),
    )) as TokenWardenError;
    expect(wrapped.code).toBe('ERR_SOURCE_FAILED');
    expect(wrapped.cause).toBe(cause);

    const reauth = new OAuthError('invalid_grant', undefined, { status: 400 });
    expect(
      await rejection(
        customSource(async () => {
          throw reauth;
        }).obtain(context()),
      ),
    ).toBe(reauth);
  });

  it('a function that hangs → ERR_TIMEOUT; an abort → ERR_ABORTED', async () => {
    const hang = customSource(() => new Promise(() => {}));
    expect(
      ((await rejection(hang.obtain(context({ timeoutMs: 30 })))) as TokenWardenError).code,
    ).toBe('ERR_TIMEOUT');
    const controller = new AbortController();
    const pending = rejection(hang.obtain(context({ signal: controller.signal })));
    controller.abort();
    expect(((await pending) as TokenWardenError).code).toBe('ERR_ABORTED');
  });
});
