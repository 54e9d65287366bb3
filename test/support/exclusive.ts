import { open, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * Lets only one heavy suite (a fleet of child processes, a browser with five pages, hundreds of
 * SIGKILLs) run at a time on this machine. Those suites measure timing with short-lived tokens;
 * two of them at once on two cores starve each other's processes past a token's lifetime, and
 * the failure then says nothing about tokenwarden. Lighter suites still run alongside.
 *
 * Call at the top of a test file, before its own hooks.
 */
export function runExclusively(name = 'heavy-suite'): void {
  const path = join(tmpdir(), `tokenwarden-${name}.lock`);
  let held = false;
  beforeAll(async () => {
    for (;;) {
      try {
        const handle = await open(path, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        held = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      // A holder that died (a killed test run) leaves its lock behind: take it over.
      const holder = Number(await readFile(path, 'utf8').catch(() => ''));
      if (Number.isInteger(holder) && holder > 0 && !isAlive(holder)) {
        await unlink(path).catch(() => {});
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, 600_000);
  afterAll(async () => {
    if (held) await unlink(path).catch(() => {});
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
