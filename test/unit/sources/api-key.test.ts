import { inspect } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import type { TokenWardenError } from '../../../src/errors.js';
import { createSkewClock } from '../../../src/internal/clock.js';
import { apiKey } from '../../../src/sources/api-key.js';
import { makeContext, rejection, thrown } from './support.js';

const NOW = 1_700_000_000_000;
const clock = createSkewClock({ now: () => NOW });
const context = (overrides = {}) => makeContext({ clock, ...overrides });
const YEAR = 365.25 * 86_400_000;

describe('apiKey', () => {
  it('sends the key as Bearer in Authorization by default, and never expires', async () => {
    const source = apiKey({ key: 'SENTINEL-key' });
    expect(source.kind).toBe('api_key');
    expect(source.header).toEqual({ name: 'Authorization', scheme: 'Bearer' });
    const set = await source.obtain(context());
    expect(set.revealAccessToken()).toBe('SENTINEL-key');
    expect(set.expirySource).toBe('explicit');
    expect(set.expiresAt - NOW).toBeGreaterThan(99 * YEAR);
  });

  it('sends the raw key in a custom header, or with a chosen scheme', () => {
    expect(apiKey({ key: 'k', header: 'X-API-Key' }).header).toEqual({
      name: 'X-API-Key',
      scheme: null,
    });
    expect(apiKey({ key: 'k', header: 'X-API-Key', scheme: 'Token' }).header).toEqual({
      name: 'X-API-Key',
      scheme: 'Token',
    });
    expect(apiKey({ key: 'k', scheme: null }).header).toEqual({
      name: 'Authorization',
      scheme: null,
    });
    expect(apiKey({ key: 'k', header: 'authorization' }).header?.scheme).toBe('Bearer');
  });

  it('honours expiresAt as a Date or epoch milliseconds', async () => {
    const at = NOW + 60_000;
    expect((await apiKey({ key: 'k', expiresAt: new Date(at) }).obtain(context())).expiresAt).toBe(
      at,
    );
    expect((await apiKey({ key: 'k', expiresAt: at }).obtain(context())).expiresAt).toBe(at);
  });

  it('calls rotate when the credential asks again for its expiring key', async () => {
    const rotate = vi.fn(async () => ({ key: 'key-2', expiresAt: NOW + 3_600_000 }));
    const source = apiKey({ key: 'key-1', expiresAt: NOW + 30_000, rotate });
    const first = await source.obtain(context());
    expect(first.revealAccessToken()).toBe('key-1');
    expect(rotate).not.toHaveBeenCalled();

    const second = await source.obtain(context({ current: first }));
    expect(rotate).toHaveBeenCalledTimes(1);
    const [[received]] = rotate.mock.calls as unknown as [
      [{ current: unknown; signal: AbortSignal }],
    ];
    expect(received.signal).toBeInstanceOf(AbortSignal);
    expect(JSON.stringify(received.current)).not.toContain('key-1');
    expect(second.revealAccessToken()).toBe('key-2');
    expect(second.expiresAt).toBe(NOW + 3_600_000);

    // The rotated key is what the source hands out from now on.
    expect((await source.obtain(context())).revealAccessToken()).toBe('key-2');
  });

  it('rotates at once when the configured key has already expired; a string result never expires', async () => {
    const rotate = vi.fn(async () => 'fresh');
    const set = await apiKey({ key: 'stale', expiresAt: NOW - 1, rotate }).obtain(context());
    expect(rotate).toHaveBeenCalledTimes(1);
    expect(set.revealAccessToken()).toBe('fresh');
    expect(set.expiresAt - NOW).toBeGreaterThan(99 * YEAR);
  });

  it('an expired key without rotate → ERR_SOURCE_FAILED', async () => {
    const error = (await rejection(
      apiKey({ key: 'SENTINEL', expiresAt: NOW - 1 }).obtain(context()),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_SOURCE_FAILED');
    expect(error.message).not.toContain('SENTINEL');
  });

  it.each([
    ['throws', async () => Promise.reject(new Error('vault down'))],
    ['returns nothing', async () => undefined],
    ['returns an empty key', async () => ''],
    ['returns a key with CRLF', async () => 'k\r\nX-Evil: 1'],
    ['returns { key: 42 }', async () => ({ key: 42 })],
    ['returns a bad expiry', async () => ({ key: 'k', expiresAt: 'tomorrow' })],
    ['returns an expired key', async () => ({ key: 'k', expiresAt: NOW - 1 })],
  ])('a rotate callback that %s → ERR_SOURCE_FAILED', async (_, rotate) => {
    const source = apiKey({ key: 'old', expiresAt: NOW - 1, rotate: rotate as never });
    const error = (await rejection(source.obtain(context()))) as TokenWardenError;
    expect(error.code).toBe('ERR_SOURCE_FAILED');
  });

  it('wraps a thrown error as the cause', async () => {
    const cause = new Error('vault down');
    const source = apiKey({ key: 'old', expiresAt: NOW - 1, rotate: () => Promise.reject(cause) });
    expect(((await rejection(source.obtain(context()))) as TokenWardenError).cause).toBe(cause);
  });

  it('a rotate callback that hangs → ERR_TIMEOUT', async () => {
    const source = apiKey({ key: 'old', expiresAt: NOW - 1, rotate: () => new Promise(() => {}) });
    const error = (await rejection(source.obtain(context({ timeoutMs: 30 })))) as TokenWardenError;
    expect(error.code).toBe('ERR_TIMEOUT');
  });

  it.each([
    ['an empty key', { key: '' }],
    ['a key with CR LF', { key: 'abc\r\nX-Evil: 1' }],
    ['a key with a NUL', { key: 'abc\u0000' }],
    ['a key with a space', { key: 'abc def' }],
    ['a non-string key', { key: 42 }],
    ['a header with a space', { key: 'k', header: 'X API' }],
    ['a header with a colon', { key: 'k', header: 'X-Key:' }],
    ['an empty header', { key: 'k', header: '' }],
    ['a reserved header', { key: 'k', header: 'Content-Length' }],
    ['a scheme with a space', { key: 'k', scheme: 'Bearer x' }],
    ['an invalid expiresAt', { key: 'k', expiresAt: new Date('nope') }],
    ['a rotate that is not a function', { key: 'k', rotate: 'later' }],
  ])('%s → ERR_INVALID_ARGUMENT', (_, options) => {
    const error = thrown(() => apiKey(options as never)) as TokenWardenError;
    expect(error.code).toBe('ERR_INVALID_ARGUMENT');
    expect(error.message).not.toContain('X-Evil');
  });

  it('never prints the key', () => {
    const source = apiKey({ key: 'SENTINEL-key', header: 'X-API-Key' });
    expect(JSON.stringify(source)).not.toContain('SENTINEL');
    expect(inspect(source, { showHidden: true, depth: 5 })).not.toContain('SENTINEL');
    expect(JSON.stringify(source.info())).not.toContain('SENTINEL');
  });
});
