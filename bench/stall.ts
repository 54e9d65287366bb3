// Scenario 3: stall-free refresh. Every client sends a steady stream of requests (one every
// INTERVAL ms, not waiting for the previous one) for LIFETIMES token lifetimes, against a token
// endpoint that takes TOKEN_DELAY ms to answer. The first token is fetched before the stream
// starts. A request "waited for a refresh" when it took at least half the token endpoint's delay
// (a loopback request otherwise takes about a millisecond). The streams of all clients run at
// the same time, each against its own tokens, beside a control stream whose token never expires.
import {
  axiosRefresh,
  type Client,
  kyHook,
  rawFetch,
  tokenwarden,
  type WardenClient,
} from './lib/clients.js';
import { scenario, sleep } from './lib/results.js';
import { startServer } from './lib/server.js';
import { quantile, round } from './lib/stats.js';

const LIFETIME = 2_000;
const LIFETIMES = 20;
const TOKEN_DELAY = 200;
const INTERVAL = 20;
const WAITED_MS = TOKEN_DELAY / 2;

interface Stream {
  readonly latencies: number[];
  failed: number;
}

function stream(client: Client, until: number): Promise<Stream> {
  const result: Stream = { latencies: [], failed: 0 };
  const pending: Promise<void>[] = [];
  return new Promise((resolve) => {
    let i = 0;
    const timer = setInterval(() => {
      if (performance.now() >= until) {
        clearInterval(timer);
        void Promise.all(pending).then(() => resolve(result));
        return;
      }
      const start = performance.now();
      pending.push(
        client.get(`items/${i++}`).then(
          () => void result.latencies.push(performance.now() - start),
          () => {
            result.failed++;
            result.latencies.push(performance.now() - start);
          },
        ),
      );
    }, INTERVAL);
  });
}

async function main(): Promise<void> {
  const run = scenario('stall');
  const server = await startServer();
  const origin = server.origin;
  // The control: a token that outlives the run, so it never refreshes. Its slow requests are the
  // machine's pauses (GC, other processes), which the threshold cannot tell from a refresh.
  const control = await rawFetch({ name: 'control', origin });
  await server.configure({ lifetime: LIFETIME, delay: TOKEN_DELAY });
  const clients: [string, Client][] = [
    ['control: raw fetch, one token that never expires', control],
    ['tokenwarden fetch (defaults)', tokenwarden({ name: 'twfetch', origin }, 'fetch')],
    [
      'tokenwarden fetch (keepFresh: true)',
      tokenwarden({ name: 'twfresh', origin }, 'fetch', { keepFresh: true }),
    ],
    ['tokenwarden ky (defaults)', tokenwarden({ name: 'twky', origin }, 'ky')],
    [
      'ky + hand-written hook sharing one refresh promise',
      kyHook({ name: 'kyshared', origin }, { shareRefresh: true }),
    ],
    [
      'axios + axios-auth-refresh (deduplicateRefresh: false)',
      axiosRefresh({ name: 'axiosnodedup', origin }, 'http', { deduplicateRefresh: false }),
    ],
    ['axios + axios-auth-refresh (defaults)', axiosRefresh({ name: 'axios', origin }, 'http')],
  ];
  let streams: Stream[];
  let stats: Awaited<ReturnType<typeof server.stats>>;
  try {
    for (const [, client] of clients) await client.get('prime');
    await server.reset();
    for (const [, client] of clients) {
      const refreshes = (client as Partial<WardenClient>).refreshes;
      if (refreshes) for (const reason of Object.keys(refreshes)) delete refreshes[reason];
    }
    const until = performance.now() + LIFETIMES * LIFETIME;
    streams = await Promise.all(clients.map(([, client]) => stream(client, until)));
    stats = await server.stats();
    await Promise.all(clients.map(([, client]) => client.close()));
  } finally {
    await server.close();
  }
  const results = clients.map(([name, client], i) => {
    const { latencies, failed } = streams[i] as Stream;
    const s = stats[client.name] ?? { tokenCalls: 0, apiCalls: 0, rejected: 0 };
    const refreshes = (client as Partial<WardenClient>).refreshes;
    return {
      name,
      // tokenwarden says why it refreshed: `initial` and `forced` refreshes are awaited by
      // requests, `proactive` and `scheduled` ones run beside them.
      ...(refreshes ? { refreshReasons: { ...refreshes } } : {}),
      requests: latencies.length,
      waited: latencies.filter((ms) => ms >= WAITED_MS).length,
      failed,
      p50Ms: round(quantile(latencies, 0.5), 2),
      p99Ms: round(quantile(latencies, 0.99), 2),
      maxMs: round(Math.max(...latencies), 1),
      tokenCalls: s.tokenCalls,
      rejected401: s.rejected,
    };
  });
  console.table(results);
  await run.write({
    tokenLifetimeMs: LIFETIME,
    lifetimes: LIFETIMES,
    tokenEndpointDelayMs: TOKEN_DELAY,
    intervalMs: INTERVAL,
    waitedThresholdMs: WAITED_MS,
    results,
  });
  await sleep(0);
}

await main();
