// Writes one scenario's results as bench/results/<name>.json, with the machine and the load
// average at its start and end.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, machine } from './machine.js';

export const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));

/** Starts a scenario: remembers the time and load; `write` adds them to the JSON. */
export function scenario(name: string) {
  const startedAt = new Date();
  const loadAtStart = load();
  return {
    async write(data: Record<string, unknown>): Promise<void> {
      await mkdir(resultsDir, { recursive: true });
      const body = {
        scenario: name,
        at: startedAt.toISOString(),
        durationS: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
        machine: machine(),
        load: { start: loadAtStart, end: load() },
        ...data,
      };
      await writeFile(join(resultsDir, `${name}.json`), `${JSON.stringify(body, null, 2)}\n`);
      console.log(`written to bench/results/${name}.json`);
    },
  };
}

/** Pauses without holding the process open beyond `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
