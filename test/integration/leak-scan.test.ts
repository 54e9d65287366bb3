// A sentinel leak scan over a whole session against a real authorization server: every byte the
// resource server and the authorization server received, every event, log line and error is
// searched for the client secret and for every token the server issued, in raw, URL-encoded,
// form-encoded, base64 and base64url form (SECURITY-CHECKLIST 6, 8, 9, 38, 40).
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWarden,
  isTokenWardenError,
  type LogRecord,
  type Warden,
  type WardenEvents,
} from '../../src/index.js';
import {
  basicClient,
  clientCredential,
  refreshCredential,
  useOidcServer,
} from '../support/harness.js';
import { BASIC_CLIENT_SECRET, type RecordedRequest } from '../support/oidc-server.js';

/** Encodings under which a secret could hide in captured text. */
function encodedForms(secret: string): string[] {
  const formEncoded = encodeURIComponent(secret).replace(/%20/g, '+');
  const forms = new Set([secret, encodeURIComponent(secret), formEncoded]);
  for (const value of new Set([secret, formEncoded])) {
    // base64 depends on alignment: encode at each of the three offsets and keep the middle,
    // which is the same wherever the value sits in a larger encoded string.
    for (let offset = 0; offset < 3; offset++) {
      const bytes = Buffer.concat([Buffer.alloc(offset), Buffer.from(value)]);
      for (const encoding of ['base64', 'base64url'] as const) {
        const encoded = bytes.toString(encoding).replace(/=+$/, '');
        const middle = encoded.slice(offset === 0 ? 0 : 4, -4);
        if (middle.length >= 8) forms.add(middle);
      }
    }
  }
  return [...forms];
}

interface Finding {
  readonly secret: string;
  readonly where: string;
}

function scan(haystacks: ReadonlyMap<string, string>, secrets: ReadonlyMap<string, string>) {
  const findings: Finding[] = [];
  for (const [secretName, secret] of secrets) {
    const forms = encodedForms(secret);
    for (const [where, text] of haystacks) {
      if (forms.some((form) => text.includes(form))) findings.push({ secret: secretName, where });
    }
  }
  return findings;
}

function describeRequest(request: RecordedRequest): string {
  return JSON.stringify({ ...request, at: undefined });
}

function serialise(value: unknown): string {
  const parts = [inspect(value, { depth: 10, showHidden: true, getters: true })];
  try {
    parts.push(JSON.stringify(value) ?? '');
  } catch {
    parts.push('[unserialisable]');
  }
  if (value instanceof Error) {
    parts.push(String(value), value.stack ?? '', serialise(value.cause));
  }
  return parts.join('\n');
}

const server = useOidcServer();
let warden: Warden;
const events: { name: string; payload: unknown }[] = [];
const logs: LogRecord[] = [];
const errors: unknown[] = [];

const EVENT_NAMES: (keyof WardenEvents)[] = [
  'refresh',
  'refresh-error',
  'reauth-required',
  'revoke',
  'blocked',
  'tamper',
  'store-error',
  'anomaly',
];

async function attempt<T>(run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (error) {
    errors.push(error);
    return undefined;
  }
}

beforeAll(async () => {
  const op = server();
  warden = createWarden({ logger: (record) => logs.push(record) });
  for (const name of EVENT_NAMES) {
    warden.on(name, (payload: unknown) => events.push({ name, payload }));
  }

  const rs = op.resource.origin;
  const basic = clientCredential(op, warden, 'basic', basicClient(op));
  const post = clientCredential(op, warden, 'post', {
    clientId: 'post-client',
    clientSecret: BASIC_CLIENT_SECRET,
    clientAuth: 'client_secret_post',
  });
  const minted = await op.mintRefreshToken();
  const rotating = refreshCredential(op, warden, 'rotating', minted, {
    maxForcedRefreshesPerMinute: 100,
  });
  const wrong = clientCredential(op, warden, 'wrong-secret', {
    clientId: op.clients.basic.clientId,
    clientSecret: `${BASIC_CLIENT_SECRET}-wrong`,
  });

  // Ordinary traffic, rotations, a revoked token (401 → refresh → retry), a revoked grant.
  for (const cred of [basic, post, rotating]) {
    await attempt(() => cred.fetch(`${rs}/v1/ping`, { method: 'POST', body: 'payload' }));
    await attempt(() =>
      cred
        .ky({ prefix: `${rs}/v1/` })
        .get('items?page=2')
        .json(),
    );
  }
  for (let i = 0; i < 3; i++) await attempt(() => rotating.getToken({ forceRefresh: true }));
  const basicToken = await basic.getToken();
  await op.revokeAccessToken(basicToken.reveal());
  await attempt(() => basic.fetch(`${rs}/v1/after-revocation`));
  await attempt(() => wrong.fetch(`${rs}/v1/ping`));

  // Attempts the policy must stop: a foreign origin, a token in the URL, a cross-origin redirect.
  const current = (await basic.getToken()).reveal();
  await attempt(() => basic.fetch(`${op.issuer}/collect`));
  await attempt(() => basic.fetch(`${rs}/v1/search?q=${current}`));
  await attempt(() => basic.fetch(`${rs}/v1/search?q=${encodeURIComponent(current)}`));
  await attempt(() => basic.fetch(`${rs}/v1/${current}/x`));
  await attempt(() =>
    basic.fetch(`${rs}/redirect?to=${encodeURIComponent(`${op.issuer}/collect`)}`),
  );
  await attempt(() => basic.fetch(`${rs}/redirect?to=${encodeURIComponent(`${rs}/v1/same`)}`));

  // Inspect everything a careless app might log.
  for (const cred of [basic, post, rotating, wrong]) {
    logs.push({ level: 'info', message: 'app log', fields: { cred: serialise(cred) } });
    logs.push({ level: 'info', message: 'status', fields: { status: cred.status() } });
    const token = await attempt(() => cred.getToken());
    if (token) logs.push({ level: 'info', message: 'token', fields: { token: serialise(token) } });
  }
  logs.push({ level: 'info', message: 'warden', fields: { warden: serialise(warden) } });

  await op.revokeGrant(minted.grantId);
  await attempt(() => rotating.fetch(`${rs}/v1/after-grant-revocation`));
  await attempt(() => rotating.getToken());
});

// Registered after useOidcServer: after-hooks run as a stack, so the warden closes first.
afterAll(async () => {
  await warden?.close();
});

function issuedTokens(): Map<string, string> {
  const tokens = new Map<string, string>();
  server().tokenRequests.forEach((record, i) => {
    if (record.issuedAccessToken) tokens.set(`access token #${i}`, record.issuedAccessToken);
    if (record.issuedRefreshToken) tokens.set(`refresh token #${i}`, record.issuedRefreshToken);
  });
  return tokens;
}

describe('sentinel leak scan over a session against oidc-provider', () => {
  it('exercised what it meant to', () => {
    const op = server();
    expect(op.tokenCounts('client_credentials').ok).toBeGreaterThanOrEqual(3);
    expect(op.tokenCounts('refresh_token').ok).toBeGreaterThanOrEqual(4);
    expect(op.resource.statuses).toContain(401);
    expect(events.some((e) => e.name === 'blocked')).toBe(true);
    expect(events.some((e) => e.name === 'reauth-required')).toBe(true);
    expect(errors.length).toBeGreaterThanOrEqual(4);
    expect(errors.every((e) => isTokenWardenError(e))).toBe(true);
    expect(issuedTokens().size).toBeGreaterThanOrEqual(8);
  });

  it('never sends a client secret to the resource server', () => {
    const op = server();
    const haystacks = new Map(
      op.resource.requests.map((r, i) => [`resource request #${i}`, describeRequest(r)]),
    );
    const secrets = new Map([
      ['client secret', BASIC_CLIENT_SECRET],
      ['refresh client secret', op.clients.refresh.clientSecret],
    ]);
    expect(scan(haystacks, secrets)).toEqual([]);
  });

  it('sends tokens to the resource server only in the Authorization header', () => {
    const op = server();
    const haystacks = new Map<string, string>();
    op.resource.requests.forEach((r, i) => {
      const { authorization: _authorization, ...headers } = r.headers;
      haystacks.set(`resource request #${i} url`, r.url);
      haystacks.set(`resource request #${i} other headers`, JSON.stringify(headers));
      haystacks.set(`resource request #${i} body`, r.body);
    });
    expect(scan(haystacks, issuedTokens())).toEqual([]);
    const refreshTokens = new Map(
      [...issuedTokens()].filter(([name]) => name.startsWith('refresh')),
    );
    const whole = new Map(
      op.resource.requests.map((r, i) => [`resource request #${i}`, describeRequest(r)]),
    );
    expect(scan(whole, refreshTokens)).toEqual([]);
  });

  it('puts no token in any URL of any server', () => {
    const op = server();
    const urls = new Map([
      ...op.requests.map((r, i) => [`authorization server request #${i}`, r.url] as const),
      ...op.resource.requests.map((r, i) => [`resource request #${i}`, r.url] as const),
    ]);
    expect(scan(urls, issuedTokens())).toEqual([]);
  });

  it('sends no access token to the foreign origin (the authorization server)', () => {
    const op = server();
    const accessTokens = new Map([...issuedTokens()].filter(([name]) => name.startsWith('access')));
    const foreign = op.requests.filter((r) => !r.url.startsWith('/token'));
    // A cross-origin redirect may be followed, but never with a credential.
    for (const request of op.requests) {
      expect(request.headers['authorization'] ?? '').not.toMatch(/^Bearer /i);
    }
    const haystacks = new Map(
      foreign.map((r, i) => [`authorization server request #${i}`, describeRequest(r)]),
    );
    expect(scan(haystacks, accessTokens)).toEqual([]);
  });

  it('puts no secret in events, log lines or errors', () => {
    const op = server();
    const secrets = new Map([['client secret', BASIC_CLIENT_SECRET], ...issuedTokens()]);
    secrets.set('refresh client secret', op.clients.refresh.clientSecret);
    const haystacks = new Map<string, string>();
    for (const [i, e] of events.entries()) {
      haystacks.set(`event #${i} (${e.name})`, serialise(e.payload));
    }
    for (const [i, l] of logs.entries())
      haystacks.set(`log line #${i} (${l.message})`, serialise(l));
    for (const [i, e] of errors.entries()) haystacks.set(`error #${i}`, serialise(e));
    expect(scan(haystacks, secrets)).toEqual([]);
  });
});
