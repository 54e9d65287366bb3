// Five tabs of one origin in real Chromium share one credential through indexedDbStore, against
// the real oidc-provider fixture with refresh-token rotation (a reused refresh token answers
// invalid_grant and revokes the grant). Access tokens live 3 s, so each tab wants a refresh every
// second and a half while it calls the resource server in a loop. Shown: one token request per
// rotation across all tabs (the refresh tokens the server received form one chain, none
// presented twice), zero invalid_grant, the other tabs take over each new token ('shared');
// forget() in one tab signs out all five at once; and the same with navigator.locks deleted, on
// the lease lock in IndexedDB. The harness is test/browser/harness.ts, the page
// test/browser/tabs-page.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserFixture,
  type BrowserSession,
  type BrowserTab,
  inWindow,
  openTab,
  startBrowserFixture,
} from '../browser/harness.js';
import type { LoopReport, TabEvent, TabSetup, TabWindow } from '../browser/tabs-page.js';
import { runExclusively } from '../support/exclusive.js';
import {
  type OidcServer,
  startOidcServer,
  type TokenRequestRecord,
} from '../support/oidc-server.js';

runExclusively();

const CLIENT = 'tabs-client';
const TABS = 5;
/** Rotations after the first token. */
const ROTATIONS = 5;
/** Access-token lifetime, seconds: a tab refreshes at half of it. */
const TTL = 4;
const LOOP_INTERVAL_MS = 50;

let op: OidcServer;
let fixture: BrowserFixture;
let browser: BrowserSession;
let tabs: BrowserTab[] = [];

beforeAll(async () => {
  fixture = await startBrowserFixture('tabs-page.ts');
  op = await startOidcServer({
    browserClients: [{ clientId: CLIENT, origin: fixture.origin }],
    ttl: { accessToken: TTL },
  });
  browser = await fixture.launch();
  tabs = [browser];
  for (let i = 1; i < TABS; i++) tabs.push(await openTab(browser.context, fixture.origin));
}, 60_000);

afterAll(async () => {
  await fixture?.close();
  await op?.close();
});

type Api = TabWindow['tw'];

/**
 * Runs `fn` against `window.tw` in one tab. `fn` travels as source text and must only use its
 * arguments.
 */
const inTab = <T, A>(tab: BrowserTab, fn: (tw: Api, arg: A) => T, arg: A) =>
  inWindow(tab.page, fn, arg);

/** Runs `fn` against `window.tw` in every tab, in parallel. */
function everyTab<T, A>(fn: (tw: Api, arg: A) => T, arg: A): Promise<Awaited<T>[]> {
  return Promise.all(tabs.map((tab) => inTab(tab, fn, arg)));
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** When the authorization server received each refresh_token request of the tabs' client. */
const refreshArrivals = (since: number): number[] =>
  op.requests
    .filter((r) => r.method === 'POST' && r.url === '/token' && r.at >= since)
    .filter((r) => {
      const form = new URLSearchParams(r.body);
      return form.get('grant_type') === 'refresh_token' && form.get('client_id') === CLIENT;
    })
    .map((r) => r.at);

/** The refresh_token requests of the tabs' client from index `from` on. */
const refreshesSince = (from: number): TokenRequestRecord[] =>
  op.tokenRequests
    .slice(from)
    .filter((r) => r.clientId === CLIENT && r.grantType === 'refresh_token');

interface Rotations {
  readonly requests: TokenRequestRecord[];
  /** When each request arrived, epoch ms. */
  readonly arrivals: number[];
  readonly reports: LoopReport[];
  readonly events: TabEvent[][];
  readonly durationMs: number;
}

/** Signs all tabs in with one minted refresh token and lets them call until ROTATIONS rotations. */
async function runRotations(name: string, withoutWebLocks: boolean): Promise<Rotations> {
  const minted = await op.mintRefreshToken({ clientId: CLIENT });
  const config: TabSetup = {
    issuer: op.issuer,
    clientId: CLIENT,
    refreshToken: minted.refreshToken,
    resource: op.resource.origin,
    name,
    withoutWebLocks,
  };
  await everyTab((tw, c) => tw.setup(c), config);
  expect(await everyTab((tw) => tw.hasWebLocks(), null)).toEqual(
    Array(TABS).fill(!withoutWebLocks),
  );
  const from = op.tokenRequests.length;
  const started = Date.now();
  await everyTab((tw, interval) => tw.startLoop(interval), LOOP_INTERVAL_MS);
  await waitFor(
    `${ROTATIONS} rotations`,
    () => refreshesSince(from).length >= ROTATIONS + 1,
    (ROTATIONS + 2) * TTL * 1_000,
  );
  const durationMs = Date.now() - started;
  const reports = await everyTab((tw) => tw.stopLoop(), null);
  // Announcements of a refresh that finished as the loops stopped reach the other tabs.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const events = await everyTab((tw) => tw.events(), null);
  const requests = refreshesSince(from);
  expect(requests[0]?.sentRefreshToken).toBe(minted.refreshToken);
  return { requests, arrivals: refreshArrivals(started), reports, events, durationMs };
}

/** The claims of the rotation scenario, shared by both locks. */
function expectOneRequestPerRotation({ requests, arrivals, reports, events }: Rotations): void {
  // Zero invalid_grant, zero failures of any kind.
  expect(requests.map((r) => [r.status, r.error])).toEqual(requests.map(() => [200, undefined]));
  // One chain: each request presented the refresh token the previous one received, so every
  // refresh token was redeemed by exactly one request in exactly one tab.
  requests.forEach((request, i) => {
    if (i > 0) expect(request.sentRefreshToken).toBe(requests[i - 1]?.issuedRefreshToken);
  });
  const sent = requests.map((r) => r.sentRefreshToken);
  expect(new Set(sent).size).toBe(sent.length);
  // And no tab redeemed a fresh refresh token again right after another tab did (a chain that a
  // second, needless request would still keep intact): each request came once its predecessor's
  // token was due, at half its lifetime, and not before.
  expect(arrivals).toHaveLength(requests.length);
  const gaps = arrivals.slice(1).map((at, i) => at - (arrivals[i] as number));
  for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual((TTL * 1_000) / 2 - 50);
  // Every call of every tab was answered 200.
  for (const report of reports) {
    expect(report.errors).toEqual({});
    expect(Object.keys(report.statuses)).toEqual(['200']);
    expect(report.calls).toBeGreaterThan(10);
  }
  // Each token set was obtained by one tab and taken over by the four others, with 'shared'.
  const refreshes = events.map((tabEvents) => tabEvents.filter((e) => e.event === 'refresh'));
  const own = refreshes
    .flatMap((list, tab) =>
      list.filter((e) => e.payload['reason'] !== 'shared').map((e) => ({ tab, e })),
    )
    .sort((a, b) => a.e.at - b.e.at);
  expect(own).toHaveLength(requests.length);
  // The first token was needed ('initial'); every later one was obtained ahead of expiry.
  expect(own.map(({ e }) => e.payload['reason'])).toEqual(
    requests.map((_, i) => (i === 0 ? 'initial' : 'proactive')),
  );
  for (const { tab, e } of own.slice(1)) {
    const sharers = refreshes
      .map((list, other) =>
        list.some(
          (s) =>
            s.payload['reason'] === 'shared' && s.payload['expiresAt'] === e.payload['expiresAt'],
        )
          ? other
          : -1,
      )
      .filter((other) => other >= 0);
    expect(sharers).toEqual([...Array(TABS).keys()].filter((other) => other !== tab));
  }
  expect(events.flat().filter((e) => e.event !== 'refresh')).toEqual([]);
}

/** A summary for the test log: requests per rotation, shared events, time. */
function summary(label: string, { requests, events, durationMs }: Rotations): string {
  const shared = events
    .flat()
    .filter((e) => e.event === 'refresh' && e.payload['reason'] === 'shared');
  const byTab = events.map(
    (list) => list.filter((e) => e.event === 'refresh' && e.payload['reason'] !== 'shared').length,
  );
  return `${label}: ${requests.length} refresh_token requests for ${requests.length} rotations (1 initial + ${requests.length - 1}), invalid_grant ${requests.filter((r) => r.error === 'invalid_grant').length}, shared events ${shared.length}, refreshes by tab ${JSON.stringify(byTab)}, ${durationMs} ms`;
}

describe('five tabs sharing one credential in Chromium', () => {
  it('refresh once per rotation under a Web Lock, and the others take the token over', async () => {
    const result = await runRotations('tabs', false);
    console.info(summary('Web Locks', result));
    expectOneRequestPerRotation(result);
    // Web Locks need no lease database.
    expect(await inTab(tabs[0]!, (tw) => tw.databases(), null)).toEqual(['tabs', 'tabs-keys']);
  }, 40_000);

  it('forget() in one tab signs out all five at once, and none asks for a token again', async () => {
    await everyTab((tw, interval) => tw.startLoop(interval), LOOP_INTERVAL_MS);
    // Sign out just after a rotation, while every tab is calling.
    const rotated = refreshesSince(0).length;
    await waitFor('the next rotation', () => refreshesSince(0).length > rotated, 3 * TTL * 1_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const expiresAt = Math.max(...(await everyTab((tw) => tw.status().expiresAt ?? 0, null)));
    const from = op.tokenRequests.length;
    const started = Date.now();
    await inTab(tabs[0]!, (tw) => tw.forget(), null);
    await waitFor(
      'every tab to be signed out',
      async () =>
        (await everyTab((tw) => tw.status().state, null)).every((s) => s === 'reauth-required'),
      2_000,
    );
    const signedOutMs = Date.now() - started;
    const signedOutAt = Date.now();
    console.info(`forget(): all ${TABS} tabs reauth-required ${signedOutMs} ms after the call`);
    expect(signedOutMs).toBeLessThan(1_000);
    expect(await everyTab((tw) => tw.recordStored('api'), null)).toEqual(Array(TABS).fill(false));

    // Past the point where the dropped token would have been refreshed, and past its expiry.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 500));
    const reports = await everyTab((tw) => tw.stopLoop(), null);
    expect(op.tokenRequests.slice(from)).toEqual([]);
    expect(op.resource.requests.filter((r) => r.at > signedOutAt + 100)).toEqual([]);
    for (const report of reports) expect(report.errors['ERR_REAUTH_REQUIRED']).toBeGreaterThan(0);
    const events = await everyTab((tw) => tw.events(), null);
    for (const tabEvents of events) {
      expect(tabEvents.filter((e) => e.event === 'reauth-required').map((e) => e.payload)).toEqual([
        { id: 'api', error: 'signed_out' },
      ]);
    }
    expect(await everyTab((tw) => tw.recordStored('api'), null)).toEqual(Array(TABS).fill(false));
  }, 30_000);

  it('refreshes once per rotation without Web Locks, on the lease lock in IndexedDB', async () => {
    await everyTab((tw) => tw.close(), null);
    await Promise.all(tabs.map((tab) => tab.reload()));
    const result = await runRotations('tabs-fallback', true);
    console.info(summary('lease lock', result));
    expectOneRequestPerRotation(result);
    expect(await inTab(tabs[0]!, (tw) => tw.databases(), null)).toContain('tabs-fallback-locks');
    const errors = [...tabs.flatMap((tab) => tab.console)].filter((line) =>
      line.startsWith('pageerror'),
    );
    expect(errors).toEqual([]);
    await everyTab((tw) => tw.close(), null);
  }, 40_000);
});
