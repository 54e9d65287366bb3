#!/usr/bin/env node
// The `tokenwarden` executable (package.json "bin"). Everything it does is in ./cli/run.ts.
import { readFile } from 'node:fs/promises';
import { run } from './cli/run.js';

/** The version in the package.json next to the built file (dist/cli.js → package.json). */
async function version(): Promise<string> {
  try {
    const text = await readFile(new URL('../package.json', import.meta.url), 'utf8');
    const { version } = JSON.parse(text) as { version?: unknown };
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Resolves once everything written to the stream has been handed to the system. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    stream.write('', () => resolve());
  });
}

const code = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  version,
});
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
// A --config module may leave handles open (its own clients, timers): the command is done.
process.exit(code);
