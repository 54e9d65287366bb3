// The page of bench/storage-browser.ts, bundled by esbuild and run in Chromium: times one write
// (and one read) of a sealed record with indexedDbStore, next to the same record written as plain
// JSON with idb-keyval and to localStorage, as stores that keep tokens unencrypted do.
import { del, set } from 'idb-keyval';
import { indexedDbStore } from '../../src/browser/index.js';
import type { StoredRecord } from '../../src/stores/types.js';
import { TokenSet } from '../../src/token.js';

function randomText(bytes: number): string {
  const data = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...data)).replace(/[+/=]/g, 'x');
}

function recordOf(seed: number): StoredRecord {
  const now = Date.now();
  return {
    tokens: new TokenSet({
      accessToken: `eyJ${randomText(600)}.${seed}`,
      expiresAt: now + 3_600_000,
      issuedAt: now,
      refreshToken: randomText(32),
      scope: ['invoices:read', 'invoices:write'],
      idToken: `eyJ${randomText(400)}`,
    }),
    meta: { createdAt: now, refreshedAt: now, lastUsedAt: now, uses: seed, refreshes: 1 },
  };
}

function plain(record: StoredRecord): string {
  const t = record.tokens;
  return JSON.stringify({
    access_token: t.revealAccessToken(),
    refresh_token: t.revealRefreshToken(),
    expires_at: t.expiresAt,
    scope: t.scope,
    meta: record.meta,
  });
}

type Op = (i: number) => Promise<unknown> | unknown;

async function rounds(op: Op, count: number, iterations: number): Promise<number[]> {
  for (let i = 0; i < 5; i++) await op(i);
  const perRound: number[] = [];
  for (let r = 0; r < count; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await op(i);
    perRound.push(((performance.now() - start) * 1000) / iterations);
  }
  return perRound;
}

const api = {
  async run(count: number, iterations: number): Promise<Record<string, number[]>> {
    const store = indexedDbStore({ name: 'tw-bench' });
    const record = recordOf(1);
    const json = plain(record);
    await store.set('billing', record);
    const cases: Record<string, Op> = {
      'indexedDbStore set (sealed)': () => store.set('billing', record),
      'indexedDbStore get (open)': () => store.get('billing'),
      'idb-keyval set, plain JSON': () => set('plain-billing', json),
      'localStorage.setItem, plain JSON': () => localStorage.setItem('plain-billing', json),
    };
    const out: Record<string, number[]> = Object.fromEntries(
      Object.keys(cases).map((name) => [name, [] as number[]]),
    );
    // Interleaved, one round of each in turn, as in Node.
    for (let r = 0; r < count; r++) {
      for (const [name, op] of Object.entries(cases)) {
        (out[name] as number[]).push(...(await rounds(op, 1, iterations)));
      }
    }
    await store.delete('billing');
    await del('plain-billing');
    localStorage.removeItem('plain-billing');
    return out;
  },
};

export type IdbPageApi = typeof api;
// Not declared on Window: the test pages declare their own `tw`.
(window as unknown as { tw: IdbPageApi }).tw = api;
