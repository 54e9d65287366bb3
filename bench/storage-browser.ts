// Scenario 5, browser half: one write of a sealed record to IndexedDB in Chromium (the system's
// Chromium, driven by playwright-core as the browser tests do; no browser is downloaded), next to
// the same record written unsealed with idb-keyval and to localStorage. Writes
// bench/results/storage-browser.json.
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createProfile, launchChromium, startPageServer } from '../test/browser/harness.js';
import type { IdbPageApi } from './lib/idb-page.js';
import { scenario } from './lib/results.js';
import { ratio, summarise } from './lib/stats.js';

const ROUNDS = 15;
const ITERATIONS = 40;

async function main(): Promise<void> {
  const run = scenario('storage-browser');
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./lib/idb-page.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]?.text;
  if (!script) throw new Error('esbuild produced no page');
  const server = await startPageServer(script);
  const profile = await createProfile();
  let perRound: Record<string, number[]>;
  let browserVersion = 'unknown';
  try {
    const session = await launchChromium(profile, `${server.origin}/`);
    try {
      browserVersion = session.context.browser()?.version() ?? 'unknown';
      perRound = await session.page.evaluate(
        ([rounds, iterations]) =>
          (window as unknown as { tw: IdbPageApi }).tw.run(rounds as number, iterations as number),
        [ROUNDS, ITERATIONS],
      );
    } finally {
      await session.close();
    }
  } finally {
    await server.close();
    await profile.remove();
  }
  const sealed = perRound['indexedDbStore set (sealed)'] as number[];
  const results = Object.entries(perRound).map(([name, values]) => ({
    name,
    perOperationUs: summarise(values, 1),
    vsSealedWrite: ratio(values, sealed),
  }));
  console.table(
    results.map((r) => ({
      case: r.name,
      'median µs': r.perOperationUs.median,
      q1: r.perOperationUs.q1,
      q3: r.perOperationUs.q3,
      '× sealed write': r.vsSealedWrite.median,
    })),
  );
  await run.write({
    browser: `Chromium ${browserVersion}`,
    rounds: ROUNDS,
    iterations: ITERATIONS,
    results,
  });
}

await main();
