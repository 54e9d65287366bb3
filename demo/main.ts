// `npm run demo`: tokenwarden against an embedded authorization server and API, in one command.
// This file handles the command line and the process; demo/scenario.ts tells the story.
import { parseArgs } from 'node:util';
import { routeConsole } from './console.js';
import { renderSummary } from './summary.js';
import { createView } from './view.js';

const USAGE = `Usage: npm run demo -- [--duration <seconds>] [--token-lifetime <seconds>]

Starts an OAuth authorization server (oidc-provider) and a protected API on 127.0.0.1, then runs
a Node service that calls the API through tokenwarden with short-lived tokens: background
refreshes under steady traffic, a revoked token recovered with one refresh and one retry, leak
attempts blocked and raised as anomalies, a cross-origin redirect stripped of its token, calls
with tokens bound to a key (DPoP) that a stolen copy cannot make; then
the metrics snapshot, the inventory, an audit that revokes a forgotten key, and revokeAll()
checked by introspection at the server. Ends with a summary.

Options:
  --duration <seconds>        how long the steady traffic runs (default 20)
  --token-lifetime <seconds>  lifetime of the access tokens, whole seconds (default 5)
  -h, --help                  show this help

Exit status: 0 when every check passed, 1 when one failed, 2 for bad options, 130 on Ctrl-C.`;

interface DemoOptions {
  readonly durationS: number;
  readonly lifetimeS: number;
}

function parseOptions(argv: readonly string[]): DemoOptions | 'help' | { error: string } {
  let values: { duration?: string; 'token-lifetime'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        duration: { type: 'string' },
        'token-lifetime': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
  if (values.help) return 'help';
  const durationS = Number(values.duration ?? '20');
  const lifetimeS = Number(values['token-lifetime'] ?? '5');
  // oidc-provider states lifetimes in whole seconds.
  if (!Number.isInteger(lifetimeS) || lifetimeS < 1 || lifetimeS > 3_600) {
    return { error: '--token-lifetime must be a whole number of seconds from 1 to 3600.' };
  }
  // Each credential must live through at least one background refresh for the run to show one.
  if (!Number.isFinite(durationS) || durationS < 2 * lifetimeS || durationS > 3_600) {
    return {
      error: `--duration must be a number of seconds from twice the token lifetime (${2 * lifetimeS}) to 3600.`,
    };
  }
  return { durationS, lifetimeS };
}

const parsed = parseOptions(process.argv.slice(2));
if (parsed === 'help') {
  process.stdout.write(`${USAGE}\n`);
} else if ('error' in parsed) {
  process.stderr.write(`${parsed.error}\n\n${USAGE}\n`);
  process.exitCode = 2;
} else {
  await run(parsed);
  // Exiting is left to Node: an open timer or socket would keep the process alive, and that is
  // a bug this watchdog reports instead of hiding. Unref'd, it never holds the process itself.
  setTimeout(() => {
    process.stderr.write('The demo finished but something kept the process alive.\n');
    process.exit(1);
  }, 5_000).unref();
}

async function run({ durationS, lifetimeS }: DemoOptions): Promise<void> {
  const startedAt = Date.now();
  const view = createView({
    stream: process.stdout,
    startedAt,
    progressEveryMs: Math.min(10_000, Math.max(2_000, (durationS * 1_000) / 4)),
  });
  const restoreConsole = routeConsole(view);
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  process.once('SIGINT', interrupt);
  // The live view hides the cursor; bring it back whatever happens.
  const showCursor = () => process.stdout.isTTY && process.stdout.write('\x1b[?25h');
  process.once('exit', showCursor);
  try {
    // Loaded only now, with the console routed: oidc-provider writes a notice on import, and
    // `--help` should not have to load a whole authorization server.
    const { runScenario } = await import('./scenario.js');
    const result = await runScenario({
      durationMs: durationS * 1_000,
      lifetimeS,
      view,
      signal: controller.signal,
    });
    view.print(renderSummary(result, Date.now() - startedAt));
    if (result.interrupted) process.exitCode = 130;
    else process.exitCode = result.checks.every((c) => c.ok) ? 0 : 1;
  } catch (error) {
    view.stop();
    // tokenwarden's errors carry no secret; the fixture's and Node's carry none either.
    process.stderr.write(
      `The demo could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('exit', showCursor);
    showCursor();
    restoreConsole();
  }
}
