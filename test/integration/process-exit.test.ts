// A Node process that used a warden exits by itself right after warden.close() (issue 2:
// "close() clears every timer, pending refresh and listener; a Node process exits right after").
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const script = fileURLToPath(new URL('../fixtures/exit-after-close.ts', import.meta.url));
const EXIT_BUDGET_MS = 3_000;

interface Step {
  readonly step: string;
  readonly at: number;
  readonly [key: string]: unknown;
}

interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly steps: Step[];
  readonly exitedAt: number;
  readonly stderr: string;
  readonly killedForLingering: boolean;
}

function runChild(): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    // process.execPath: the same Node that runs vitest (20 or 22 in CI).
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const steps: Step[] = [];
    let stdout = '';
    let stderr = '';
    let killedForLingering = false;
    let lingerTimer: NodeJS.Timeout | undefined;
    const overall = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      let newline = stdout.indexOf('\n');
      while (newline >= 0) {
        const line = stdout.slice(0, newline);
        stdout = stdout.slice(newline + 1);
        newline = stdout.indexOf('\n');
        try {
          const step = JSON.parse(line) as Step;
          steps.push(step);
          if (step.step === 'closed') {
            lingerTimer = setTimeout(() => {
              killedForLingering = true;
              child.kill('SIGKILL');
            }, EXIT_BUDGET_MS);
          }
        } catch {
          // Not one of ours (a library notice on stdout).
        }
      }
    });
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(overall);
      clearTimeout(lingerTimer);
      resolve({ code, signal, steps, exitedAt: Date.now(), stderr, killedForLingering });
    });
  });
}

describe('process exit', () => {
  it('exits by itself, with code 0, within 3 s of warden.close()', async () => {
    const result = await runChild();
    const used = result.steps.find((s) => s.step === 'used');
    const closed = result.steps.find((s) => s.step === 'closed');
    expect(used, result.stderr).toMatchObject({ statuses: [200, 200], states: ['valid', 'valid'] });
    expect(closed, result.stderr).toMatchObject({ states: ['closed', 'closed'] });
    expect(result.killedForLingering, 'the child kept running after close()').toBe(false);
    expect(result.signal).toBeNull();
    expect(result.code, result.stderr).toBe(0);
    expect(result.exitedAt - (closed?.at ?? 0)).toBeLessThan(EXIT_BUDGET_MS);
  }, 30_000);
});
