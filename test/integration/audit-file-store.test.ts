// warden.inventory() and warden.audit() over a real file store shared by three processes
// (issue 5). A child process — the deploy of 40 days ago, its clock set back — registers three
// credentials that store sealed records in the file; this process registers only two of them,
// so the third record is orphaned. The inventory lists all three with their metadata and the
// fingerprint of each token (checked against SHA-256 here); no token is in the inventory, the
// findings, the children's output or the file. The audit finds `orphaned`, `unused`, `expiring`
// and, as its thresholds and time move, `over-age`; `audit({ revoke: true })` revokes the unused
// credential and deletes the orphan, and a third process reading the file sees neither.
// (Every kind's rules on an in-memory backend are in test/unit/audit.test.ts.)
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuditFinding,
  apiKey,
  createWarden,
  customFetch,
  customSource,
  type InventoryEntry,
} from '../../src/index.js';
import { fileStore } from '../../src/node/index.js';
import { AUDIT_API, AUDIT_TOKENS, BILLING_LIFETIME_S } from '../fixtures/audit-child.js';
import { type Child, startChild } from '../support/children.js';
import { findLeaks } from '../support/sentinel.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = fileURLToPath(new URL('../fixtures/audit-child.ts', import.meta.url));
const KEY = randomBytes(32).toString('base64url');
const DAY = 86_400_000;
/** How long ago the seeding process ran. */
const SHIFT = 40 * DAY;
const SECRETS = [...Object.values(AUDIT_TOKENS), KEY];

function sha16(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

function pairs(findings: readonly AuditFinding[]): string[] {
  return findings.map((f) => `${f.id}:${f.kind}`).sort();
}

function start(mode: 'seed' | 'inventory', path: string): Child {
  return startChild(['--import', 'tsx', fixture, mode, path], {
    cwd: root,
    env: { TW_TEST_KEY: KEY, TW_CLOCK_SHIFT_MS: String(SHIFT) },
    name: `the ${mode} child`,
  });
}

async function finished(child: Child): Promise<void> {
  const exit = await child.closed;
  expect(exit.code, child.stderr()).toBe(0);
  expect(child.lines.filter((line) => line.step === 'tamper' || line.step === 'error')).toEqual([]);
  expect(findLeaks([child.lines, child.stderr()], SECRETS)).toEqual([]);
}

describe('inventory and audit over a file store shared by processes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tw-audit-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists, audits and cleans up records another process stored', async () => {
    const path = join(dir, 'main', 'tokens.json');

    // 1. The earlier deploy stores three records.
    const seeder = start('seed', path);
    const seeded = await seeder.waitFor('seeded');
    await finished(seeder);
    const seedStart = seeded.start as number;
    const seedEnd = seeded.end as number;
    const now = Date.now();
    expect(now - seedEnd).toBeGreaterThanOrEqual(SHIFT);
    const fileAfterSeed = await readFile(path);
    expect(findLeaks([fileAfterSeed.toString('utf8')], SECRETS)).toEqual([]);
    expect(findLeaks([fileAfterSeed.toString('latin1')], SECRETS)).toEqual([]);

    // 2. Today's deploy registers billing and reports, not legacy.
    const sent: string[] = [];
    let billingAsked = 0;
    const revokedKeys: boolean[] = [];
    const warden = createWarden({
      store: fileStore({ path, key: KEY }),
      [customFetch]: async (_input: RequestInfo | URL, init?: RequestInit) => {
        sent.push(new Headers(init?.headers).get('authorization') ?? '');
        return new Response(null, { status: 204 });
      },
    });
    const tampered: string[] = [];
    warden.on('tamper', ({ id }) => tampered.push(id));
    try {
      const billing = warden.register('billing', {
        source: customSource(async () => {
          billingAsked++;
          return { accessToken: 'tw-never-used-token-x1', expiresIn: 3600 };
        }),
        origins: [AUDIT_API],
      });
      warden.register('reports', {
        source: apiKey({
          key: AUDIT_TOKENS.reports,
          header: 'X-API-Key',
          revoke: ({ revealKey }) => void revokedKeys.push(revealKey() === AUDIT_TOKENS.reports),
        }),
        origins: [AUDIT_API],
      });
      // The stored billing token is still valid for 5 days: used as is, no token request.
      expect((await billing.fetch(`${AUDIT_API}/v1/invoices`)).status).toBe(204);
      expect(sent).toEqual([`Bearer ${AUDIT_TOKENS.billing}`]);
      expect(billingAsked).toBe(0);
      const usedAt = Date.now();

      // Inventory: registered credentials first, then the orphan; fingerprints, never tokens.
      const inventory = await warden.inventory();
      expect(inventory.map((e) => [e.id, e.registered, e.state])).toEqual([
        ['billing', true, 'valid'],
        ['reports', true, 'valid'],
        ['legacy', false, 'orphaned'],
      ]);
      const byId = Object.fromEntries(inventory.map((e) => [e.id, e])) as Record<
        string,
        InventoryEntry
      >;
      // (Its `uses` before the metadata flush: see the next test.)
      expect(byId.billing).toMatchObject({
        sourceKind: 'custom',
        refreshes: 1,
        hasRefreshToken: false,
        fingerprint: sha16(AUDIT_TOKENS.billing),
      });
      expect(byId.billing?.issuedAt).toBeGreaterThanOrEqual(seedStart);
      expect(byId.billing?.issuedAt).toBeLessThanOrEqual(seedEnd);
      expect((byId.billing?.expiresAt ?? 0) - (byId.billing?.issuedAt ?? 0)).toBe(
        BILLING_LIFETIME_S * 1000,
      );
      expect(byId.billing?.lastUsedAt).toBeGreaterThanOrEqual(now);
      expect(byId.billing?.lastUsedAt).toBeLessThanOrEqual(usedAt);
      expect(byId.reports).toMatchObject({
        sourceKind: 'api_key',
        uses: 1,
        hasRefreshToken: false,
        fingerprint: sha16(AUDIT_TOKENS.reports),
      });
      expect(byId.reports?.lastUsedAt).toBeGreaterThanOrEqual(seedStart);
      expect(byId.reports?.lastUsedAt).toBeLessThanOrEqual(seedEnd);
      expect(byId.legacy).toMatchObject({
        registered: false,
        uses: 1,
        refreshes: 1,
        hasRefreshToken: true,
        fingerprint: sha16(AUDIT_TOKENS.legacy),
      });
      expect(byId.legacy?.sourceKind).toBeUndefined();
      expect(byId.legacy?.createdAt).toBeGreaterThanOrEqual(seedStart);
      expect(byId.legacy?.createdAt).toBeLessThanOrEqual(seedEnd);
      for (const entry of inventory) expect(entry.fingerprint).toMatch(/^[0-9a-f]{16}$/);

      // Audit with the default thresholds (idle 30 d, max age 90 d, expiring within 7 d).
      const findings = await warden.audit();
      expect(pairs(findings)).toEqual(['billing:expiring', 'legacy:orphaned', 'reports:unused']);
      const get = (id: string, list = findings) => list.find((f) => f.id === id);
      expect(get('reports')?.idleMs).toBeGreaterThanOrEqual(SHIFT);
      expect(get('reports')?.fingerprint).toBe(sha16(AUDIT_TOKENS.reports));
      expect(get('billing')?.expiresAt).toBe(byId.billing?.expiresAt);
      expect(get('legacy')).toMatchObject({ registered: false, state: 'orphaned', action: 'none' });

      // Thresholds move the findings: both keys are over 30 days old, nothing idle for 60 days
      // or expiring within a day.
      const strict = await warden.audit({ maxAge: '30d', idleFor: '60d', expiringWithin: '1d' });
      expect(pairs(strict)).toEqual(['billing:over-age', 'legacy:orphaned', 'reports:over-age']);
      expect(get('billing', strict)?.ageMs).toBeGreaterThanOrEqual(SHIFT);
      // And so does time: 60 days from now everything is idle and older than 90 days.
      const later = await warden.audit({ now: new Date(now + 60 * DAY) });
      expect(pairs(later)).toEqual([
        'billing:expiring',
        'billing:over-age',
        'billing:unused',
        'legacy:orphaned',
        'reports:over-age',
        'reports:unused',
      ]);

      const outputs = [inventory, findings, strict, later];
      expect(findLeaks(outputs, SECRETS)).toEqual([]);
      const printed = [JSON.stringify(outputs), inspect(outputs, { depth: 10, showHidden: true })];
      for (const secret of SECRETS) for (const text of printed) expect(text).not.toContain(secret);

      // Acting on the findings: the unused key is revoked, the orphan deleted.
      const acted = await warden.audit({ revoke: true });
      expect(acted.map((f) => [f.id, f.kind, f.action, f.revocation?.outcome]).sort()).toEqual([
        ['billing', 'expiring', 'none', undefined],
        ['legacy', 'orphaned', 'deleted', undefined],
        ['reports', 'unused', 'revoked', 'revoked'],
      ]);
      expect(revokedKeys).toEqual([true]);
      expect(warden.get('reports')).toBeUndefined();
      expect(warden.credentials().map((c) => c.id)).toEqual(['billing']);
      expect(findLeaks([acted], SECRETS)).toEqual([]);
      expect((await warden.inventory()).map((e) => e.id)).toEqual(['billing']);
    } finally {
      await warden.close();
    }
    expect(tampered).toEqual([]);

    // 3. A third process reading the file sees only billing.
    const reader = start('inventory', path);
    const [listed, ids] = await Promise.all([reader.waitFor('inventory'), reader.waitFor('ids')]);
    await finished(reader);
    expect(ids.ids).toEqual(['billing']);
    expect(listed.entries).toEqual([
      expect.objectContaining({
        id: 'billing',
        registered: false,
        state: 'orphaned',
        uses: 2,
        fingerprint: sha16(AUDIT_TOKENS.billing),
      }),
    ]);

    // The file: one record, no token, nothing left beside it.
    const file = await readFile(path);
    expect(findLeaks([file.toString('utf8'), file.toString('latin1')], SECRETS)).toEqual([]);
    const raw = JSON.parse(file.toString('utf8')) as { records: Record<string, unknown> };
    expect(Object.keys(raw.records)).toEqual(['billing']);
    expect(await readdir(join(dir, 'main'))).toEqual(['tokens.json']);
  }, 60_000);

  // The inventory adds this process's unflushed uses to the stored count, which holds the
  // uses every process has flushed: "requests that carried a token ... over its life".
  it('counts the uses of every process before the usage metadata is flushed', async () => {
    const path = join(dir, 'uses', 'tokens.json');
    const seeder = start('seed', path);
    await seeder.waitFor('seeded');
    await finished(seeder);
    const warden = createWarden({
      store: fileStore({ path, key: KEY }),
      [customFetch]: async () => new Response(null, { status: 204 }),
    });
    try {
      const billing = warden.register('billing', {
        source: customSource(async () => ({
          accessToken: 'tw-never-used-token-x2',
          expiresIn: 60,
        })),
        origins: [AUDIT_API],
      });
      await billing.fetch(`${AUDIT_API}/v1/invoices`);
      await billing.fetch(`${AUDIT_API}/v1/invoices`);
      expect(billing.status().requests).toBe(2);
      const [entry] = await warden.inventory();
      expect(entry?.fingerprint).toBe(sha16(AUDIT_TOKENS.billing));
      // One request in the seeding process, two here.
      expect(entry?.uses).toBe(3);
    } finally {
      await warden.close();
    }
  }, 60_000);
});
