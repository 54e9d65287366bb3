// Processes on one machine sharing one fileStore refresh a rotating refresh token once per
// rotation between them, against a real oidc-provider with rotation and reuse detection; a
// refresh-lock holder killed mid-refresh is taken over at once (its pid is dead), still without
// a second redemption (issue 4, "the same with processes sharing one fileStore";
// SECURITY-CHECKLIST items 20, 21 and 37).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshLockPath } from '../../src/node/internal/refresh-lock.js';
import type { FleetConfig } from '../fixtures/file-store-fleet-child.js';
import { bundleFixture, type Child, startChild } from '../support/children.js';
import { runExclusively } from '../support/exclusive.js';
import { type OidcServer, startOidcServer } from '../support/oidc-server.js';

runExclusively();

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = fileURLToPath(new URL('../fixtures/file-store-fleet-child.ts', import.meta.url));
const KEY = randomBytes(32).toString('base64url');
const PROCESSES = 8;
const ROTATIONS = 20;
/** Access-token lifetime, seconds: a rotation about every second. */
const TTL_SECONDS = 2;
/** The credentials' default lock TTL (`timeout` 30 s + 15 s): recovery must not wait for it. */
const DEFAULT_LOCK_TTL_MS = 45_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` returns a value (not undefined/false), or fails after `timeoutMs`. */
async function until<T>(what: string, check: () => T | undefined | false, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Whether a child holds the refresh lock: its last lock line is `locked`. */
function holdsLock(child: Child): boolean {
  const last = child.lines.filter((l) => l.step === 'locked' || l.step === 'released').at(-1);
  return last?.step === 'locked';
}

describe('processes sharing one fileStore', () => {
  let op: OidcServer;
  let dir: string;
  let path: string;
  let bundle: string;
  let firstRefreshToken: string;
  let children: Child[] = [];
  const killed = new Set<Child>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tw-file-fleet-'));
    path = join(dir, 'fleet', 'tokens.json');
    [op, bundle] = await Promise.all([
      startOidcServer({ ttl: { accessToken: TTL_SECONDS } }),
      bundleFixture(fixture, join(dir, 'bundle', 'file-store-fleet-child.mjs')),
    ]);
    firstRefreshToken = (await op.mintRefreshToken()).refreshToken;
  }, 60_000);

  afterAll(async () => {
    for (const child of children) child.process.kill('SIGKILL');
    await Promise.all(children.map((child) => child.closed.catch(() => {})));
    await op?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The refresh_token grant requests so far, oldest first. */
  const grants = () => op.tokenRequests.filter((r) => r.grantType === 'refresh_token');

  /**
   * No grant failed (no `invalid_grant`), and every grant redeemed the refresh token the
   * previous one issued: one linear chain, so no refresh token was redeemed twice.
   */
  function expectCleanGrants(): void {
    const failed = grants().filter((r) => r.status !== 200);
    expect(failed.map((r) => `${r.status} ${r.error}`)).toEqual([]);
    expect(op.tokenCounts('refresh_token').errors).toEqual({});
    let expected = firstRefreshToken;
    for (const [i, grant] of grants().entries()) {
      expect(grant.status, `grant ${i}`).toBe(200);
      // Compared as booleans: a failure must not print a refresh token.
      expect(grant.sentRefreshToken === expected, `grant ${i} redeems the latest token`).toBe(true);
      expected = grant.issuedRefreshToken as string;
    }
  }

  /** Refreshes that sent a token request, over every child (the others took a set over). */
  const obtained = () =>
    children.flatMap((c) => c.lines).filter((l) => l.step === 'refresh' && l.reason !== 'shared')
      .length;

  /**
   * Answers of the resource server other than 200, and 401 for a token in its last moments:
   * oidc-provider counts lifetimes in whole seconds from a truncated issue time, so a token may
   * expire up to a second before its `expires_in` says; the credential then refreshes (or takes
   * a newer set over) and retries, and the application's call succeeds. Those are counted apart.
   */
  const unexpectedStatuses = () =>
    op.resource.statuses.filter((status) => status !== 200 && status !== 401);
  const retried = () => op.resource.statuses.filter((status) => status === 401).length;

  const problems = (child: Child) =>
    child.lines.filter((l) =>
      ['call-failed', 'refresh-error', 'reauth', 'tamper', 'anomaly', 'error'].includes(l.step),
    );

  it(`redeems the refresh token once per rotation across ${ROTATIONS}+ rotations`, async () => {
    const config: FleetConfig = {
      path,
      tokenEndpoint: op.tokenEndpoint,
      clientId: op.clients.refresh.clientId,
      clientSecret: op.clients.refresh.clientSecret,
      refreshToken: firstRefreshToken,
      api: op.resource.origin,
      intervalMs: 50,
    };
    const started = Date.now();
    children = Array.from({ length: PROCESSES }, () =>
      startChild([bundle], {
        cwd: root,
        env: { TW_TEST_KEY: KEY, TW_FLEET: JSON.stringify(config) },
        stdin: 'pipe',
      }),
    );
    await Promise.all(children.map((child) => child.waitFor('ready')));
    // A failed grant ends the wait at once: the assertions below say what failed.
    await until(
      'rotations',
      () => grants().length >= ROTATIONS || grants().some((r) => r.status !== 200),
      60_000,
    );
    const elapsed = Date.now() - started;

    const counts = op.tokenCounts('refresh_token');
    expectCleanGrants();
    // Each rotation is one request, sent by the one process that took the lock first; the
    // others took the new set over from the file.
    await until('the last refresh event', () => obtained() === grants().length, 2_000);
    const locks = children.flatMap((c) => c.lines).filter((l) => l.step === 'locked').length;
    const shared = children
      .flatMap((c) => c.lines)
      .filter((l) => l.step === 'refresh' && l.reason === 'shared').length;
    for (const child of children) expect(problems(child), child.stderr()).toEqual([]);
    // Every process called the API, and every process took the lock at some point.
    const calls = op.resource.statuses.length;
    expect(unexpectedStatuses()).toEqual([]);
    for (const child of children) expect(child.lines.some((l) => l.step === 'locked')).toBe(true);
    console.info('file store fleet', {
      processes: PROCESSES,
      rotations: obtained(),
      grantRequests: counts.total,
      invalidGrant: counts.errors['invalid_grant'] ?? 0,
      locksTaken: locks,
      takenOver: shared,
      apiCalls: calls,
      retriedAfter401: retried(),
      ms: elapsed,
    });
  }, 80_000);

  it('recovers at once from a lock holder killed with SIGKILL mid-refresh', async () => {
    expect(children).toHaveLength(PROCESSES);
    const before = grants().length;
    // The next token request waits at the door: its sender holds the lock, and the
    // authorization server has not seen the request yet.
    op.holdTokenRequests(5_000);
    await until('a held token request', () => op.heldTokenRequests().waiting >= 1, 10_000);
    // Its sender holds the refresh lock until the request ends: the lock file names it.
    const lock = JSON.parse(await readFile(refreshLockPath(path, 'fleet'), 'utf8')) as {
      pid: number;
    };
    const holder = children.find((child) => child.process.pid === lock.pid);
    if (!holder) throw new Error('the lock names no child');
    expect(op.heldTokenRequests().waiting).toBe(1);
    const holderPid = lock.pid;
    // It said so itself, too.
    await until('its locked line', () => holdsLock(holder), 2_000);
    const killedAt = Date.now();
    holder.process.kill('SIGKILL');
    killed.add(holder);
    op.holdTokenRequests(0);
    expect((await holder.closed).signal).toBe('SIGKILL');

    // Another process takes the dead holder's lock and redeems the refresh token that the
    // dropped request carried: nobody waits out the lock's TTL.
    await until('a grant after the kill', () => grants().length > before, 20_000);
    const firstGrant = op.requests.find((r) => r.url === '/token' && r.at > killedAt);
    const recoveryMs = (firstGrant?.at ?? Date.now()) - killedAt;
    expect(recoveryMs).toBeLessThan(DEFAULT_LOCK_TTL_MS / 10);
    expect(op.heldTokenRequests().dropped).toBe(1);

    // The fleet goes on rotating.
    await until('3 more rotations', () => grants().length >= before + 3, 20_000);
    const survivors = children.filter((child) => !killed.has(child));
    for (const child of survivors) child.process.stdin?.write('stop\n');
    const done = await Promise.all(survivors.map((child) => child.waitFor('done')));
    const exits = await Promise.all(survivors.map((child) => child.closed));
    expect(exits.map((exit) => exit.code)).toEqual(Array(PROCESSES - 1).fill(0));

    const counts = op.tokenCounts('refresh_token');
    expectCleanGrants();
    expect(obtained()).toBe(grants().length);
    for (const child of children) expect(problems(child), child.stderr()).toEqual([]);
    expect(unexpectedStatuses()).toEqual([]);
    // The dead holder's lock was broken, and the survivors left none behind.
    expect(existsSync(refreshLockPath(path, 'fleet'))).toBe(false);
    expect(await readdir(join(path, '..'))).toEqual(['tokens.json']);
    console.info('file store fleet after SIGKILL', {
      killedPid: holderPid,
      recoveryMs,
      lockTtlMs: DEFAULT_LOCK_TTL_MS,
      rotations: obtained(),
      grantRequests: counts.total,
      invalidGrant: counts.errors['invalid_grant'] ?? 0,
      apiCalls: done.reduce((sum, line) => sum + (line.calls as number), 0),
      failedCalls: done.reduce((sum, line) => sum + (line.failures as number), 0),
      retriedAfter401: retried(),
    });
  }, 60_000);
});
