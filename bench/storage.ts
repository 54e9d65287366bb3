// npm run bench: the cost of storing tokens at rest (issue 3). Sealing and opening one record
// (the JWE envelope every persistent store uses), and one file-store write and read, on a file
// holding 1 and 50 records. Prints a table and writes bench/results/storage.json.
//
// Each case runs a warm-up round, then ROUNDS rounds of its iterations; the figure is the median
// over rounds of the mean time per operation, so one slow round (a GC, a disk flush) does not
// move it. Absolute numbers depend on the machine and, for the file store, on fsync latency.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { arch, cpus, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { fileStore } from '../src/node/file-store.js';
import { openRecord, sealRecord } from '../src/stores/envelope.js';
import { staticKey } from '../src/stores/keys.js';
import type { StoredRecord } from '../src/stores/types.js';
import { TokenSet } from '../src/token.js';
import { median, round, sorted } from './lib/stats.js';

const ROUNDS = 7;

interface Result {
  readonly name: string;
  readonly iterations: number;
  readonly rounds: number;
  /** Median over rounds of the mean time per operation, in microseconds. */
  readonly medianUs: number;
  readonly minUs: number;
  readonly maxUs: number;
  readonly opsPerSecond: number;
}

async function measure(
  name: string,
  iterations: number,
  op: (i: number) => Promise<unknown>,
): Promise<Result> {
  for (let i = 0; i < Math.min(iterations, 20); i++) await op(i);
  const perOp: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await op(i);
    perOp.push(((performance.now() - start) * 1000) / iterations);
  }
  const ordered = sorted(perOp);
  const mid = median(ordered);
  return {
    name,
    iterations,
    rounds: ROUNDS,
    medianUs: round(mid, 1),
    minUs: round(ordered[0] as number, 1),
    maxUs: round(ordered[ordered.length - 1] as number, 1),
    opsPerSecond: Math.round(1e6 / mid),
  };
}

/** A realistic token set: a JWT-sized access token, a refresh token, scopes, an ID token. */
function recordOf(seed: number): StoredRecord {
  const now = Date.now();
  return {
    tokens: new TokenSet({
      accessToken: `eyJ${randomBytes(600).toString('base64url')}.${seed}`,
      expiresAt: now + 3_600_000,
      issuedAt: now,
      refreshToken: randomBytes(32).toString('base64url'),
      scope: ['invoices:read', 'invoices:write'],
      idToken: `eyJ${randomBytes(400).toString('base64url')}`,
    }),
    meta: { createdAt: now, refreshedAt: now, lastUsedAt: now, uses: seed, refreshes: 1 },
  };
}

async function main(): Promise<void> {
  const keyBytes = randomBytes(32);
  const keys = staticKey(new Uint8Array(keyBytes));
  const key = await keys.current();
  const record = recordOf(1);
  const sealed = await sealRecord(record, 'billing', key);

  const results: Result[] = [];
  results.push(await measure('seal one record', 500, () => sealRecord(record, 'billing', key)));
  results.push(await measure('open one record', 500, () => openRecord(sealed, 'billing', keys)));
  results.push(
    await measure('seal + open one record', 500, async () =>
      openRecord(await sealRecord(record, 'billing', key), 'billing', keys),
    ),
  );

  const dir = await mkdtemp(join(tmpdir(), 'tw-bench-'));
  try {
    for (const size of [1, 50]) {
      const path = join(dir, `tokens-${size}.json`);
      const store = fileStore({ path, key: new Uint8Array(keyBytes) });
      for (let i = 1; i < size; i++) await store.set(`other-${i}`, recordOf(i));
      await store.set('billing', record);
      results.push(
        await measure(`fileStore set, file of ${size}`, 40, () => store.set('billing', record)),
      );
      results.push(
        await measure(`fileStore get, file of ${size}`, 200, () => store.get('billing')),
      );
    }
    // The peer of a file-store write: the same record as plain JSON, written as atomically
    // (temp file, fsync, rename, directory fsync), with no seal, no lock and no compare-and-swap.
    const plainPath = join(dir, 'plain.json');
    const plainJson = JSON.stringify({
      access_token: record.tokens.revealAccessToken(),
      refresh_token: record.tokens.revealRefreshToken(),
      expires_at: record.tokens.expiresAt,
      meta: record.meta,
    });
    results.push(
      await measure(
        'plain JSON file write (temp, fsync, rename, dir fsync), unsealed',
        40,
        async () => {
          const handle = await open(`${plainPath}.tmp`, 'w', 0o600);
          try {
            await handle.writeFile(plainJson);
            await handle.sync();
          } finally {
            await handle.close();
          }
          await rename(`${plainPath}.tmp`, plainPath);
          const directory = await open(dir, 'r');
          try {
            await directory.sync();
          } finally {
            await directory.close();
          }
        },
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const table = results.map((r) => ({
    case: r.name,
    'median µs': r.medianUs,
    'min µs': r.minUs,
    'max µs': r.maxUs,
    'ops/s': r.opsPerSecond,
  }));
  console.table(table);

  const out = fileURLToPath(new URL('./results/', import.meta.url));
  await mkdir(out, { recursive: true });
  const environment = {
    node: process.version,
    platform: platform(),
    arch: arch(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
  };
  await writeFile(
    join(out, 'storage.json'),
    `${JSON.stringify({ at: new Date().toISOString(), environment, results }, null, 2)}\n`,
  );
  console.log('written to bench/results/storage.json');
}

await main();
