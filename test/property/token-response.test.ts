import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTokenWardenError } from '../../src/errors.js';
import { parseTokenResponse } from '../../src/sources/token-response.js';
import { TokenSet } from '../../src/token.js';

const RECEIVED_AT = 1_700_000_000_000;
const OPTIONS = { receivedAt: RECEIVED_AT, defaultLifetimeMs: 3_600_000, requestedScope: ['read'] };
const RUNS = 1_000;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u009f]/;

/** The invariant: a validated token set, or a coded error — never anything else. */
function check(status: number, body: string): void {
  let set: unknown;
  try {
    set = parseTokenResponse(status, body, OPTIONS);
  } catch (error) {
    if (!isTokenWardenError(error)) throw new Error(`uncoded error: ${String(error)}`);
    return;
  }
  expect(set).toBeInstanceOf(TokenSet);
  const tokens = set as TokenSet;
  expect(status).toBe(200);
  const accessToken = tokens.revealAccessToken();
  expect(accessToken.length).toBeGreaterThan(0);
  expect(CONTROL_OR_SPACE.test(accessToken)).toBe(false);
  const refresh = tokens.revealRefreshToken();
  if (refresh !== undefined) expect(CONTROL_OR_SPACE.test(refresh)).toBe(false);
  expect(Number.isFinite(tokens.expiresAt)).toBe(true);
  expect(tokens.expiresAt).toBeGreaterThan(RECEIVED_AT);
  expect(tokens.expiresAt - RECEIVED_AT).toBeLessThanOrEqual(10 * 365.25 * 86_400_000);
  for (const scope of tokens.scope ?? []) expect(CONTROL_OR_SPACE.test(scope)).toBe(false);
}

const status = fc.oneof(
  fc.constant(200),
  fc.integer({ min: 100, max: 599 }),
  fc.integer(),
  fc.constantFrom(Number.NaN, 200.5, -200),
);

// Values each member could plausibly (or implausibly) take.
const anyValue = fc.oneof(
  fc.jsonValue(),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.integer(),
  fc.double(),
  fc.constantFrom('', ' ', '\r\n', 'Bearer', 'bearer', '3600', '3600s', '-1', '0', '1e3', null),
);

const validResponse = {
  access_token: 'abc.DEF-123_~+/=',
  token_type: 'Bearer',
  expires_in: 3600,
  refresh_token: 'r1',
  scope: 'read write',
};
const members = Object.keys(validResponse) as (keyof typeof validResponse)[];

/** A valid response with some members replaced, removed or added. */
const mutatedResponse = fc
  .tuple(
    fc.dictionary(fc.constantFrom(...members), anyValue, { maxKeys: 3 }),
    fc.subarray(members),
    fc.dictionary(
      fc.constantFrom('__proto__', 'constructor', 'prototype', 'error', 'id_token', 'x'),
      anyValue,
    ),
  )
  .map(([replaced, removed, added]) => {
    const body: Record<string, unknown> = { ...validResponse, ...replaced };
    for (const key of removed) delete body[key];
    for (const [key, value] of Object.entries(added)) {
      Object.defineProperty(body, key, {
        value,
        enumerable: true,
        configurable: true,
        writable: true,
      });
    }
    return JSON.stringify(body);
  });

/** Valid JSON text with a random cut, insertion or character flip. */
const mangledText = fc
  .tuple(
    fc.nat(200),
    fc.string({ unit: 'binary', maxLength: 4 }),
    fc.constantFrom('cut', 'insert', 'replace'),
  )
  .map(([position, insert, how]) => {
    const text = JSON.stringify(validResponse);
    const at = position % (text.length + 1);
    if (how === 'cut') return text.slice(0, at);
    if (how === 'insert') return text.slice(0, at) + insert + text.slice(at);
    return text.slice(0, at) + insert + text.slice(at + insert.length);
  });

describe('parseTokenResponse (property)', () => {
  it('arbitrary JSON values with arbitrary statuses', () => {
    fc.assert(
      fc.property(status, fc.jsonValue(), (code, value) =>
        check(code, JSON.stringify(value) ?? ''),
      ),
      { numRuns: RUNS },
    );
  });

  it('arbitrary strings', () => {
    fc.assert(
      fc.property(status, fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json()), check),
      { numRuns: RUNS },
    );
  });

  it('mutated valid responses', () => {
    fc.assert(fc.property(status, mutatedResponse, check), { numRuns: RUNS });
    fc.assert(fc.property(fc.constant(200), mutatedResponse, check), { numRuns: RUNS });
  });

  it('mangled JSON text', () => {
    fc.assert(fc.property(fc.constant(200), mangledText, check), { numRuns: RUNS });
  });

  it('error bodies with arbitrary members', () => {
    const errorBody = fc
      .record(
        { error: anyValue, error_description: anyValue, error_uri: anyValue },
        { requiredKeys: [] },
      )
      .map((value) => JSON.stringify(value));
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), errorBody, (code, body) => {
        check(code, body);
        try {
          parseTokenResponse(code, body, OPTIONS);
        } catch (error) {
          const description = (error as { errorDescription?: string }).errorDescription;
          if (description !== undefined) {
            expect(Array.from(description).length).toBeLessThanOrEqual(256);
            // biome-ignore lint/suspicious/noControlCharactersInRegex: the property under test.
            expect(/[\u0000-\u001f\u007f-\u009f]/.test(description)).toBe(false);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('the valid response itself passes, so the properties are not vacuous', () => {
    expect(parseTokenResponse(200, JSON.stringify(validResponse), OPTIONS)).toBeInstanceOf(
      TokenSet,
    );
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});
