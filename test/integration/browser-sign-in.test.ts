// Browser sign-in with authorizationCode() in real Chromium against the real oidc-provider
// fixture, whose development login and consent pages the test fills in: the round trip with
// PKCE, the token set sealed in IndexedDB, an API call to the resource server, a refresh with
// rotation once the 5-second access token expired, and logout (revoked at the server, signed out
// in a second tab, the server session ended). A forged state, a replayed callback, a mismatched
// iss and a bad nonce fail with their codes. Every URL the browser requested or navigated to is
// recorded: no PKCE verifier and no token is in any of them. The page is
// test/browser/sign-in-page.ts, the harness test/browser/harness.ts.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserFixture,
  type BrowserSession,
  type BrowserTab,
  inWindow,
  openTab,
  startBrowserFixture,
} from '../browser/harness.js';
import type { Outcome, SignInSetup, SignInWindow } from '../browser/sign-in-page.js';
import { runExclusively } from '../support/exclusive.js';
import { type OidcServer, startOidcServer } from '../support/oidc-server.js';
import { findLeaks } from '../support/sentinel.js';

runExclusively();

const CLIENT = 'sign-in-client';
/** Access-token lifetime, seconds. */
const TTL = 5;
const USER = 'ada';

let op: OidcServer;
let fixture: BrowserFixture;
let browser: BrowserSession;
let config: SignInSetup;
/** Every URL the browser requested (any tab, any frame), and every frame navigation. */
const urls: string[] = [];

beforeAll(async () => {
  fixture = await startBrowserFixture('sign-in-page.ts');
  op = await startOidcServer({
    browserClients: [{ clientId: CLIENT, origin: fixture.origin }],
    devInteractions: true,
    ttl: { accessToken: TTL },
  });
  config = { issuer: op.issuer, clientId: CLIENT, resource: op.resource.origin, name: 'sign-in' };
  browser = await fixture.launch();
  browser.context.on('request', (request) => urls.push(request.url()));
  const track = (page: Page) => page.on('framenavigated', (frame) => urls.push(frame.url()));
  track(browser.page);
  browser.context.on('page', track);
  await setup(browser.page);
}, 60_000);

afterAll(async () => {
  await fixture?.close();
  await op?.close();
});

type Api = SignInWindow['tw'];

/** Runs `fn` against `window.tw`; `fn` travels as source text and may only use its arguments. */
const inPage = <T, A>(page: Page, fn: (tw: Api, arg: A) => T, arg: A) => inWindow(page, fn, arg);

/** Waits for the page script of a freshly loaded page, and sets the app up. */
async function setup(page: Page): Promise<void> {
  await page.waitForFunction(() => 'tw' in window, undefined, { timeout: 10_000 });
  await inPage(page, (tw, c) => tw.setup(c), config);
}

/** Starts an action that navigates away; the evaluation may die with its page, which is fine. */
async function leaving(page: Page, fn: (tw: Api, arg: boolean) => unknown, arg = false) {
  const result = await inPage(page, fn, arg).catch((error: unknown) => {
    if (/context was destroyed|navigation/i.test(String(error))) return undefined;
    throw error;
  });
  if (result && typeof result === 'object' && 'ok' in result && result.ok === false) {
    throw new Error(`the page failed: ${JSON.stringify(result)}`);
  }
}

/**
 * Plays the user at the authorization server: fills oidc-provider's development login form
 * (when there is no session yet) and confirms the consent page, until the browser is back on
 * the callback page.
 */
async function signInAtServer(page: Page): Promise<string> {
  const callback = `${fixture.origin}/callback`;
  for (let step = 0; step < 6; step++) {
    await page.waitForURL(
      (url) => url.href.startsWith(callback) || url.href.startsWith(`${op.issuer}/interaction/`),
      {
        timeout: 10_000,
      },
    );
    if (page.url().startsWith(callback)) {
      await setup(page);
      return page.url();
    }
    await page.waitForSelector('form button[type=submit]', { timeout: 10_000 });
    const before = page.url();
    if ((await page.locator('input[name=login]').count()) > 0) {
      await page.fill('input[name=login]', USER);
      await page.fill('input[name=password]', 'any password');
    }
    await Promise.all([
      page.waitForURL((url) => url.href !== before, { timeout: 10_000 }),
      page.click('form button[type=submit]'),
    ]);
  }
  throw new Error(`no callback after the sign-in pages; at ${page.url()}`);
}

/** login() in the page, then the server's pages; returns the callback URL. */
async function roundTrip(page: Page): Promise<string> {
  await leaving(page, (tw) => tw.login({ prompt: 'consent', appState: { returnTo: '/inbox' } }));
  return signInAtServer(page);
}

function expectFailure<T>(outcome: Outcome<T>, code: string): void {
  expect(outcome.ok).toBe(false);
  if (!outcome.ok) expect(outcome.error.code).toBe(code);
}

const codeGrants = () => op.tokenRequests.filter((r) => r.grantType === 'authorization_code');
const refreshGrants = () => op.tokenRequests.filter((r) => r.grantType === 'refresh_token');

/** The PKCE verifiers the server received, from the token requests' bodies. */
function verifiers(): string[] {
  return op.requests
    .filter((r) => r.method === 'POST' && r.url.split('?')[0] === '/token')
    .map((r) => new URLSearchParams(r.body).get('code_verifier'))
    .filter((v): v is string => v !== null);
}

/** Every access and refresh token the server issued. */
function issuedTokens(): string[] {
  return op.tokenRequests.flatMap((r) =>
    [r.issuedAccessToken, r.issuedRefreshToken].filter((t): t is string => t !== undefined),
  );
}

let firstCallback = '';

describe('authorizationCode in Chromium against oidc-provider', () => {
  it('signs in with PKCE, seals the tokens in IndexedDB, calls the API and refreshes with rotation', async () => {
    const page = browser.page;
    expect(await inPage(page, (tw) => tw.status().state, null)).toBe('empty');
    firstCallback = await roundTrip(page);
    const callback = new URL(firstCallback);
    expect(callback.searchParams.get('iss')).toBe(op.issuer);
    expect(await inPage(page, (tw) => tw.isRedirect(), null)).toBe(true);

    const signedIn = await inPage(page, (tw) => tw.handleRedirect(), null);
    expect(signedIn).toMatchObject({
      ok: true,
      value: {
        claims: { iss: op.issuer, sub: USER, aud: CLIENT },
        appState: { returnTo: '/inbox' },
      },
    });
    expect(await inPage(page, (tw) => tw.sessionStorage(), null)).toEqual({});
    expect(await inPage(page, (tw) => tw.status().state, null)).toBe('valid');

    // The authorization request carried the S256 challenge; the exchange, the verifier.
    const authorize = urls.find((u) => u.startsWith(`${op.issuer}/auth?`));
    expect(authorize).toBeDefined();
    const params = new URL(authorize as string).searchParams;
    expect(params.get('code_challenge_method')).toBe('S256');
    expect(params.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params.get('prompt')).toBe('consent');
    expect(codeGrants().map((r) => [r.status, r.clientId])).toEqual([[200, CLIENT]]);
    expect(verifiers()).toHaveLength(1);
    const [signIn] = codeGrants();
    expect(signIn?.issuedRefreshToken).toBeDefined();

    // Sealed at rest: the record is there, no token readable in any IndexedDB byte.
    const dump = await inPage(page, (tw) => tw.dumpIndexedDb(), null);
    expect(dump.some((line) => line.startsWith('sign-in/records/me: '))).toBe(true);
    expect(findLeaks(dump, issuedTokens())).toEqual([]);

    // An API call with the access token, and nothing else (never the ID token).
    const call = await inPage(page, (tw) => tw.call('/me'), null);
    expect(call).toMatchObject({
      ok: true,
      value: { status: 200, body: { sub: USER, clientId: CLIENT } },
    });
    const apiRequest = op.resource.requests.at(-1);
    expect(apiRequest?.headers['authorization']).toBe(`Bearer ${signIn?.issuedAccessToken}`);
    expect(JSON.stringify(op.resource.requests)).not.toMatch(/eyJ[\w-]+\.eyJ/);

    // Past the access token's expiry: one refresh, redeeming the sign-in's refresh token, rotated.
    const expiresAt = (await inPage(page, (tw) => tw.status().expiresAt, null)) as number;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 200));
    const after = await inPage(page, (tw) => tw.call('/me'), null);
    expect(after).toMatchObject({ ok: true, value: { status: 200 } });
    const refreshes = refreshGrants();
    expect(refreshes.map((r) => [r.status, r.sentRefreshToken])).toEqual([
      [200, signIn?.issuedRefreshToken],
    ]);
    expect(refreshes[0]?.issuedRefreshToken).toBeDefined();
    expect(refreshes[0]?.issuedRefreshToken).not.toBe(signIn?.issuedRefreshToken);
    expect(op.resource.requests.at(-1)?.headers['authorization']).toBe(
      `Bearer ${refreshes[0]?.issuedAccessToken}`,
    );
    const events = await inPage(page, (tw) => tw.events(), null);
    // The sign-in installed the first set ('initial', not rotated); the expired token's
    // replacement was awaited by the call ('initial' too), and rotated the refresh token.
    expect(
      events
        .filter((e) => e.event === 'refresh')
        .map((e) => [e.payload['reason'], e.payload['rotated']]),
    ).toEqual([
      ['initial', false],
      [expect.stringMatching(/^(initial|proactive)$/), true],
    ]);
    expect(findLeaks(await inPage(page, (tw) => tw.dumpIndexedDb(), null), issuedTokens())).toEqual(
      [],
    );
  }, 60_000);

  it('rejects the replayed callback and a forged state with ERR_STATE_MISMATCH', async () => {
    const page = browser.page;
    const exchanges = codeGrants().length;
    await page.goto(firstCallback);
    await setup(page);
    expectFailure(await inPage(page, (tw) => tw.handleRedirect(), null), 'ERR_STATE_MISMATCH');

    const forged = new URL(`${fixture.origin}/callback`);
    forged.searchParams.set('code', new URL(firstCallback).searchParams.get('code') as string);
    forged.searchParams.set('state', 'forged-state-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    forged.searchParams.set('iss', op.issuer);
    await page.goto(forged.href);
    await setup(page);
    expectFailure(await inPage(page, (tw) => tw.handleRedirect(), null), 'ERR_STATE_MISMATCH');
    expect(codeGrants()).toHaveLength(exchanges);
    // Still signed in with the stored set.
    expect(await inPage(page, (tw) => tw.call('/me'), null)).toMatchObject({
      ok: true,
      value: { status: 200 },
    });
  }, 30_000);

  it('logs out: revoked at the server, signed out in another tab, session ended', async () => {
    const page = browser.page;
    const other: BrowserTab = await openTab(browser.context, fixture.origin);
    await setup(other.page);
    expect(await inPage(other.page, (tw) => tw.call('/me'), null)).toMatchObject({
      ok: true,
      value: { status: 200 },
    });
    const held = refreshGrants().at(-1);
    await leaving(page, (tw, endSession) => tw.logout(endSession), true);

    // The other tab hears of it at once through the store.
    const deadline = Date.now() + 3_000;
    while ((await inPage(other.page, (tw) => tw.status().state, null)) !== 'reauth-required') {
      if (Date.now() > deadline) throw new Error('the other tab was not signed out');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expectFailure(await inPage(other.page, (tw) => tw.call('/me'), null), 'ERR_REAUTH_REQUIRED');
    // Revoked at the server (RFC 7009), refresh token and access token.
    expect((await op.introspect(held?.issuedRefreshToken as string))['active']).toBe(false);
    expect((await op.introspect(held?.issuedAccessToken as string))['active']).toBe(false);
    expect(
      findLeaks(await inPage(other.page, (tw) => tw.dumpIndexedDb(), null), issuedTokens()),
    ).toEqual([]);
    expect(
      (await inPage(other.page, (tw) => tw.dumpIndexedDb(), null)).some((line) =>
        line.startsWith('sign-in/records/me: '),
      ),
    ).toBe(false);

    // The end-session endpoint asks the user to confirm, then returns to the app.
    await page.waitForURL((url) => url.href.startsWith(`${op.issuer}/session/end`), {
      timeout: 10_000,
    });
    const endSession = urls.find((u) => u.startsWith(`${op.issuer}/session/end?`)) as string;
    expect(Object.fromEntries(new URL(endSession).searchParams)).toEqual({
      client_id: CLIENT,
      post_logout_redirect_uri: `${fixture.origin}/`,
    });
    await Promise.all([
      page.waitForURL(`${fixture.origin}/`, { timeout: 10_000 }),
      page.click('button[name=logout]'),
    ]);
    await setup(page);
    expect(await inPage(page, (tw) => tw.status().state, null)).toBe('empty');
    await other.page.close();
  }, 30_000);

  it('rejects a response with a mismatched iss, and an ID token with a bad nonce', async () => {
    const page = browser.page;
    // The session was ended: the login form comes again.
    const callback = await roundTrip(page);
    const tampered = new URL(callback);
    tampered.searchParams.set('iss', 'http://127.0.0.1:9/evil');
    const exchanges = codeGrants().length;
    expectFailure(
      await inPage(page, (tw, url) => tw.handleRedirect(url), tampered.href),
      'ERR_ISSUER_MISMATCH',
    );
    expect(codeGrants()).toHaveLength(exchanges);
    expect(await inPage(page, (tw) => tw.sessionStorage(), null)).toEqual({});

    await page.goto(fixture.origin);
    await setup(page);
    await roundTrip(page);
    await inPage(page, (tw) => tw.swapNonce('not-the-nonce-that-was-sent'), null);
    const result = await inPage(page, (tw) => tw.handleRedirect(), null);
    expectFailure(result, 'ERR_ID_TOKEN_INVALID');
    expect(JSON.stringify(result)).toContain('nonce');
    // Exchanged at the server, but nothing was stored or used.
    expect(codeGrants()).toHaveLength(exchanges + 1);
    expect(await inPage(page, (tw) => tw.status().state, null)).not.toBe('valid');
    expect(
      (await inPage(page, (tw) => tw.dumpIndexedDb(), null)).some((line) =>
        line.startsWith('sign-in/records/me: '),
      ),
    ).toBe(false);
  }, 40_000);

  it('never put a PKCE verifier or a token in any URL', () => {
    const all = [
      ...urls,
      ...op.requests.map((r) => r.url),
      ...op.resource.requests.map((r) => r.url),
    ];
    // The sign-in refused for its iss never reached the token endpoint.
    expect(verifiers()).toHaveLength(2);
    expect(urls.filter((u) => u.includes('code_challenge=')).length).toBeGreaterThanOrEqual(3);
    expect(findLeaks(all, [...verifiers(), ...issuedTokens()])).toEqual([]);
    const errors = browser.console.filter((line) => line.startsWith('pageerror'));
    expect(errors).toEqual([]);
    // Nor in anything the page printed.
    expect(findLeaks(browser.console, [...verifiers(), ...issuedTokens()])).toEqual([]);
  });
});
