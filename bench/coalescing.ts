// Scenario 2: refresh coalescing. Each client gets a token that lives LIFETIME ms, waits until it
// has expired, then sends CONCURRENCY requests at once; the loopback server counts the calls to
// the client's token endpoint (target: 1) and the 401s it answered. ROUNDS rounds per client.
import { axiosRefresh, type Client, kyHook, tokenwarden } from './lib/clients.js';
import { scenario, sleep } from './lib/results.js';
import { startServer } from './lib/server.js';
import { summarise } from './lib/stats.js';

const CONCURRENCY = 1_000;
const ROUNDS = 3;
const LIFETIME = 1_000;
const TOKEN_DELAY = 100;

interface Round {
  tokenCalls: number;
  rejected: number;
  apiCalls: number;
  failed: number;
  ms: number;
}

async function main(): Promise<void> {
  const run = scenario('coalescing');
  const server = await startServer();
  await server.configure({ delay: TOKEN_DELAY });
  const names = {
    twfetch: 'tokenwarden fetch',
    twky: 'tokenwarden ky',
    kyhook: 'ky + hand-written hook (refresh on 401, as in its readme)',
    kyshared: 'ky + hand-written hook sharing one refresh promise',
    axios: 'axios + axios-auth-refresh (defaults)',
    axiosnodedup: 'axios + axios-auth-refresh (deduplicateRefresh: false)',
  } as const;
  const rounds: Record<string, Round[]> = Object.fromEntries(
    Object.keys(names).map((k) => [k, []]),
  );
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Fresh clients each round, so that each starts from one token, now expired.
      const clients: Client[] = [
        tokenwarden({ name: 'twfetch', origin: server.origin }, 'fetch'),
        tokenwarden({ name: 'twky', origin: server.origin }, 'ky'),
        kyHook({ name: 'kyhook', origin: server.origin }),
        kyHook({ name: 'kyshared', origin: server.origin }, { shareRefresh: true }),
        axiosRefresh({ name: 'axios', origin: server.origin }, 'http'),
        axiosRefresh({ name: 'axiosnodedup', origin: server.origin }, 'http', {
          deduplicateRefresh: false,
        }),
      ];
      await server.configure({ lifetime: LIFETIME });
      for (const client of clients) await client.get('prime');
      await sleep(LIFETIME + 200);
      // The new tokens outlive the burst, so every token call counted is one the burst caused.
      await server.configure({ lifetime: 3_600_000 });
      await server.reset();
      for (const client of clients) {
        const start = performance.now();
        const outcomes = await Promise.allSettled(
          Array.from({ length: CONCURRENCY }, (_, i) => client.get(`items/${i}`)),
        );
        const ms = performance.now() - start;
        const stats = (await server.stats())[client.name] ?? {
          tokenCalls: 0,
          apiCalls: 0,
          rejected: 0,
        };
        (rounds[client.name] as Round[]).push({
          ...stats,
          failed: outcomes.filter((o) => o.status === 'rejected').length,
          ms: Math.round(ms),
        });
      }
      await Promise.all(clients.map((c) => c.close()));
    }
  } finally {
    await server.close();
  }
  const results = Object.entries(names).map(([key, name]) => {
    const of = rounds[key] as Round[];
    return {
      name,
      tokenCalls: summarise(
        of.map((x) => x.tokenCalls),
        1,
      ),
      rejected: summarise(
        of.map((x) => x.rejected),
        1,
      ),
      apiCalls: summarise(
        of.map((x) => x.apiCalls),
        1,
      ),
      failed: summarise(
        of.map((x) => x.failed),
        1,
      ),
      burstMs: summarise(
        of.map((x) => x.ms),
        0,
      ),
      rounds: of,
    };
  });
  console.table(
    results.map((r) => ({
      client: r.name,
      'token calls (median)': r.tokenCalls.median,
      'token calls (max)': r.tokenCalls.max,
      '401s (median)': r.rejected.median,
      'API calls (median)': r.apiCalls.median,
      failed: r.failed.max,
      'burst ms': r.burstMs.median,
    })),
  );
  await run.write({
    concurrency: CONCURRENCY,
    rounds: ROUNDS,
    tokenLifetimeMs: LIFETIME,
    tokenEndpointDelayMs: TOKEN_DELAY,
    results,
  });
}

await main();
