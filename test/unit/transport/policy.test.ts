import { afterEach, describe, expect, it, vi } from 'vitest';
import { isTokenWardenError } from '../../../src/errors.js';
import {
  isOriginAllowed,
  originOf,
  parseWwwAuthenticate,
  redirectBecomesGet,
  resolveRequestUrl,
  tokenNeedles,
  unauthorizedCallsForRefresh,
  urlContainsToken,
} from '../../../src/transport/policy.js';

const TOKEN = 'tw-policy-token+Zq8/f3kP1xV';

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

describe('parseWwwAuthenticate', () => {
  it('parses several challenges with quoted strings, escapes and commas', () => {
    const challenges = parseWwwAuthenticate(
      'Bearer realm="a, \\"b\\"", error="invalid_token", error_description="The token expired", Basic realm="x"',
    );
    expect(challenges).toHaveLength(2);
    expect(challenges[0]?.scheme).toBe('bearer');
    expect(challenges[0]?.params.get('realm')).toBe('a, "b"');
    expect(challenges[0]?.params.get('error')).toBe('invalid_token');
    expect(challenges[0]?.params.get('error_description')).toBe('The token expired');
    expect(challenges[1]?.scheme).toBe('basic');
    expect(challenges[1]?.params.get('realm')).toBe('x');
  });

  it('reads token68 values, bare schemes, unquoted values and odd spacing', () => {
    const challenges = parseWwwAuthenticate('Negotiate abc123==, DPoP  algs = "ES256"  ,Bearer');
    expect(challenges.map((c) => c.scheme)).toEqual(['negotiate', 'dpop', 'bearer']);
    expect(challenges[0]?.token68).toBe('abc123==');
    expect(challenges[1]?.params.get('algs')).toBe('ES256');
    expect(challenges[2]?.params.size).toBe(0);
  });

  it('lower-cases parameter names, keeps the first duplicate and ignores junk', () => {
    const [challenge] = parseWwwAuthenticate('BEARER ERROR=invalid_token, error=other, @@ ;');
    expect(challenge?.params.get('error')).toBe('invalid_token');
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate(null)).toEqual([]);
    expect(() => parseWwwAuthenticate('Bearer realm="unterminated')).not.toThrow();
    expect(() => parseWwwAuthenticate('=,=,"",\\')).not.toThrow();
  });

  it('does not pollute prototypes', () => {
    const [challenge] = parseWwwAuthenticate('Bearer __proto__="x", constructor="y"');
    expect(challenge?.params.get('__proto__')).toBe('x');
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });
});

describe('unauthorizedCallsForRefresh', () => {
  it.each([
    [null, true],
    ['Bearer', true],
    ['Bearer realm="api"', true],
    ['Bearer error="invalid_token"', true],
    ['DPoP error="invalid_token"', true],
    ['Bearer error="insufficient_scope"', false],
    ['Bearer error="invalid_request"', false],
    ['DPoP error="use_dpop_nonce"', false],
    ['Basic realm="x", Bearer error="insufficient_scope"', false],
    ['Basic realm="x"', true],
    ['ApiKey error="invalid_key"', false],
  ])('%s → %s', (header, expected) => {
    expect(unauthorizedCallsForRefresh(header)).toBe(expected);
  });
});

describe('tokenNeedles and urlContainsToken', () => {
  it('finds the token raw, URL-encoded, base64 and base64url, anywhere in the URL', () => {
    const urls = [
      `https://api.example.com/a/${TOKEN}`,
      `https://api.example.com/a?t=${encodeURIComponent(TOKEN)}`,
      `https://api.example.com/a?t=${encodeURIComponent(encodeURIComponent(TOKEN))}`,
      `https://api.example.com/a#${TOKEN}`,
      `https://api.example.com/a?b=${b64(TOKEN)}`,
      `https://api.example.com/a?b=${encodeURIComponent(b64(TOKEN))}`,
      `https://api.example.com/${b64url(TOKEN)}`,
      `https://api.example.com/a?basic=${b64url(`user:${TOKEN}`)}`,
      `https://api.example.com/a?basic=${b64url(`us:${TOKEN}`)}`,
      `https://api.example.com/a?basic=${b64url(`u:${TOKEN}`)}`,
      `https://user:${encodeURIComponent(TOKEN)}@api.example.com/`,
    ];
    for (const url of urls) expect(urlContainsToken(new URL(url), TOKEN), url).toBe(true);
  });

  it('finds a token placed in a host name, which the URL parser lower-cases', () => {
    expect(urlContainsToken(new URL('https://AbCdEfGh1234.example.com/'), 'AbCdEfGh1234')).toBe(
      true,
    );
  });

  it('does not flag a URL without the token', () => {
    expect(urlContainsToken(new URL('https://api.example.com/v1/items?q=1'), TOKEN)).toBe(false);
    expect(urlContainsToken(new URL('https://api.example.com/%E0%A4%A'), TOKEN)).toBe(false);
    expect(tokenNeedles('')).toEqual([]);
  });

  it('checks the URL as the caller wrote it too', () => {
    const url = new URL('https://api.example.com/a');
    expect(urlContainsToken(url, TOKEN, `https://api.example.com/a?x=${TOKEN}`)).toBe(true);
  });
});

describe('origins and URLs', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('compares origins exactly: scheme, host and port', () => {
    const origins = new Set(['https://api.example.com']);
    expect(isOriginAllowed(new URL('https://api.example.com:443/x'), origins)).toBe(true);
    expect(isOriginAllowed(new URL('https://API.example.com/x'), origins)).toBe(true);
    expect(isOriginAllowed(new URL('http://api.example.com/x'), origins)).toBe(false);
    expect(isOriginAllowed(new URL('https://api.example.com:8443/x'), origins)).toBe(false);
    expect(isOriginAllowed(new URL('https://api.example.com.evil.net/x'), origins)).toBe(false);
    expect(isOriginAllowed(new URL('data:text/plain,hi'), new Set(['null']))).toBe(false);
  });

  it('originOf normalises a prefix to its origin', () => {
    expect(originOf('https://billing.example.com/v1/')).toBe('https://billing.example.com');
    expect(originOf(new URL('https://billing.example.com:443/'))).toBe(
      'https://billing.example.com',
    );
    expect(originOf('http://127.0.0.1:8080/api')).toBe('http://127.0.0.1:8080');
  });

  it.each([
    ['/v1/'],
    ['not a url'],
    ['ftp://files.example.com/'],
    ['https://user:pw@api.example.com/'],
    [42 as unknown as string],
  ])('originOf(%s) throws ERR_INVALID_ARGUMENT', (value) => {
    try {
      originOf(value);
      expect.unreachable();
    } catch (error) {
      expect(isTokenWardenError(error) && error.code).toBe('ERR_INVALID_ARGUMENT');
    }
  });

  it('refuses relative URLs in Node and resolves them where a base URL exists', () => {
    try {
      resolveRequestUrl('/v1/ping?token=x');
      expect.unreachable();
    } catch (error) {
      expect(isTokenWardenError(error) && error.code).toBe('ERR_INVALID_ARGUMENT');
      expect((error as Error).message).not.toContain('token=x');
    }
    vi.stubGlobal('location', { href: 'https://app.example.com/page/' });
    expect(resolveRequestUrl('/v1/ping').href).toBe('https://app.example.com/v1/ping');
    expect(originOf('/api/')).toBe('https://app.example.com');
  });
});

describe('redirectBecomesGet', () => {
  it.each([
    [303, 'POST', true],
    [303, 'PUT', true],
    [303, 'GET', false],
    [303, 'HEAD', false],
    [301, 'POST', true],
    [302, 'POST', true],
    [302, 'PUT', false],
    [307, 'POST', false],
    [308, 'POST', false],
  ])('%i %s → %s', (status, method, expected) => {
    expect(redirectBecomesGet(status, method)).toBe(expected);
  });
});
