// npm run bench: the per-request cost of the metrics path (issue 5). credential.fetch over an
// in-process stub fetch, with and without the metrics recorder and with warden.observe()
// observers; and MetricsRecorder.observe on its own. Prints a table and writes
// bench/results/metrics.json.
//
// The fetch cases run interleaved in short batches, one batch of each per round in a rotating
// order, so that drift (GC, JIT, a busy neighbour) hits every case alike; the figure is the
// median over rounds of the mean time per request, and each overhead is the median of the
// per-round differences between two cases, with their range as the spread. "no metrics" is a
// credential on a runtime without an `observe` hook; "recorder only" is the same runtime whose
// hook is MetricsRecorder.observe; the "warden" cases are the runtime createWarden() builds
// (the recorder, then the observers). Everything else (token, policy, headers, usage metadata)
// is the same in every case.
import { mkdir, writeFile } from 'node:fs/promises';
import { arch, cpus, platform } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Credential, type CredentialRuntime } from '../src/credential.js';
import { createSkewClock } from '../src/internal/clock.js';
import { MetricsRecorder } from '../src/observe/metrics.js';
import { customSource } from '../src/sources/custom.js';
import { memoryStore } from '../src/stores/memory.js';
import type { RequestOutcome } from '../src/transport/types.js';
import { createWarden, customFetch, type Warden } from '../src/warden.js';
import { median, quantile, sorted } from './lib/stats.js';

const ROUNDS = 61;
const FETCHES_PER_ROUND = 1_000;
const OBSERVE_ROUNDS = 9;
const OBSERVES_PER_ROUND = 500_000;
const API = 'https://api.example.test';

interface Result {
  readonly name: string;
  readonly iterations: number;
  readonly rounds: number;
  /** Median over rounds of the mean time per request, in nanoseconds. */
  readonly medianNs: number;
  /** Quartiles over rounds: the spread. */
  readonly q1Ns: number;
  readonly q3Ns: number;
  readonly minNs: number;
  readonly maxNs: number;
}

interface Overhead {
  readonly name: string;
  /** Median over rounds of the difference of the two cases' means, in nanoseconds. */
  readonly medianNs: number;
  /** Quartiles of the per-round differences: the spread. */
  readonly q1Ns: number;
  readonly q3Ns: number;
  readonly minNs: number;
  readonly maxNs: number;
  /** The median difference as a share of the baseline's median, in percent. */
  readonly percent: number;
}

function summarise(name: string, iterations: number, perRound: readonly number[]): Result {
  const ordered = sorted(perRound);
  return {
    name,
    iterations,
    rounds: perRound.length,
    medianNs: Math.round(median(perRound)),
    q1Ns: Math.round(quantile(perRound, 0.25)),
    q3Ns: Math.round(quantile(perRound, 0.75)),
    minNs: Math.round(ordered[0] as number),
    maxNs: Math.round(ordered[ordered.length - 1] as number),
  };
}

function overhead(name: string, of: readonly number[], over: readonly number[]): Overhead {
  const differences = of.map((value, round) => value - (over[round] as number));
  const ordered = sorted(differences);
  return {
    name,
    medianNs: Math.round(median(differences)),
    q1Ns: Math.round(quantile(differences, 0.25)),
    q3Ns: Math.round(quantile(differences, 0.75)),
    minNs: Math.round(ordered[0] as number),
    maxNs: Math.round(ordered[ordered.length - 1] as number),
    percent: Math.round((median(differences) / median(over)) * 1000) / 10,
  };
}

/** The stub every case calls: an empty 204, made fresh as a real fetch would. */
const stub = (async () => new Response(null, { status: 204 })) as unknown as typeof fetch;

const source = () =>
  customSource(async () => ({ accessToken: 'bench-token-0123456789abcdef', expiresIn: 86_400 }));

/**
 * A credential on a bare runtime: without `recorder`, no `observe` hook at all (no metrics, no
 * observers); with it, the hook feeds that recorder and nothing else.
 */
function bareCredential(recorder?: MetricsRecorder): Credential {
  const runtime: CredentialRuntime = {
    store: memoryStore(),
    fetch: stub,
    clock: createSkewClock(),
    logger: undefined,
    emit: () => {},
    forget: () => {},
    ...(recorder === undefined
      ? {}
      : { observe: (id, outcome, issuedAt) => void recorder.observe(id, outcome, issuedAt) }),
  };
  return new Credential('bench', { source: source(), origins: [API] }, runtime);
}

function wardenWith(observers: number): { warden: Warden; credential: Credential } {
  const warden = createWarden({ [customFetch]: stub });
  let seen = 0;
  for (let i = 0; i < observers; i++) {
    warden.observe({
      request: (record) => {
        seen += record.status;
      },
    });
  }
  // Keeps the observers' work from being optimised away.
  if (seen < 0) console.log(seen);
  return { warden, credential: warden.register('bench', { source: source(), origins: [API] }) };
}

async function timeFetches(fetcher: typeof fetch, iterations: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await fetcher(`${API}/v1/items/${i}?page=${i & 7}`);
  return ((performance.now() - start) * 1e6) / iterations;
}

function timeObserves(recorder: MetricsRecorder, outcomes: readonly RequestOutcome[]): number {
  const issuedAt = Date.now() - 60_000;
  const start = performance.now();
  for (let i = 0; i < OBSERVES_PER_ROUND; i++) {
    recorder.observe('bench', outcomes[i % outcomes.length] as RequestOutcome, issuedAt);
  }
  return ((performance.now() - start) * 1e6) / OBSERVES_PER_ROUND;
}

function outcomesFor(origins: number): RequestOutcome[] {
  return Array.from({ length: Math.max(origins, 64) }, (_, i) => ({
    method: 'GET',
    origin: `https://h${i % origins}.example.test`,
    status: i % 16 === 0 ? 500 : 200,
    durationMs: 1 + (i % 50),
    retried: false,
    authenticated: true,
  }));
}

async function main(): Promise<void> {
  const bare = bareCredential();
  const recorded = bareCredential(new MetricsRecorder());
  const shipped = wardenWith(0);
  const one = wardenWith(1);
  const four = wardenWith(4);
  const fetchCases: { name: string; fetcher: typeof fetch; perRound: number[] }[] = [
    { name: 'raw stub fetch', fetcher: stub, perRound: [] },
    { name: 'credential.fetch, no metrics', fetcher: bare.fetch, perRound: [] },
    { name: 'credential.fetch, recorder only', fetcher: recorded.fetch, perRound: [] },
    {
      name: 'credential.fetch, metrics as shipped',
      fetcher: shipped.credential.fetch,
      perRound: [],
    },
    { name: 'credential.fetch, metrics + 1 observer', fetcher: one.credential.fetch, perRound: [] },
    {
      name: 'credential.fetch, metrics + 4 observers',
      fetcher: four.credential.fetch,
      perRound: [],
    },
  ];
  const observeCases = [
    { name: 'MetricsRecorder.observe, 1 origin', origins: 1, perRound: [] as number[] },
    {
      name: 'MetricsRecorder.observe, 300 origins (past the cap)',
      origins: 300,
      perRound: [] as number[],
    },
  ].map((c) => ({ ...c, recorder: new MetricsRecorder(), outcomes: outcomesFor(c.origins) }));

  try {
    // Warm-up: the first token, JIT.
    for (const c of fetchCases) await timeFetches(c.fetcher, 2_000);
    for (const c of observeCases) timeObserves(c.recorder, c.outcomes);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < fetchCases.length; k++) {
        const c = fetchCases[(round + k) % fetchCases.length] as (typeof fetchCases)[number];
        c.perRound.push(await timeFetches(c.fetcher, FETCHES_PER_ROUND));
      }
    }
    for (let round = 0; round < OBSERVE_ROUNDS; round++) {
      for (const c of observeCases) c.perRound.push(timeObserves(c.recorder, c.outcomes));
    }
  } finally {
    await bare.close();
    await recorded.close();
    await Promise.all([shipped, one, four].map(({ warden }) => warden.close()));
  }

  const results = [
    ...fetchCases.map((c) => summarise(c.name, FETCHES_PER_ROUND, c.perRound)),
    ...observeCases.map((c) => summarise(c.name, OBSERVES_PER_ROUND, c.perRound)),
  ];
  const [raw, none, recorderOnly, metrics, oneObserver, fourObservers] = fetchCases.map(
    (c) => c.perRound,
  ) as [number[], number[], number[], number[], number[], number[]];
  const overheads = [
    overhead('credential.fetch over the raw stub (no metrics)', none, raw),
    overhead('recorder only over no metrics', recorderOnly, none),
    overhead('metrics as shipped (warden) over no metrics', metrics, none),
    overhead('1 observer over metrics as shipped', oneObserver, metrics),
    overhead('4 observers over metrics as shipped', fourObservers, metrics),
  ];

  console.table(
    results.map((r) => ({
      case: r.name,
      'median ns': r.medianNs,
      'q1–q3 ns': `${r.q1Ns}–${r.q3Ns}`,
      'min ns': r.minNs,
      'max ns': r.maxNs,
      'req/s': Math.round(1e9 / r.medianNs),
    })),
  );
  console.table(
    overheads.map((o) => ({
      overhead: o.name,
      'median ns': o.medianNs,
      'q1–q3 ns': `${o.q1Ns}–${o.q3Ns}`,
      'min ns': o.minNs,
      'max ns': o.maxNs,
      '%': o.percent,
    })),
  );

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
    join(out, 'metrics.json'),
    `${JSON.stringify({ at: new Date().toISOString(), environment, results, overheads }, null, 2)}\n`,
  );
  console.log('written to bench/results/metrics.json');
}

await main();
