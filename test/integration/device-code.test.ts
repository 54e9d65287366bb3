// The device authorization grant (RFC 8628) against a real oidc-provider: the test plays the
// user, approving the user code through the server's own pages over HTTP, while the credential
// polls; the tokens then live in a real, encrypted file store and refresh with rotation.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DeviceCodePrompt,
  deviceCode,
  introspect,
  type LogRecord,
  type TokenWardenError,
} from '../../src/index.js';
import { fileStore } from '../../src/node/index.js';
import { approveDevice } from '../support/device-approval.js';
import { collect, useOidcServer, useWarden } from '../support/harness.js';
import { DEVICE_CLIENT_ID, type OidcServer } from '../support/oidc-server.js';
import { findLeaks } from '../support/sentinel.js';

const server = useOidcServer({ devInteractions: true });
const newWarden = useWarden();
const KEY = randomBytes(32).toString('base64url');
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** The device-code polls the server answered since `start`. */
function devicePolls(op: OidcServer, start: number) {
  return op.tokenRequests.slice(start).filter((r) => r.grantType === DEVICE_GRANT);
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('deviceCode against oidc-provider', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tw-device-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function register(op: OidcServer, path: string, onPrompt: (prompt: DeviceCodePrompt) => void) {
    const logs: LogRecord[] = [];
    const warden = newWarden({
      store: fileStore({ path, key: KEY }),
      logger: (record) => logs.push(record),
    });
    const events = {
      refresh: collect(warden, 'refresh'),
      errors: collect(warden, 'refresh-error'),
      reauth: collect(warden, 'reauth-required'),
    };
    const source = deviceCode({
      issuer: op.issuer,
      clientId: DEVICE_CLIENT_ID,
      scope: 'openid offline_access',
      onPrompt,
    });
    const cred = warden.register('cli', { source, origins: [op.resource.origin] });
    return { warden, cred, source, logs, events };
  }

  it('signs in with the user code approved through the server pages, calls the API, refreshes with rotation, and keeps the tokens in the file store', async () => {
    const op = server();
    const start = op.tokenRequests.length;
    const path = join(dir, 'approved.json');
    const prompts: DeviceCodePrompt[] = [];
    const approvals: Promise<void>[] = [];
    const { cred, source, logs, events } = register(op, path, (prompt) => {
      prompts.push(prompt);
      // The user, on their phone, meanwhile; slower than the first poll.
      approvals.push(
        (async () => {
          await until(() =>
            devicePolls(op, start).some((r) => r.error === 'authorization_pending'),
          );
          await approveDevice(prompt, { login: 'alice' });
        })(),
      );
    });

    const res = await cred.fetch(`${op.resource.origin}/v1/me`);
    await Promise.all(approvals);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, clientId: DEVICE_CLIENT_ID, sub: 'alice' });

    expect(prompts).toHaveLength(1);
    const prompt = prompts[0] as DeviceCodePrompt;
    expect(prompt.verificationUri).toBe(`${op.issuer}/device`);
    expect(prompt.verificationUriComplete).toContain('user_code=');
    expect(prompt.interval).toBe(5);
    expect(Object.keys(prompt).sort()).toEqual(
      ['expiresAt', 'interval', 'userCode', 'verificationUri', 'verificationUriComplete'].sort(),
    );

    // Polled with the device code every 5 s until approved: pending answers, then the tokens.
    const polls = devicePolls(op, start);
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.at(-1)?.status).toBe(200);
    expect(polls.slice(0, -1).every((r) => r.error === 'authorization_pending')).toBe(true);
    const times = op.requests
      .filter((r) => r.url === '/token' && r.body.includes('device_code='))
      .map((r) => r.at);
    for (let i = 1; i < times.length; i++) {
      expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(4_900);
    }
    const issued = polls.at(-1)?.issuedRefreshToken as string;
    expect(issued).toBeTruthy();
    const deviceCodes = op.requests
      .filter((r) => r.url === '/token')
      .map((r) => new URLSearchParams(r.body).get('device_code'))
      .filter((code): code is string => code !== null);
    expect(new Set(deviceCodes).size).toBe(1);

    // The server sees an active token for alice.
    const token = await cred.getToken();
    const active = await introspect(source, token.reveal());
    expect(active).toMatchObject({ active: true, sub: 'alice', clientId: DEVICE_CLIENT_ID });

    // Refresh with rotation: the refresh token of the sign-in is redeemed once, then replaced.
    const rotated = await cred.getToken({ forceRefresh: true });
    expect(rotated.reveal()).not.toBe(token.reveal());
    const refreshes = op.tokenRequests.slice(start).filter((r) => r.grantType === 'refresh_token');
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]).toMatchObject({ status: 200, sentRefreshToken: issued });
    const latest = refreshes[0]?.issuedRefreshToken as string;
    expect(latest).not.toBe(issued);
    expect((await cred.fetch(`${op.resource.origin}/v1/me`)).status).toBe(200);

    // The rotated set is what the store holds, and the file has no token in the clear.
    const stored = await fileStore({ path, key: KEY }).get('cli');
    expect(stored?.tokens.revealRefreshToken()).toBe(latest);
    expect(stored?.tokens.revealAccessToken()).toBe(rotated.reveal());
    const file = await readFile(path, 'utf8');
    expect(findLeaks([file], [latest, issued, rotated.reveal(), token.reveal()])).toEqual([]);

    expect(events.errors).toEqual([]);
    expect(events.refresh.map((e) => e.rotated)).toEqual([false, true]);
    expect(cred.status()).toMatchObject({ state: 'valid', source: { kind: 'device_code' } });
    // The device code and the tokens appear in no event, log or status.
    const secrets = [...deviceCodes, issued, latest, token.reveal(), rotated.reveal()];
    expect(findLeaks([...logs, ...events.refresh, prompt, cred.status(), source], secrets)).toEqual(
      [],
    );
  }, 40_000);

  it('a new process signs in no more: it refreshes from the stored set', async () => {
    const op = server();
    const path = join(dir, 'reuse.json');
    const first = register(op, path, (prompt) => void approveDevice(prompt));
    await first.cred.getToken();
    await first.warden.close();

    const start = op.tokenRequests.length;
    const prompts: DeviceCodePrompt[] = [];
    const second = register(op, path, (prompt) => prompts.push(prompt));
    const res = await second.cred.fetch(`${op.resource.origin}/v1/me`, {});
    expect(res.status).toBe(200);
    await second.cred.getToken({ forceRefresh: true });
    expect(prompts).toEqual([]);
    const grants = op.tokenRequests.slice(start).map((r) => r.grantType);
    expect(grants).toEqual(['refresh_token']);
  }, 40_000);

  it('a user who aborts at the code confirmation ends the sign-in with ERR_ACCESS_DENIED', async () => {
    const op = server();
    const start = op.tokenRequests.length;
    const approvals: Promise<void>[] = [];
    const { cred, events, logs } = register(op, join(dir, 'declined.json'), (prompt) => {
      approvals.push(approveDevice(prompt, { decline: true, via: 'complete-uri' }));
    });
    const error = await cred.getToken().then(
      () => undefined,
      (caught: unknown) => caught as TokenWardenError,
    );
    await Promise.all(approvals);
    expect(error?.code).toBe('ERR_ACCESS_DENIED');
    expect(devicePolls(op, start).at(-1)?.error).toBe('access_denied');
    expect(events.errors.map((e) => e.code)).toEqual(['ERR_ACCESS_DENIED']);
    const deviceCodes = op.requests
      .filter((r) => r.url === '/token')
      .map((r) => new URLSearchParams(r.body).get('device_code'))
      .filter((code): code is string => code !== null);
    expect(findLeaks([error, ...logs, ...events.errors], deviceCodes)).toEqual([]);
  }, 40_000);
});
