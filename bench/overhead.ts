// Scenario 1: steady-state overhead per request, with a valid token (no refresh happens).
//   (a) over an in-process stub fetch: the clients' own cost, µs per request;
//   (b) against a loopback HTTP server in another process: the latency each adds, in %.
// Cases run interleaved in short batches (one batch of each per round, rotating order), many
// rounds, so that the load of a shared machine hits every case alike; each figure is the median
// over rounds of the mean time per request, each ratio the median of the per-round ratios.
import { performance } from 'node:perf_hooks';
import {
  axiosRefresh,
  type Client,
  type ClientSetup,
  kyHook,
  rawFetch,
  tokenwarden,
} from './lib/clients.js';
import { scenario } from './lib/results.js';
import { startServer } from './lib/server.js';
import { interleave, ratio, type Summary, summarise } from './lib/stats.js';
import { jwtLikeToken } from './lib/token.js';

const STUB_ROUNDS = 401;
const STUB_BATCH = 25;
const LOOPBACK_ROUNDS = 601;
const LOOPBACK_BATCH = 10;

const BODY = '{"ok":true}';
/** The token every stub client sends: JWT-sized, as in production. */
const STATIC_TOKEN = jwtLikeToken('stub', 0, Math.floor(Date.now() / 1000) + 86_400);
/** An in-process fetch: a fresh JSON response, as a real fetch would return. */
const stub = (async () =>
  new Response(BODY, {
    status: 200,
    headers: { 'content-type': 'application/json' },
  })) as unknown as typeof fetch;

type CaseName =
  | 'raw fetch'
  | 'ky + hand-written hook'
  | 'axios + axios-auth-refresh (fetch adapter)'
  | 'axios + axios-auth-refresh (http adapter)'
  | 'tokenwarden fetch'
  | 'tokenwarden ky'
  | 'tokenwarden fetch, 24-character token'
  | 'tokenwarden ky, 24-character token';

async function clientsFor(
  origin: string,
  fetchImpl: typeof fetch | undefined,
  withHttpAdapter: boolean,
): Promise<Partial<Record<CaseName, Client>>> {
  const setup = (name: string): ClientSetup => ({
    name,
    origin,
    ...(fetchImpl === undefined ? {} : { fetch: fetchImpl, staticToken: STATIC_TOKEN }),
  });
  return {
    'raw fetch': await rawFetch(setup('raw')),
    'ky + hand-written hook': kyHook(setup('kyhook')),
    'axios + axios-auth-refresh (fetch adapter)': axiosRefresh(setup('axiosfetch'), 'fetch'),
    ...(withHttpAdapter
      ? { 'axios + axios-auth-refresh (http adapter)': axiosRefresh(setup('axioshttp'), 'http') }
      : {}),
    'tokenwarden fetch': tokenwarden(setup('twfetch'), 'fetch'),
    'tokenwarden ky': tokenwarden(setup('twky'), 'ky'),
    // The same with a 24-character opaque token: how much of the cost grows with token length.
    ...(fetchImpl === undefined
      ? {
          'tokenwarden ky, 24-character token': tokenwarden(setup('shortky'), 'ky'),
        }
      : {
          'tokenwarden fetch, 24-character token': tokenwarden(
            { ...setup('shortfetch'), staticToken: 'opaque-0123456789abcdefg' },
            'fetch',
          ),
        }),
  };
}

async function batch(client: Client, size: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < size; i++) await client.get(`items/${i}?page=${i & 7}`);
  return ((performance.now() - start) * 1000) / size;
}

interface CaseResult {
  readonly name: string;
  /** µs per request. */
  readonly perRequestUs: Summary;
  /** Per-round ratio to raw fetch. */
  readonly vsRawFetch: Summary;
  /** Per-round ratio to the hand-written ky hook. */
  readonly vsKyHook: Summary;
}

async function measure(
  clients: Partial<Record<CaseName, Client>>,
  rounds: number,
  size: number,
): Promise<CaseResult[]> {
  const entries = Object.entries(clients) as [CaseName, Client][];
  // Warm-up: first tokens, connections, JIT.
  for (const [, client] of entries) await batch(client, 500);
  const perRound = await interleave(
    Object.fromEntries(
      entries.map(([name, client]) => [name, () => batch(client, size)]),
    ) as Record<CaseName, () => Promise<number>>,
    rounds,
  );
  const raw = perRound['raw fetch'];
  const hook = perRound['ky + hand-written hook'];
  return entries.map(([name]) => ({
    name,
    perRequestUs: summarise(perRound[name], 2),
    vsRawFetch: ratio(perRound[name], raw),
    vsKyHook: ratio(perRound[name], hook),
  }));
}

async function main(): Promise<void> {
  const run = scenario('overhead');

  const stubClients = await clientsFor('https://api.example.test', stub, false);
  let stubResults: CaseResult[];
  try {
    stubResults = await measure(stubClients, STUB_ROUNDS, STUB_BATCH);
  } finally {
    await Promise.all(Object.values(stubClients).map((c) => c?.close()));
  }
  console.table(
    stubResults.map((r) => ({
      'stub: case': r.name,
      'µs/request': r.perRequestUs.median,
      q1: r.perRequestUs.q1,
      q3: r.perRequestUs.q3,
      '× hook': r.vsKyHook.median,
    })),
  );

  const server = await startServer();
  let loopbackResults: CaseResult[];
  try {
    const loopbackClients = await clientsFor(server.origin, undefined, true);
    try {
      loopbackResults = await measure(loopbackClients, LOOPBACK_ROUNDS, LOOPBACK_BATCH);
      const stats = await server.stats();
      const refused = Object.values(stats).reduce((sum, s) => sum + s.rejected, 0);
      if (refused > 0) throw new Error(`the server refused ${refused} requests: not steady state`);
    } finally {
      await Promise.all(Object.values(loopbackClients).map((c) => c?.close()));
    }
  } finally {
    await server.close();
  }
  console.table(
    loopbackResults.map((r) => ({
      'loopback: case': r.name,
      'µs/request': r.perRequestUs.median,
      '× raw fetch': r.vsRawFetch.median,
      '× hook': r.vsKyHook.median,
      'hook q1': r.vsKyHook.q1,
      'hook q3': r.vsKyHook.q3,
    })),
  );

  await run.write({
    tokenLength: STATIC_TOKEN.length,
    stub: { rounds: STUB_ROUNDS, requestsPerRound: STUB_BATCH, cases: stubResults },
    loopback: { rounds: LOOPBACK_ROUNDS, requestsPerRound: LOOPBACK_BATCH, cases: loopbackResults },
  });
}

await main();
