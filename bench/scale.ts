// Scenario 4: 10,000 credentials in one warden (keepFresh, so each holds a refresh timer), all
// given their first (JWT-sized) token at the same instant.
//   - heap per credential (after a full GC), and the timers and handles the process holds, before,
//     with the tokens, and after close();
//   - the largest number of refreshes in any one second, for one-hour tokens from the refresh
//     times the credentials scheduled (status().refreshAt), and, to check that the schedule is
//     what happens, counted as the refreshes really run for 20-second tokens.
// Without jitter every credential would refresh in the same second.
import { getActiveResourcesInfo } from 'node:process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createWarden, customSource } from '../src/index.js';
import { scenario, sleep } from './lib/results.js';
import { round } from './lib/stats.js';
import { jwtLikeToken } from './lib/token.js';

const CREDENTIALS = 10_000;
const LONG_LIFETIME_S = 3_600;
const SHORT_LIFETIME_S = 20;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapUsed(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

// Counts live timers: getActiveResourcesInfo() lists only the ones that keep the process alive,
// and a warden's timers are unref()'d, so setTimeout itself is wrapped (calls pass through).
const liveTimers = new Set<unknown>();
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const handle = realSetTimeout(
    (...a: unknown[]) => {
      liveTimers.delete(handle);
      fn(...a);
    },
    ms,
    ...args,
  );
  liveTimers.add(handle);
  return handle;
}) as typeof setTimeout;
globalThis.clearTimeout = ((handle?: Parameters<typeof clearTimeout>[0]) => {
  liveTimers.delete(handle);
  realClearTimeout(handle);
}) as typeof clearTimeout;

/** Live timers (ref'd or not), and the handles and requests that keep the process alive. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = { timers: liveTimers.size };
  for (const kind of getActiveResourcesInfo()) {
    const key = `active ${kind}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The most events in any one-second window starting at an event, and the span of all. */
function peakPerSecond(times: readonly number[]): { peak: number; spreadS: number } {
  const ordered = [...times].sort((a, b) => a - b);
  let peak = 0;
  let j = 0;
  for (let i = 0; i < ordered.length; i++) {
    while ((ordered[i] as number) - (ordered[j] as number) >= 1_000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  const spreadS = ((ordered[ordered.length - 1] ?? 0) - (ordered[0] ?? 0)) / 1_000;
  return { peak, spreadS: round(spreadS, 1) };
}

async function fleet(lifetimeS: number, refreshes: number[]) {
  let issued = 0;
  const warden = createWarden();
  const credentials = Array.from({ length: CREDENTIALS }, (_, i) =>
    warden.register(`user-${i}`, {
      source: customSource(async () => {
        if (issued++ >= CREDENTIALS) refreshes.push(Date.now());
        const exp = Math.floor(Date.now() / 1000) + lifetimeS;
        return { accessToken: jwtLikeToken(`user-${i}`, issued, exp), expiresIn: lifetimeS };
      }),
      origins: ['https://api.example.test'],
      keepFresh: true,
    }),
  );
  await Promise.all(credentials.map((c) => c.getToken()));
  return { warden, credentials };
}

async function main(): Promise<void> {
  const run = scenario('scale');

  const baselineHeap = heapUsed();
  const baselineResources = resources();
  let long: Awaited<ReturnType<typeof fleet>> | undefined = await fleet(LONG_LIFETIME_S, []);
  const issuedAt = Date.now();
  const heldHeap = heapUsed();
  const heldResources = resources();
  const scheduled = long.credentials.map((c) => c.status().refreshAt ?? Number.NaN);
  const missing = scheduled.filter((at) => !Number.isFinite(at)).length;
  const schedule = peakPerSecond(scheduled.filter(Number.isFinite));
  const firstDueS = round((Math.min(...scheduled) - issuedAt) / 1_000, 1);
  await long.warden.close();
  long = undefined;
  await sleep(50);
  const closedHeap = heapUsed();
  const closedResources = resources();

  // Short tokens, to watch the schedule run: every credential refreshes once within 20 s.
  const refreshes: number[] = [];
  const short = await fleet(SHORT_LIFETIME_S, refreshes);
  const shortScheduled = peakPerSecond(
    short.credentials.map((c) => c.status().refreshAt ?? Number.NaN).filter(Number.isFinite),
  );
  const deadline = Date.now() + SHORT_LIFETIME_S * 1_000;
  while (refreshes.length < CREDENTIALS && Date.now() < deadline) await sleep(250);
  await short.warden.close();
  const observed = peakPerSecond(refreshes);

  const result = {
    credentials: CREDENTIALS,
    heapPerCredentialBytes: Math.round((heldHeap - baselineHeap) / CREDENTIALS),
    heapAfterCloseBytes: closedHeap - baselineHeap,
    resources: { before: baselineResources, held: heldResources, afterClose: closedResources },
    oneHourTokens: {
      lifetimeS: LONG_LIFETIME_S,
      withoutRefreshAt: missing,
      firstRefreshDueS: firstDueS,
      peakRefreshesPerSecond: schedule.peak,
      spreadS: schedule.spreadS,
      withoutJitter: CREDENTIALS,
    },
    twentySecondTokens: {
      lifetimeS: SHORT_LIFETIME_S,
      scheduledPeakPerSecond: shortScheduled.peak,
      scheduledSpreadS: shortScheduled.spreadS,
      refreshesRun: refreshes.length,
      observedPeakPerSecond: observed.peak,
      observedSpreadS: observed.spreadS,
    },
  };
  console.log(JSON.stringify(result, null, 2));
  await run.write(result);
}

await main();
