// npm run bench: runs every scenario in its own process, one after another (so one scenario's
// heap, timers and JIT state do not leak into the next), then writes bench/results/all.json and
// BENCHMARKS.md (the generated tables around the hand-written method and caveats of
// bench/lib/report.ts), and formats both with biome.
//
//   tsx bench/run.ts                 everything
//   tsx bench/run.ts stall scale     some scenarios (the others' JSON is reused as it is)
//   tsx bench/run.ts --report        re-render BENCHMARKS.md from bench/results/all.json
import { execFileSync, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, machine } from './lib/machine.js';
import { render } from './lib/report.js';
import { resultsDir } from './lib/results.js';

const root = fileURLToPath(new URL('..', import.meta.url));

const scenarios = [
  'overhead',
  'coalescing',
  'stall',
  'scale',
  'storage',
  'storage-browser',
  'bundle',
  'metrics',
] as const;

function runNode(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${args.join(' ')} exited with ${code}`)),
    );
  });
}

/** biome formats Markdown tables and JSON: run it, so that `biome check` passes after a run. */
function formatOutputs(): Promise<void> {
  return runNode([
    join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome'),
    'format',
    '--write',
    'BENCHMARKS.md',
    join('bench', 'results'),
  ]);
}

/** The commit measured, and whether the library's source differed from it (a shared checkout). */
function sourceState(): { commit: string; uncommittedSourceChanges: boolean } {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' });
    return {
      commit: git('rev-parse', '--short', 'HEAD').trim(),
      uncommittedSourceChanges: git('status', '--porcelain', '--', 'src').trim() !== '',
    };
  } catch {
    return { commit: 'unknown', uncommittedSourceChanges: false };
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--report')) {
    // Re-renders BENCHMARKS.md from bench/results/all.json, without measuring.
    const all = JSON.parse(await readFile(join(resultsDir, 'all.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    await writeFile(join(root, 'BENCHMARKS.md'), render(all));
    await formatOutputs();
    return;
  }
  const only = args;
  const startedAt = new Date();
  const loadAtStart = load();
  const timings: { scenario: string; seconds: number; load: { start: number[]; end: number[] } }[] =
    [];
  for (const name of scenarios) {
    if (only.length > 0 && !only.includes(name)) continue;
    console.log(`\n== ${name} ==`);
    const start = performance.now();
    const before = load();
    await runNode(['--import', 'tsx', join('bench', `${name}.ts`)]);
    timings.push({
      scenario: name,
      seconds: Math.round((performance.now() - start) / 100) / 10,
      load: { start: before, end: load() },
    });
  }
  const run = {
    at: startedAt.toISOString(),
    source: sourceState(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    machine: machine(),
    load: { start: loadAtStart, end: load() },
    scenarios: timings,
  };
  const results: Record<string, unknown> = { run };
  for (const name of scenarios) {
    results[name] = JSON.parse(await readFile(join(resultsDir, `${name}.json`), 'utf8'));
  }
  await writeFile(join(resultsDir, 'all.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(root, 'BENCHMARKS.md'), render(results));
  await formatOutputs();
  console.log(
    `\nnpm run bench took ${run.seconds} s; wrote BENCHMARKS.md and bench/results/all.json`,
  );
}

await main();
