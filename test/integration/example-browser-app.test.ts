// Smoke test of examples/browser-app in real Chromium: starts the example's servers in-process
// (startBrowserApp from serve.ts), signs in through oidc-provider's development login and
// consent pages, waits for a successful DPoP-bound API call and for a refresh of the 4-second
// access token, checks that a screenshot of the page is not blank (its pixels, decoded in the
// page's own canvas, are not all one colour), then opens a second tab, which shares the sign-in
// and the refreshes: every refresh token is redeemed once. The harness is
// test/browser/harness.ts.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiCall } from '../../examples/browser-app/app.js';
import { type BrowserApp, startBrowserApp } from '../../examples/browser-app/serve.js';
import {
  type BrowserProfile,
  type BrowserSession,
  createProfile,
  launchChromium,
} from '../browser/harness.js';
import { runExclusively } from '../support/exclusive.js';
import { findLeaks } from '../support/sentinel.js';

runExclusively();

/** Access-token lifetime, seconds. */
const TTL = 4;

interface AppWindow {
  app: {
    status(): { state: string; requests: number; dpop?: { thumbprint: string } };
    metrics(): { credentials: Record<string, { ok: number; refreshes: Record<string, number> }> };
    lastCall(): ApiCall | undefined;
  };
}

let app: BrowserApp;
let profile: BrowserProfile;
let browser: BrowserSession;

beforeAll(async () => {
  [app, profile] = await Promise.all([startBrowserApp({ tokenLifetime: TTL }), createProfile()]);
  // The page is the app's own, not a test page with `window.tw`: wait for its `window.app`.
  browser = await launchChromium(profile, app.url, {
    ready: waitForApp,
    viewport: { width: 1100, height: 800 },
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await profile?.remove();
});

async function waitForApp(page: Page): Promise<void> {
  await page.waitForFunction(() => 'app' in window, undefined, { timeout: 15_000 });
}

function appState(page: Page) {
  return page.evaluate(() => {
    const { app: view } = window as unknown as AppWindow;
    return { status: view.status(), metrics: view.metrics(), lastCall: view.lastCall() };
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Plays the user at the authorization server's development pages, back to the app. */
async function signIn(page: Page): Promise<void> {
  await page.click('#login');
  const callback = app.url.replace(/\/$/, '/callback');
  for (let step = 0; step < 6; step++) {
    await page.waitForURL(
      (url) => url.href.startsWith(callback) || url.href.startsWith(`${app.op.issuer}/`),
      { timeout: 10_000 },
    );
    if (page.url().startsWith(callback) || page.url() === app.url) return;
    await page.waitForSelector('form button[type=submit]', { timeout: 10_000 });
    const before = page.url();
    if ((await page.locator('input[name=login]').count()) > 0) {
      await page.fill('input[name=login]', 'ada');
      await page.fill('input[name=password]', 'any password');
    }
    await Promise.all([
      page.waitForURL((url) => url.href !== before, { timeout: 10_000 }),
      page.click('form button[type=submit]'),
    ]);
  }
  throw new Error(`no callback after the sign-in pages; at ${page.url()}`);
}

/** How many pixels of a PNG differ from its top-left pixel, decoded by the page's canvas. */
function inkedPixels(page: Page, png: Buffer): Promise<{ width: number; inked: number }> {
  return page.evaluate(async (base64) => {
    const image = new Image();
    image.src = `data:image/png;base64,${base64}`;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext('2d') as CanvasRenderingContext2D;
    context.drawImage(image, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let inked = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (
        data[i] !== data[0] ||
        data[i + 1] !== data[1] ||
        data[i + 2] !== data[2] ||
        data[i + 3] !== data[3]
      ) {
        inked++;
      }
    }
    return { width: canvas.width, inked };
  }, png.toString('base64'));
}

describe('examples/browser-app in Chromium', () => {
  it('signs in, calls the DPoP-protected API, refreshes, renders, and shares it with a second tab', async () => {
    const page = browser.page;
    expect((await appState(page)).status.state).not.toBe('valid');
    await signIn(page);
    await page.waitForURL(app.url, { timeout: 10_000 });
    await waitForApp(page);

    // A successful API call through the DPoP-bound credential.
    const call = await until(
      'a successful API call',
      async () => {
        const { lastCall } = await appState(page);
        return lastCall?.status === 200 ? lastCall : undefined;
      },
      10_000,
    );
    expect(call.body).toMatchObject({ ok: true });
    const { status } = await appState(page);
    expect(status.state).toBe('valid');
    expect(status.dpop?.thumbprint).toMatch(/^[\w-]{43}$/);

    // A refresh of the short-lived token (the keepFresh timer, or a call in the refresh window),
    // then another successful call with the new token.
    const refreshed = await until(
      'a refresh',
      async () => {
        const grants = app.op.tokenRequests.filter((r) => r.grantType === 'refresh_token');
        return grants.some((r) => r.status === 200) ? grants : undefined;
      },
      (TTL + 6) * 1000,
    );
    const callsBefore = app.apiCalls.length;
    await until(
      'a call after the refresh',
      async () =>
        app.apiCalls.slice(callsBefore).some((c) => c.status === 200) ? true : undefined,
      6_000,
    );
    expect(refreshed.every((r) => r.status === 200)).toBe(true);
    const { metrics } = await appState(page);
    const me = metrics.credentials['me'];
    expect(me?.ok).toBeGreaterThanOrEqual(2);
    // Every token the API saw was DPoP-bound, and none was refused for its proof.
    expect(app.apiCalls.filter((c) => c.status !== 200)).toEqual([]);
    // The token requests were DPoP-bound too: the authorization server saw a proof on each.
    const tokenPosts = app.op.requests.filter((r) => r.method === 'POST' && r.url === '/token');
    expect(tokenPosts.length).toBeGreaterThanOrEqual(2);
    expect(tokenPosts.every((r) => typeof r.headers['dpop'] === 'string')).toBe(true);

    // The page shows it: the live view is rendered, and a screenshot is not blank.
    await page.waitForFunction(
      () => document.getElementById('state')?.textContent === 'valid',
      undefined,
      { timeout: 5_000 },
    );
    const png = await page.screenshot({ fullPage: true });
    const { width, inked } = await inkedPixels(page, png);
    expect(width).toBeGreaterThan(0);
    expect(inked).toBeGreaterThan(5_000);

    // A second tab shares the sign-in and the refreshes: it signs nobody in, and across both
    // tabs every refresh token is redeemed once (a second redemption of a rotated token would
    // fail with invalid_grant).
    const second = await browser.context.newPage();
    second.on('pageerror', (error) => browser.console.push(`pageerror: ${error.message}`));
    await second.goto(app.url);
    await waitForApp(second);
    await until(
      'a successful call from the second tab',
      async () => ((await appState(second)).lastCall?.status === 200 ? true : undefined),
      10_000,
    );
    const refreshesBefore = app.op.tokenCounts('refresh_token').total;
    await until(
      'a refresh while both tabs are open',
      async () =>
        app.op.tokenCounts('refresh_token').total > refreshesBefore + 1 ? true : undefined,
      (2 * TTL + 6) * 1000,
    );
    expect(app.op.tokenCounts('authorization_code')).toMatchObject({ total: 1, ok: 1 });
    const redeemed = app.op.tokenRequests
      .filter((r) => r.grantType === 'refresh_token')
      .map((r) => r.sentRefreshToken);
    expect(app.op.tokenCounts('refresh_token').failed).toBe(0);
    expect(new Set(redeemed).size).toBe(redeemed.length);
    expect(app.apiCalls.filter((c) => c.status !== 200)).toEqual([]);
    await second.close();

    // Nothing the page printed or showed carries a token.
    const tokens = app.op.tokenRequests.flatMap((r) =>
      [r.issuedAccessToken, r.issuedRefreshToken].filter((t): t is string => t !== undefined),
    );
    expect(tokens.length).toBeGreaterThan(0);
    const shown = await page.evaluate(() => document.body.textContent ?? '');
    expect(findLeaks([shown, ...browser.console], tokens)).toEqual([]);
    expect(browser.console.filter((line) => line.startsWith('pageerror'))).toEqual([]);
  }, 60_000);
});
