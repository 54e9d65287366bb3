// The story the demo tells, step by step, against real servers on loopback. The service side
// uses tokenwarden's public API only (what `import ... from 'tokenwarden'` gives an app); the
// fixture is the demo's own infrastructure, used to set the scene (mint a refresh token, revoke
// a token) and to show from the server's side what actually arrived.
import {
  type AnomalyEvent,
  apiKey,
  type BlockedEvent,
  type Credential,
  clientCredentials,
  createWarden,
  isTokenWardenError,
  refreshToken,
  type Warden,
  type WardenEvents,
} from '../src/index.js';
import { type DpopResourceServer, startDpopResource } from '../test/support/dpop-resource.js';
import { type OidcServer, startOidcServer } from '../test/support/oidc-server.js';
import { type ForeignServer, startForeignServer } from './foreign-server.js';
import { fingerprint, formatMs, formatStatus } from './format.js';
import { RequestLoop, sleep } from './loop.js';
import {
  backgroundRefreshes,
  type CredentialRow,
  type CredentialStats,
  createStats,
  row,
} from './stats.js';
import type { View } from './view.js';

export interface ScenarioOptions {
  /** How long the steady traffic runs, milliseconds. */
  readonly durationMs: number;
  /** Lifetime of the access tokens the server issues, seconds. */
  readonly lifetimeS: number;
  readonly view: View;
  /** Aborted on Ctrl-C: the scenario skips what is left and cleans up. */
  readonly signal: AbortSignal;
}

/** One expectation the demo verified. */
export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ScenarioResult {
  readonly checks: readonly Check[];
  /** Each credential's numbers when the traffic stopped. */
  readonly rows: readonly CredentialRow[];
  readonly interrupted: boolean;
}

/** Two workers per credential, a request each every 100 ms: about 20 requests/s per credential. */
const WORKERS = 2;
const INTERVAL_MS = 100;
/** Failed requests reported individually; beyond that they are only counted. */
const REPORTED_FAILURES = 5;
const RECOVERED = '401 recovered';
const BLOCKED = 'leak attempts blocked';
const ANOMALIES = 'anomalies raised';
const GOVERNED = 'metrics, inventory and audit';
const DPOP = 'DPoP-bound calls';
const REVOKED = 'revoked at the server';

type CheckFn = (name: string, ok: boolean, detail: string) => void;

export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const { view, lifetimeS } = options;
  view.line(
    'step',
    'Starting an OAuth authorization server (oidc-provider), a protected API and another origin on 127.0.0.1',
  );
  const op = await startOidcServer({
    ttl: { accessToken: lifetimeS, clientCredentials: lifetimeS },
  });
  let foreign: ForeignServer | undefined;
  let ledgerApi: DpopResourceServer | undefined;
  let warden: Warden | undefined;
  const loops: RequestLoop[] = [];
  try {
    foreign = await startForeignServer();
    ledgerApi = await startDpopResource({ introspect: (token) => op.introspect(token) });
    warden = createWarden();
    return await story({ ...options, op, foreign, ledgerApi, warden, loops });
  } finally {
    // Traffic first (a request after close() would fail with ERR_CLOSED), then tokenwarden (its
    // timers, a token request in flight), then the servers: nothing may keep the process alive.
    await Promise.all(loops.map((loop) => loop.stop()));
    view.stop();
    await warden?.close();
    await Promise.all([op.close(), foreign?.close(), ledgerApi?.close()]);
  }
}

interface Stage extends ScenarioOptions {
  readonly op: OidcServer;
  readonly foreign: ForeignServer;
  /** An API that accepts DPoP-bound tokens only, verifying every proof. */
  readonly ledgerApi: DpopResourceServer;
  readonly warden: Warden;
  readonly loops: RequestLoop[];
}

async function story(stage: Stage): Promise<ScenarioResult> {
  const { view, signal, op, foreign, ledgerApi, warden, loops, lifetimeS, durationMs } = stage;
  const checks: Check[] = [];
  const check: CheckFn = (name, ok, detail) => {
    checks.push({ name, ok, detail });
    view.line(ok ? 'ok' : 'fail', `${name}: ${detail}`);
  };
  // A step that throws is a failed expectation, not a crash: the run still ends with a summary.
  const step = async (name: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (error) {
      check(name, false, `the step threw ${describeError(error)}`);
    }
  };
  const api = op.resource.origin;
  view.line(
    'info',
    `authorization server ${op.issuer}, API ${api}, DPoP-only API ${ledgerApi.origin}, other origin ${foreign.origin}; access tokens live ${lifetimeS} s`,
  );

  // A user signed in at some point before the service started; the server hands the demo the
  // resulting refresh token (rotating: every use returns a new one and retires the old).
  const minted = await op.mintRefreshToken();
  view.line(
    'info',
    `a refresh token for "profile" was minted (fingerprint ${await fingerprint(minted.refreshToken)}: tokens appear by SHA-256 fingerprint only)`,
  );

  // oidc-provider counts expiry in whole seconds, so a token can die up to a second before its
  // expires_in says. Refreshing at least 1.5 s ahead (tokenwarden caps it at half the lifetime)
  // keeps short-lived tokens from meeting a 401 first.
  const refreshWindow = Math.max(1_500, (lifetimeS * 1_000) / 5);
  const billing = warden.register('billing', {
    source: clientCredentials({
      issuer: op.issuer,
      clientId: op.clients.basic.clientId,
      clientSecret: op.clients.basic.clientSecret,
      clientAuth: 'client_secret_basic',
    }),
    origins: [api],
    refreshWindow,
    // A timer refreshes ahead of expiry even when no request comes.
    keepFresh: true,
  });
  const profile = warden.register('profile', {
    source: refreshToken({
      issuer: op.issuer,
      clientId: op.clients.refresh.clientId,
      clientSecret: op.clients.refresh.clientSecret,
      refreshToken: minted.refreshToken,
    }),
    origins: [api],
    refreshWindow,
    // No keepFresh: the first request inside the refresh window starts a background refresh
    // and goes on with the still-valid token.
  });
  // Tokens bound to a key (DPoP, RFC 9449): both servers ask for nonces, as strict ones do.
  op.setDpopNonceRequired(true);
  ledgerApi.setNonceRequired(true);
  const ledger = warden.register('ledger', {
    source: clientCredentials({
      issuer: op.issuer,
      clientId: op.clients.dpop.clientId,
      clientSecret: op.clients.dpop.clientSecret,
    }),
    origins: [ledgerApi.origin],
    refreshWindow,
    keepFresh: true,
    dpop: true,
  });
  // A static API key someone registered and forgot: the audit at the end finds it unused.
  const legacy = warden.register('legacy', {
    source: apiKey({
      key: `demo-${crypto.randomUUID()}`,
      header: 'X-API-Key',
      revoke: () => {
        view.line('info', 'legacy: the API key provider was asked to revoke the key');
      },
    }),
    origins: [api],
  });
  const billingStats = createStats(billing, 'client_credentials');
  const profileStats = createStats(profile, 'refresh_token (rotating)');
  const ledgerStats = createStats(ledger, 'client_credentials + DPoP');
  const all = [billingStats, profileStats, ledgerStats];
  const { blocked: blockedLog, anomalies: anomalyLog } = listen(warden, all, view);

  view.line('step', 'First tokens');
  const [billingToken, profileToken, ledgerToken] = await Promise.all([
    billing.getToken(),
    profile.getToken(),
    ledger.getToken(),
  ]);
  view.line(
    'info',
    `billing: client_credentials token ${await fingerprint(billingToken.reveal())} obtained, client authenticated with client_secret_basic`,
  );
  view.line(
    'info',
    `profile: refresh_token grant redeemed the minted refresh token, access token ${await fingerprint(profileToken.reveal())}`,
  );
  view.line(
    'info',
    `ledger: DPoP-bound token ${await fingerprint(ledgerToken.reveal())}, key thumbprint ${shortThumbprint(ledger.status().dpop?.thumbprint)} (the private key never leaves the process)`,
  );
  for (const cred of [billing, profile, ledger]) view.line('status', formatStatus(cred.status()));

  view.line(
    'step',
    `Steady traffic for ${formatMs(durationMs)}: ${WORKERS} workers per credential, one request each every ${INTERVAL_MS} ms`,
  );
  const billingApi = billing.ky({ prefix: `${api}/v1/` });
  const billingLoop = new RequestLoop(billingStats, {
    workers: WORKERS,
    intervalMs: INTERVAL_MS,
    send: async () => {
      await billingApi.get('invoices').json();
    },
    onFailure: failureReporter(billingStats, view),
  });
  const profileLoop = new RequestLoop(profileStats, {
    workers: WORKERS,
    intervalMs: INTERVAL_MS,
    send: async () => {
      const res = await profile.fetch(`${api}/v1/me`);
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    },
    onFailure: failureReporter(profileStats, view),
  });
  const ledgerLoop = new RequestLoop(ledgerStats, {
    workers: WORKERS,
    intervalMs: INTERVAL_MS,
    send: async () => {
      const res = await ledger.fetch(`${ledgerApi.origin}/v1/entries`);
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    },
    onFailure: failureReporter(ledgerStats, view),
  });
  loops.push(billingLoop, profileLoop, ledgerLoop);
  const trafficStart = Date.now();
  view.start(() => ({
    elapsedMs: Math.min(durationMs, Date.now() - trafficStart),
    durationMs,
    lifetimeS,
    rows: all.map((s) => row(s)),
  }));
  for (const loop of loops) loop.start();

  await sleep(trafficStart + durationMs * 0.3 - Date.now(), signal);
  if (!signal.aborted) {
    await step(RECOVERED, () =>
      revocation({ ...stage, billing, billingStats, billingLoop, check }),
    );
  }

  await sleep(trafficStart + durationMs * 0.5 - Date.now(), signal);
  if (!signal.aborted) {
    const anomaliesBefore = anomalyLog.length;
    await step(BLOCKED, () => leakAttempts({ ...stage, billing, blockedLog, check }));
    const raised = anomalyLog
      .slice(anomaliesBefore)
      .filter((e) => e.kind === 'blocked-leak')
      .map((e) => `${e.evidence['reason']}/${e.severity}`);
    check(
      ANOMALIES,
      raised.join() === 'origin-not-allowed/warning,token-in-url/critical,redirect/info',
      `anomaly events [${raised.join(', ')}], evidence without query or token`,
    );
  }

  await sleep(trafficStart + durationMs - Date.now(), signal);
  view.line('step', signal.aborted ? 'Interrupted: stopping traffic' : 'Stopping traffic');
  await Promise.all(loops.map((loop) => loop.stop()));
  const rows = all.map((s) => row(s));
  view.stop();
  for (const cred of [billing, profile, ledger]) view.line('status', formatStatus(cred.status()));

  const failed = all.reduce((n, s) => n + s.failed, 0);
  check(
    'steady traffic',
    failed === 0 && all.every((s) => s.ok > 0),
    all.map((s) => `${s.credential.id} ${s.ok} ok / ${s.failed} failed`).join(', '),
  );
  check(
    'background refreshes',
    all.every((s) => backgroundRefreshes(s) > 0),
    `billing ${billingStats.refreshes.scheduled} and ledger ${ledgerStats.refreshes.scheduled} on their timers, profile ${profileStats.refreshes.proactive} started by traffic; requests kept using the valid token meanwhile`,
  );
  const refreshGrant = op.tokenCounts('refresh_token');
  check(
    'refresh token rotation',
    profileStats.rotations > 0 &&
      profileStats.rotations >= backgroundRefreshes(profileStats) &&
      refreshGrant.failed === 0,
    `profile rotated its refresh token ${plural(profileStats.rotations, 'time')}; the server rejected ${refreshGrant.failed} of ${refreshGrant.total} redemptions (a reused one would be invalid_grant)`,
  );
  check(
    'client_secret_basic',
    basicAuthOnly(op),
    `${op.tokenCounts('client_credentials').total} client_credentials token requests, each with a Basic header and no secret in the body`,
  );
  const refreshErrors = all.reduce((n, s) => n + s.refreshErrors, 0);
  check('refresh errors', refreshErrors === 0, `${refreshErrors} refresh-error events`);
  if (!signal.aborted) {
    await step(DPOP, () => dpopCalls({ ...stage, ledger, check }));
    await step(GOVERNED, () => governance({ ...stage, all, legacy, check }));
    await step(REVOKED, () => revokeEverything({ ...stage, profile, check }));
  }
  // Last: everything printed so far, searched for every secret the servers know of.
  const secrets = knownSecrets(op, [minted.refreshToken, minted.accessToken]);
  const transcript = view.transcript();
  const leaked = secrets.filter(
    (s) => transcript.includes(s) || transcript.includes(encodeURIComponent(s)),
  );
  check(
    'nothing secret printed',
    leaked.length === 0,
    `the output was searched for ${secrets.length} client secrets and tokens; ${leaked.length} found`,
  );
  return { checks, rows, interrupted: signal.aborted };
}

/** Counts events into the stats and narrates them. Returns the `blocked` and `anomaly` events. */
function listen(
  warden: Warden,
  all: readonly CredentialStats[],
  view: View,
): { blocked: BlockedEvent[]; anomalies: AnomalyEvent[] } {
  const byId = new Map(all.map((s) => [s.credential.id, s]));
  const blocked: BlockedEvent[] = [];
  const anomalies: AnomalyEvent[] = [];
  const on = <K extends keyof WardenEvents>(
    event: K,
    handle: (stats: CredentialStats, ...args: WardenEvents[K]) => void,
  ) =>
    warden.on(event, (...args) => {
      const stats = byId.get(args[0].id);
      if (stats) handle(stats, ...args);
    });
  on('refresh', (stats, e) => {
    stats.refreshes[e.reason]++;
    if (e.rotated) stats.rotations++;
    view.line(
      'event',
      `refresh ${e.id} (${e.reason})${e.rotated ? ', refresh token rotated' : ''}: new token valid ${formatMs(e.expiresAt - Date.now())}, token request took ${formatMs(e.durationMs)}`,
    );
  });
  on('refresh-error', (stats, e) => {
    stats.refreshErrors++;
    view.line('warn', `refresh-error ${e.id} (${e.reason}): ${e.code}, failure #${e.failures}`);
  });
  on('reauth-required', (_stats, e) => {
    view.line('warn', `reauth-required ${e.id}: the server answered ${e.error}`);
  });
  on('blocked', (stats, e) => {
    stats.blocked++;
    blocked.push(e);
    view.line('event', `blocked ${e.id}: ${e.reason}, request ${e.action} (${e.url})`);
  });
  on('anomaly', (stats, e) => {
    stats.anomalies++;
    anomalies.push(e);
    view.line(
      e.severity === 'info' ? 'event' : 'warn',
      `anomaly ${e.id}: ${e.kind} (${e.severity}) ${JSON.stringify(e.evidence)}`,
    );
  });
  return { blocked, anomalies };
}

function failureReporter(stats: CredentialStats, view: View): (error: unknown) => void {
  return (error) => {
    if (stats.failed <= REPORTED_FAILURES) {
      view.line('fail', `${stats.credential.id}: a request failed: ${describeError(error)}`);
    }
  };
}

/** A non-secret description: a tokenwarden code, an HTTP status, or an error's name. */
function describeError(error: unknown): string {
  if (isTokenWardenError(error)) return error.code;
  const status = (error as { response?: { status?: unknown } } | null)?.response?.status;
  if (typeof status === 'number') return `HTTP ${status}`;
  if (error instanceof Error) return error.message.startsWith('HTTP ') ? error.message : error.name;
  return typeof error;
}

interface RevocationStage extends Stage {
  readonly billing: Credential;
  readonly billingStats: CredentialStats;
  readonly billingLoop: RequestLoop;
  readonly check: CheckFn;
}

/**
 * The server stops accepting a token tokenwarden still considers valid (revoked by an admin,
 * a key rotation, a restart with an in-memory token store). The next call must cost exactly one
 * refresh and one retry, and succeed.
 */
async function revocation(stage: RevocationStage): Promise<void> {
  const { view, op, billing, billingStats, billingLoop, lifetimeS, signal } = stage;
  const api = op.resource.origin;
  view.line('step', `Revoking billing's access token at the server, behind tokenwarden's back`);
  // The billing workers hold their next requests, so the call below is the one that meets the
  // revoked token and the server's records show its two attempts alone.
  await billingLoop.pause();
  try {
    await untilNoRefreshDue(billing, lifetimeS * 1_000, signal);
    const revoked = (await billing.getToken()).reveal();
    const revokedFp = await fingerprint(revoked);
    await op.revokeAccessToken(revoked);
    view.line('info', `token ${revokedFp} revoked at the authorization server; it has not expired`);

    const forcedBefore = billingStats.refreshes.forced;
    // billing's own token requests: ledger's refreshes (the same grant) may fall in this window.
    const billingTokenRequests = () =>
      op.tokenRequests.filter(
        (r) => r.grantType === 'client_credentials' && r.clientId === op.clients.basic.clientId,
      ).length;
    const tokensBefore = billingTokenRequests();
    const requestsBefore = op.resource.requests.length;
    const statusesBefore = op.resource.statuses.length;
    const body = JSON.stringify({ amount: 42 });
    const res = await billing.fetch(`${api}/v1/invoices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const answer = (await res.json()) as { body?: unknown };

    // What the API saw of this one call (the profile workers' requests are interleaved).
    const attempts = op.resource.requests
      .slice(requestsBefore)
      .filter((r) => r.method === 'POST' && r.url === '/v1/invoices');
    const bearer = (i: number) =>
      String(attempts[i]?.headers['authorization'] ?? '').replace(/^Bearer /i, '');
    const unauthorized = op.resource.statuses.slice(statusesBefore).filter((s) => s === 401).length;
    const forced = billingStats.refreshes.forced - forcedBefore;
    const tokenRequests = billingTokenRequests() - tokensBefore;
    const retryFp = attempts.length > 1 ? await fingerprint(bearer(1)) : '-';
    view.line(
      'info',
      `POST /v1/invoices: 401 for ${revokedFp}, ${forced} forced refresh (${tokenRequests} token request), retried once with ${retryFp} and the body replayed: ${res.status}`,
    );
    view.line('status', formatStatus(billing.status()));
    const ok =
      res.status === 200 &&
      answer.body === body &&
      attempts.length === 2 &&
      bearer(0) === revoked &&
      bearer(1) !== revoked &&
      attempts[1]?.body === body &&
      unauthorized === 1 &&
      forced === 1 &&
      tokenRequests === 1;
    const detail = `1 call, ${attempts.length} attempts at the API, ${unauthorized} 401, ${forced} refresh, final status ${res.status}`;
    stage.check(RECOVERED, ok, detail);
  } finally {
    billingLoop.resume();
  }
}

/**
 * Waits until the credential's next background refresh is comfortably far away, so that the
 * revocation step observes its own forced refresh and nothing else.
 */
async function untilNoRefreshDue(
  cred: Credential,
  lifetimeMs: number,
  signal: AbortSignal,
): Promise<void> {
  const status = cred.status();
  const dueIn = (status.refreshAt ?? 0) - Date.now();
  if (!status.refreshing && dueIn > lifetimeMs * 0.25) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      cred.off('refresh', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    // billing keeps fresh on a timer, so a refresh comes; the timeout only bounds a surprise.
    const timer = setTimeout(done, lifetimeMs * 2);
    cred.once('refresh', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

interface LeakStage extends Stage {
  readonly billing: Credential;
  readonly blockedLog: readonly BlockedEvent[];
  readonly check: CheckFn;
}

/** Three ways an application (or an attacker steering it) could send the token elsewhere. */
async function leakAttempts(stage: LeakStage): Promise<void> {
  const { view, op, foreign, billing, blockedLog } = stage;
  const api = op.resource.origin;
  view.line('step', 'Leak attempts through the billing credential');
  const blockedBefore = blockedLog.length;
  const foreignBefore = foreign.requests.length;
  const apiBefore = op.resource.requests.length;

  const collector = `${foreign.origin}/collect`;
  const foreignOrigin = await outcome(billing.fetch(collector));
  view.line('info', `fetch ${collector} (not an allowed origin): ${foreignOrigin}`);

  const token = (await billing.getToken()).reveal();
  const tokenInUrl = await outcome(
    billing.fetch(`${api}/v1/search?q=${encodeURIComponent(token)}`),
  );
  view.line('info', `fetch ${api}/v1/search?q=<the access token>: ${tokenInUrl}`);

  const redirect = await billing.fetch(`${api}/redirect?to=${encodeURIComponent(collector)}`);
  await redirect.arrayBuffer();
  const arrived = foreign.requests.slice(foreignBefore);
  const withCredentials = arrived.filter((r) => r.hadAuthorization || r.hadCookie).length;
  view.line(
    'info',
    `fetch ${api}/redirect, answered 307 to ${collector}: followed, ${redirect.status}; the other origin got ${plural(arrived.length, 'request')}, ${withCredentials} with credentials`,
  );

  const events = blockedLog
    .slice(blockedBefore)
    .filter((e) => e.id === billing.id)
    .map((e) => `${e.reason}/${e.action}`);
  const searched = op.resource.requests
    .slice(apiBefore)
    .some((r) => r.url.startsWith('/v1/search'));
  const ok =
    foreignOrigin === 'ERR_ORIGIN_NOT_ALLOWED' &&
    tokenInUrl === 'ERR_TOKEN_IN_URL' &&
    !searched &&
    redirect.status === 200 &&
    arrived.length === 1 &&
    withCredentials === 0 &&
    events.join() === 'origin-not-allowed/refused,token-in-url/refused,redirect/stripped';
  const detail = `blocked events [${events.join(', ')}]; errors ${foreignOrigin}, ${tokenInUrl}; the token reached no other origin`;
  stage.check(BLOCKED, ok, detail);
}

interface DpopStage extends Stage {
  readonly ledger: Credential;
  readonly check: CheckFn;
}

/**
 * What the DPoP-only API saw of the ledger credential: every request with a fresh proof of the
 * key the token is bound to, nonce challenges answered with one retry; and a copy of the token
 * without the key is worthless there.
 */
async function dpopCalls(stage: DpopStage): Promise<void> {
  const { view, ledgerApi, ledger, op } = stage;
  view.line('step', 'DPoP: what the key-bound API saw');
  const thumbprint = ledger.status().dpop?.thumbprint;
  const seen = ledgerApi.requests.slice();
  const accepted = seen.filter((r) => r.reason === 'ok');
  const challenged = seen.filter((r) => r.reason === 'use-dpop-nonce').length;
  const refused = seen.length - accepted.length - challenged;
  const keys = new Set(accepted.map((r) => r.proofJkt));
  const dpopTokenRequests = op.tokenRequests.filter(
    (r) => r.clientId === op.clients.dpop.clientId,
  ).length;
  view.line(
    'info',
    `ledger: ${accepted.length} requests accepted, each with a fresh proof of key ${shortThumbprint(thumbprint)}; ${challenged} nonce challenges, each answered by one retry; ${refused} refused; ${dpopTokenRequests} token requests, each with a proof`,
  );
  // A thief with a copy of the token, but not the key.
  const stolen = (await ledger.getToken()).reveal();
  const attempts = await Promise.all(
    ['DPoP', 'Bearer'].map(async (scheme) => {
      const res = await fetch(`${ledgerApi.origin}/v1/entries`, {
        headers: { authorization: `${scheme} ${stolen}` },
      });
      await res.arrayBuffer();
      return res.status;
    }),
  );
  view.line(
    'info',
    `the same token without a proof, as DPoP and as Bearer: HTTP ${attempts.join(' and ')}`,
  );
  const ok =
    accepted.length > 0 &&
    refused === 0 &&
    keys.size === 1 &&
    keys.has(thumbprint) &&
    accepted.every((r) => r.tokenJkt === thumbprint) &&
    attempts.every((status) => status === 401);
  stage.check(
    DPOP,
    ok,
    `${accepted.length} accepted, all proving key ${shortThumbprint(thumbprint)}; ${challenged} nonce retries; a stolen copy of the token was refused (${attempts.join(', ')})`,
  );
}

interface GovernanceStage extends Stage {
  readonly all: readonly CredentialStats[];
  readonly legacy: Credential;
  readonly check: CheckFn;
}

/**
 * What an operator asks of the warden after the traffic: its metrics snapshot (compared with the
 * demo's own counts), the inventory of every credential and stored token, and an audit that
 * finds the forgotten API key unused and revokes it.
 */
async function governance(stage: GovernanceStage): Promise<void> {
  const { view, warden, all, legacy, durationMs } = stage;
  view.line('step', 'Metrics, inventory and audit');
  const snapshot = warden.metrics();
  const matches: boolean[] = [];
  for (const stats of all) {
    const m = snapshot.credentials[stats.credential.id];
    if (!m) {
      matches.push(false);
      continue;
    }
    const { p50, p95, p99 } = m.latencyMs;
    view.line(
      'info',
      `metrics ${stats.credential.id}: ${m.requests} requests (${m.ok} 2xx, ${m.clientErrors} 4xx, ${m.serverErrors} 5xx, ${m.networkErrors} network errors), ${m.retriedAfter401} retried after 401, ${m.blocked} blocked; latency p50 ${formatMs(p50)} p95 ${formatMs(p95)} p99 ${formatMs(p99)}; token age at use p50 ${formatMs(m.tokenAgeMs.p50)}`,
    );
    // Every loop request went through the credential, plus the revocation and leak steps' own.
    matches.push(m.requests >= stats.ok + stats.failed && m.latencyMs.count === m.requests);
  }
  const inventory = await warden.inventory();
  for (const entry of inventory) {
    view.line(
      'info',
      `inventory ${entry.id}: ${entry.state}, ${entry.sourceKind ?? '-'}, ${entry.uses ?? 0} uses, fingerprint ${entry.fingerprint ?? '-'}`,
    );
  }
  // The traffic ran for durationMs; whatever had no request for half of it is unused.
  const findings = await warden.audit({ idleFor: Math.max(1_000, durationMs / 2), revoke: true });
  for (const finding of findings) {
    view.line('info', `audit ${finding.id}: ${finding.kind}, action ${finding.action ?? 'none'}`);
  }
  const legacyFinding = findings.find((f) => f.id === legacy.id);
  const ok =
    matches.every(Boolean) &&
    inventory.length === 4 &&
    findings.length === 1 &&
    legacyFinding?.kind === 'unused' &&
    legacyFinding.action === 'revoked' &&
    warden.get(legacy.id) === undefined &&
    !JSON.stringify([snapshot, inventory, findings]).includes('demo-');
  stage.check(
    GOVERNED,
    ok,
    `metrics match the traffic; ${inventory.length} inventory entries with fingerprints; audit: ${findings.map((f) => `${f.id} ${f.kind} -> ${f.action ?? 'none'}`).join(', ') || 'no findings'}`,
  );
}

interface RevokeStage extends Stage {
  readonly profile: Credential;
  readonly check: CheckFn;
}

/** `revokeAll()`: RFC 7009 at the server, then introspection there says every token is dead. */
async function revokeEverything(stage: RevokeStage): Promise<void> {
  const { view, warden, op, profile } = stage;
  view.line('step', 'Revoking every credential (RFC 7009), then asking the server (RFC 7662)');
  const results = await warden.revokeAll();
  // revoke() waits for a refresh in flight, then revokes what the credential holds: the last
  // tokens the server issued to each client (a keepFresh timer may have just refreshed).
  const lastIssued = (clientId: string) =>
    op.tokenRequests.filter((r) => r.clientId === clientId && r.status === 200).at(-1);
  const issued = [op.clients.basic, op.clients.refresh, op.clients.dpop].map((client) =>
    lastIssued(client.clientId),
  );
  const lastRefresh = issued[1]?.issuedRefreshToken;
  for (const result of results) {
    view.line(
      'info',
      `revoke ${result.id}: ${result.outcome}, tokens [${result.tokens.join(', ')}], wiped locally: ${result.wipedLocally}`,
    );
  }
  const tokens = [
    ...issued.flatMap((r) => (r?.issuedAccessToken ? [r.issuedAccessToken] : [])),
    ...(lastRefresh ? [lastRefresh] : []),
  ];
  const answers = await Promise.all(tokens.map((token) => op.introspect(token)));
  const active = answers.filter((a) => a['active'] === true).length;
  view.line('info', `introspection of ${tokens.length} tokens just revoked: ${active} active`);
  view.line('status', formatStatus(profile.status()));
  const ok =
    results.length === 3 &&
    tokens.length === 4 &&
    results.every((r) => r.revokedAtServer && r.wipedLocally) &&
    results.find((r) => r.id === profile.id)?.tokens.join() === 'refresh_token,access_token' &&
    active === 0 &&
    lastRefresh !== undefined &&
    profile.status().state === 'reauth-required';
  stage.check(
    REVOKED,
    ok,
    `${results.length} credentials revoked, ${tokens.length} tokens (refresh token first), ${active} still active at the server; profile now ${profile.status().state}`,
  );
}

/** The error code a request failed with, or `sent (<status>)` when it went out. */
async function outcome(request: Promise<Response>): Promise<string> {
  try {
    const res = await request;
    await res.arrayBuffer();
    return `sent (${res.status})`;
  } catch (error) {
    return describeError(error);
  }
}

/** Whether every client_credentials token request authenticated with a Basic header only. */
function basicAuthOnly(op: OidcServer): boolean {
  const requests = op.requests.filter((r) => {
    if (r.method !== 'POST' || r.url.split('?')[0] !== '/token') return false;
    return new URLSearchParams(r.body).get('grant_type') === 'client_credentials';
  });
  return (
    requests.length > 0 &&
    requests.every(
      (r) =>
        /^Basic /i.test(String(r.headers['authorization'] ?? '')) &&
        !new URLSearchParams(r.body).has('client_secret'),
    )
  );
}

/** Every client secret and token the servers handed out or received during the run. */
function knownSecrets(op: OidcServer, extra: readonly string[]): string[] {
  const secrets = new Set<string>([
    op.clients.basic.clientSecret,
    op.clients.refresh.clientSecret,
    ...extra,
  ]);
  for (const r of op.tokenRequests) {
    for (const value of [r.issuedAccessToken, r.issuedRefreshToken, r.sentRefreshToken]) {
      if (value) secrets.add(value);
    }
  }
  return [...secrets];
}

/** The start of a JWK thumbprint: public, but printed short like the token fingerprints. */
function shortThumbprint(thumbprint: string | undefined): string {
  return thumbprint === undefined ? '-' : `${thumbprint.slice(0, 12)}…`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
