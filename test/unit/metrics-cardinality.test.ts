// The metrics snapshot stays bounded whatever URLs a credential calls (issue 5): 100,000
// requests through credential.fetch, each to a distinct path and query, spread over 300 origins,
// keep at most 101 origin series per credential — the first 100 origins seen, the rest added up
// under "(other)" — and no path or query reaches the snapshot or an observer.
// (test/unit/metrics.test.ts covers 100,000 URLs on one origin, and the cap on the recorder.)
import { describe, expect, it } from 'vitest';
import {
  createWarden,
  customFetch,
  customSource,
  type OriginMetrics,
  type RequestRecord,
} from '../../src/index.js';
import { MAX_ORIGINS, OTHER_ORIGINS } from '../../src/observe/metrics.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const REQUESTS = 100_000;
const ORIGINS = 300;
const originOf = (n: number) => `https://h${n}.example.test`;

/** The status the stub answers for request `i`: some 404s and 500s among the 200s. */
function statusOf(i: number): number {
  if (i % 97 === 0) return 500;
  if (i % 31 === 0) return 404;
  return 200;
}

/** Request `i` goes to origin (i * 7919) mod 300: every origin, in a scrambled first-seen order. */
function targetOf(i: number): string {
  const origin = originOf((i * 7919) % ORIGINS);
  return `${origin}/items/${i}/detail?q=${i}&page=${i % 13}#frag-${i}`;
}

type Expected = { requests: number; ok: number; clientErrors: number; serverErrors: number };

function tally(into: Map<string, Expected>, key: string, status: number): void {
  const figures = into.get(key) ?? { requests: 0, ok: 0, clientErrors: 0, serverErrors: 0 };
  figures.requests++;
  if (status < 300) figures.ok++;
  else if (status < 500) figures.clientErrors++;
  else figures.serverErrors++;
  into.set(key, figures);
}

describe('metrics cardinality through credential.fetch', () => {
  it('keeps ≤ 101 origin series per credential with 100,000 distinct URLs on 300 origins', async () => {
    const seenUrls = new Set<string>();
    const warden = createWarden({
      [customFetch]: async (input: RequestInfo | URL) => {
        const url = input instanceof Request ? input.url : String(input);
        seenUrls.add(url);
        const match = /\/items\/(\d+)\//.exec(url);
        return new Response(null, { status: statusOf(Number(match?.[1])) });
      },
    });
    const records: RequestRecord[] = [];
    let recordsWithPath = 0;
    warden.observe({
      request(record) {
        if (records.length < 10) records.push(record);
        if (/\/items\/|\?|#/.test(JSON.stringify(record))) recordsWithPath++;
      },
    });
    try {
      const allowed = Array.from({ length: ORIGINS }, (_, n) => originOf(n));
      const token = customSource(async () => ({
        accessToken: SENTINEL.accessToken,
        expiresIn: 3600,
      }));
      const bulk = warden.register('bulk', { source: token, origins: allowed });
      // A second credential over the same origins has its own cap.
      const side = warden.register('side', { source: token, origins: allowed });

      const expected = new Map<string, Expected>();
      const firstSeen: string[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const target = targetOf(i);
        const origin = new URL(target).origin;
        if (!firstSeen.includes(origin)) firstSeen.push(origin);
        const key = firstSeen.indexOf(origin) < MAX_ORIGINS ? origin : OTHER_ORIGINS;
        tally(expected, key, statusOf(i));
        const response = await bulk.fetch(target);
        expect(response.status).toBe(statusOf(i));
      }
      // The side credential: one request to each origin, in reverse order.
      for (let n = ORIGINS - 1; n >= 0; n--) await side.fetch(`${originOf(n)}/side/${n}?x=${n}`);

      expect(seenUrls.size).toBe(REQUESTS + ORIGINS);
      expect(firstSeen).toHaveLength(ORIGINS);
      const snapshot = warden.metrics();
      const figures = snapshot.credentials.bulk;
      expect(figures?.requests).toBe(REQUESTS);
      const origins = figures?.origins ?? {};
      expect(Object.keys(origins)).toHaveLength(MAX_ORIGINS + 1);
      expect(Object.keys(origins).sort()).toEqual(
        [...firstSeen.slice(0, MAX_ORIGINS), OTHER_ORIGINS].sort(),
      );
      // Every series holds exactly the requests that belong to it; "(other)" holds the rest.
      for (const [key, want] of expected) {
        const got = origins[key] as OriginMetrics | undefined;
        expect({ key, ...want }).toEqual({
          key,
          requests: got?.requests,
          ok: got?.ok,
          clientErrors: got?.clientErrors,
          serverErrors: got?.serverErrors,
        });
        expect(got?.networkErrors).toBe(0);
        expect(got?.latencyMs.count).toBe(want.requests);
      }
      const other = expected.get(OTHER_ORIGINS);
      const kept = [...expected.entries()].filter(([key]) => key !== OTHER_ORIGINS);
      expect(other?.requests).toBe(REQUESTS - kept.reduce((sum, [, f]) => sum + f.requests, 0));
      expect(other?.requests).toBeGreaterThan(60_000);
      const sum = (field: keyof Expected) =>
        Object.values(origins).reduce((total, o) => total + o[field], 0);
      expect(sum('requests')).toBe(REQUESTS);
      expect({
        ok: figures?.ok,
        clientErrors: figures?.clientErrors,
        serverErrors: figures?.serverErrors,
      }).toEqual({
        ok: sum('ok'),
        clientErrors: sum('clientErrors'),
        serverErrors: sum('serverErrors'),
      });

      const sideOrigins = snapshot.credentials.side?.origins ?? {};
      expect(Object.keys(sideOrigins)).toHaveLength(MAX_ORIGINS + 1);
      expect(sideOrigins[originOf(ORIGINS - 1)]?.requests).toBe(1);
      expect(sideOrigins[originOf(0)]).toBeUndefined();
      expect(sideOrigins[OTHER_ORIGINS]?.requests).toBe(ORIGINS - MAX_ORIGINS);

      // Bounded and free of any path, query, fragment or token.
      const json = JSON.stringify(snapshot);
      expect(json.length).toBeLessThan(100_000);
      expect(json).not.toMatch(/\/items\/|\/side\/|\/detail|\?|#|q=|page=|frag-/);
      expect(
        Object.keys(origins).every(
          (key) => key === OTHER_ORIGINS || /^https:\/\/h\d+\.example\.test$/.test(key),
        ),
      ).toBe(true);
      expect(findLeaks([snapshot], [SENTINEL.accessToken])).toEqual([]);
      expect(recordsWithPath).toBe(0);
      expect(records[0]).toMatchObject({ id: 'bulk', method: 'GET', origin: originOf(0) });
    } finally {
      await warden.close();
    }
  }, 120_000);
});
