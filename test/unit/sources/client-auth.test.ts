import { generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import type { TokenWardenError } from '../../../src/errors.js';
import {
  ClientSecret,
  createClientAuth,
  formUrlEncode,
  JWT_BEARER_ASSERTION_TYPE,
} from '../../../src/sources/client-auth.js';
import { clientCredentials } from '../../../src/sources/client-credentials.js';
import { ISSUER, makeContext, TOKEN_ENDPOINT, thrown, useMsw } from './support.js';

const server = useMsw();

const SECRET = 'SENTINEL %:+ é&=/?#x';
const CLIENT_ID = 'billing client:é';

interface Captured {
  method: string;
  headers: Headers;
  form: URLSearchParams;
}

/** Answers token requests and records each one. */
function capture(): Captured[] {
  const seen: Captured[] = [];
  server.use(
    http.post(TOKEN_ENDPOINT, async ({ request }) => {
      seen.push({
        method: request.method,
        headers: request.headers,
        form: new URLSearchParams(await request.text()),
      });
      return HttpResponse.json({ access_token: 'at', token_type: 'Bearer', expires_in: 60 });
    }),
  );
  return seen;
}

/** What an authorization server does with a Basic header (RFC 6749 §2.3.1). */
function decodeBasic(header: string): [string, string] {
  const decoded = atob(header.replace(/^Basic /, ''));
  const [id = '', secret = ''] = decoded.split(':');
  const formDecode = (value: string) => decodeURIComponent(value.replace(/\+/g, ' '));
  return [formDecode(id), formDecode(secret)];
}

function expectTokenRequestShape(request: Captured | undefined) {
  expect(request?.method).toBe('POST');
  expect(request?.headers.get('content-type')).toBe(
    'application/x-www-form-urlencoded;charset=UTF-8',
  );
  expect(request?.headers.get('accept')).toBe('application/json');
  expect(request?.form.get('grant_type')).toBe('client_credentials');
}

describe('client_secret_basic', () => {
  it('form-urlencodes id and secret before base64, so %:+ space and é authenticate', async () => {
    const seen = capture();
    await clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: CLIENT_ID,
      clientSecret: SECRET,
    }).obtain(makeContext());
    const [request] = seen;
    expectTokenRequestShape(request);
    const expected = `Basic ${btoa(`${formUrlEncode(CLIENT_ID)}:${formUrlEncode(SECRET)}`)}`;
    expect(request?.headers.get('authorization')).toBe(expected);
    expect(formUrlEncode(SECRET)).toBe('SENTINEL+%25%3A%2B+%C3%A9%26%3D%2F%3F%23x');
    expect(decodeBasic(expected)).toEqual([CLIENT_ID, SECRET]);
    expect(request?.form.has('client_secret')).toBe(false);
    expect(request?.form.has('client_id')).toBe(false);
  });
});

describe('client_secret_post', () => {
  it('puts client_id and client_secret in the body and sends no Authorization', async () => {
    const seen = capture();
    await clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: CLIENT_ID,
      clientSecret: SECRET,
      clientAuth: 'client_secret_post',
    }).obtain(makeContext());
    const [request] = seen;
    expectTokenRequestShape(request);
    expect(request?.form.get('client_id')).toBe(CLIENT_ID);
    expect(request?.form.get('client_secret')).toBe(SECRET);
    expect(request?.headers.has('authorization')).toBe(false);
  });
});

describe('none (public client)', () => {
  it('sends only client_id', async () => {
    const seen = capture();
    await clientCredentials({ tokenEndpoint: TOKEN_ENDPOINT, clientId: 'spa' }).obtain(
      makeContext(),
    );
    const [request] = seen;
    expectTokenRequestShape(request);
    expect([...(request?.form.keys() ?? [])].sort()).toEqual(['client_id', 'grant_type']);
    expect(request?.form.get('client_id')).toBe('spa');
    expect(request?.headers.has('authorization')).toBe(false);
  });
});

describe('private_key_jwt', () => {
  async function assertions(source: ReturnType<typeof clientCredentials>, times = 2) {
    const seen = capture();
    for (let i = 0; i < times; i += 1) await source.obtain(makeContext());
    for (const request of seen) {
      expectTokenRequestShape(request);
      expect(request.form.get('client_assertion_type')).toBe(JWT_BEARER_ASSERTION_TYPE);
      expect(request.headers.has('authorization')).toBe(false);
      expect(request.form.has('client_secret')).toBe(false);
    }
    return seen.map((request) => request.form.get('client_assertion') as string);
  }

  it('signs iss = sub = client id, aud = the issuer as one string, unique jti, exp - iat <= 60', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const source = clientCredentials({
      issuer: ISSUER,
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: CLIENT_ID,
      privateKey,
    });
    const [first, second] = await assertions(source);
    const verified = [];
    for (const assertion of [first, second]) {
      const { payload, protectedHeader } = await jwtVerify(assertion as string, publicKey, {
        issuer: CLIENT_ID,
        subject: CLIENT_ID,
        audience: ISSUER,
      });
      expect(protectedHeader.alg).toBe('ES256');
      expect(typeof payload.aud).toBe('string');
      expect(payload.aud).toBe(ISSUER);
      expect(typeof payload.jti).toBe('string');
      expect((payload.jti as string).length).toBeGreaterThanOrEqual(22);
      expect((payload.exp as number) - (payload.iat as number)).toBeLessThanOrEqual(60);
      expect(payload.exp).toBeGreaterThan(Date.now() / 1000);
      verified.push(payload);
    }
    expect(verified[0]?.jti).not.toBe(verified[1]?.jti);
  });

  it('uses the token endpoint as aud when no issuer is configured', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const [assertion] = await assertions(
      clientCredentials({ tokenEndpoint: TOKEN_ENDPOINT, clientId: 'c', privateKey }),
      1,
    );
    const { payload, protectedHeader } = await jwtVerify(assertion as string, publicKey, {
      audience: TOKEN_ENDPOINT,
    });
    expect(payload.aud).toBe(TOKEN_ENDPOINT);
    expect(protectedHeader.alg).toBe('RS256');
  });

  it('accepts a private JWK with its alg and kid', async () => {
    const { privateKey, publicKey } = await generateKeyPair('PS256', { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), alg: 'PS256', kid: 'key-1' };
    const [assertion] = await assertions(
      clientCredentials({
        issuer: ISSUER,
        tokenEndpoint: TOKEN_ENDPOINT,
        clientId: 'c',
        privateKey: jwk,
      }),
      1,
    );
    expect(decodeProtectedHeader(assertion as string)).toMatchObject({
      alg: 'PS256',
      kid: 'key-1',
    });
    await jwtVerify(assertion as string, publicKey, { audience: ISSUER });
  });

  it('accepts a Node KeyObject and infers ES384 from its curve', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const [assertion] = await assertions(
      clientCredentials({
        issuer: ISSUER,
        tokenEndpoint: TOKEN_ENDPOINT,
        clientId: 'c',
        privateKey,
      }),
      1,
    );
    expect(decodeProtectedHeader(assertion as string).alg).toBe('ES384');
    await jwtVerify(assertion as string, publicKey, { audience: ISSUER, issuer: 'c' });
  });

  it('refuses symmetric and public keys and symmetric algorithms', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const cases = [
      () => createClientAuth({ clientId: 'c', privateKey: publicKey }),
      () => createClientAuth({ clientId: 'c', privateKey: { kty: 'oct', k: 'AAAA' } }),
      () => createClientAuth({ clientId: 'c', privateKey, privateKeyAlgorithm: 'HS256' }),
      () => createClientAuth({ clientId: 'c', privateKey, privateKeyAlgorithm: 'none' }),
    ];
    const publicJwk = await exportJWK(publicKey);
    cases.push(() => createClientAuth({ clientId: 'c', privateKey: publicJwk }));
    for (const make of cases) {
      expect(thrown(make)).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    }
  });
});

describe('configuration and redaction', () => {
  it.each([
    [
      'both a secret and a key without clientAuth',
      { clientSecret: 's', privateKey: { kty: 'EC', crv: 'P-256', d: 'x', x: 'x', y: 'y' } },
    ],
    ['basic without a secret', { method: 'client_secret_basic' as const }],
    ['post without a secret', { method: 'client_secret_post' as const }],
    ['private_key_jwt without a key', { method: 'private_key_jwt' as const }],
    ['none with a secret', { method: 'none' as const, clientSecret: 's' }],
    ['an unknown method', { method: 'client_secret_jwt' as never, clientSecret: 's' }],
    ['an empty secret', { clientSecret: '' }],
  ])('%s → ERR_INVALID_ARGUMENT', (_, options) => {
    expect(thrown(() => createClientAuth({ clientId: 'c', ...options }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      name: 'InvalidArgumentError',
    });
  });

  it.each(['', 'a\r\nb', 42])('clientId %j → ERR_INVALID_ARGUMENT', (clientId) => {
    expect(thrown(() => createClientAuth({ clientId: clientId as string }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it('chooses the method from the material', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    expect(createClientAuth({ clientId: 'c', clientSecret: 's' }).method).toBe(
      'client_secret_basic',
    );
    expect(createClientAuth({ clientId: 'c', privateKey }).method).toBe('private_key_jwt');
    expect(createClientAuth({ clientId: 'c' }).method).toBe('none');
  });

  it('never prints the secret', () => {
    const secret = new ClientSecret(SECRET);
    const auth = createClientAuth({ clientId: 'c', clientSecret: secret });
    const source = clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: 'c',
      clientSecret: SECRET,
    });
    for (const text of [
      String(secret),
      JSON.stringify({ secret }),
      inspect(secret),
      inspect({ secret }, { depth: 5 }),
      String(auth),
      JSON.stringify(auth),
      inspect(auth, { showHidden: true, depth: 5 }),
      JSON.stringify(source),
      inspect(source, { showHidden: true, depth: 5 }),
      JSON.stringify(source.info()),
    ]) {
      expect(text).not.toContain('SENTINEL');
    }
    expect(String(secret)).toBe('[REDACTED]');
    expect(secret.reveal()).toBe(SECRET);
  });
});

describe('a secret never reaches an error', () => {
  it('private_key_jwt signing failure names the algorithm, not the key', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const source = clientCredentials({
      tokenEndpoint: TOKEN_ENDPOINT,
      clientId: 'c',
      privateKey,
      privateKeyAlgorithm: 'RS256',
    });
    capture();
    const error = (await source.obtain(makeContext()).catch((e) => e)) as TokenWardenError;
    expect(error.code).toBe('ERR_INVALID_ARGUMENT');
    expect(error.message).toContain('RS256');
  });
});
