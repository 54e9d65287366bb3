// `npm run demo` is the first thing a newcomer runs: it must finish by itself, pass its own
// checks, tell its story in plain lines when not on a terminal, and never print a secret.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { BASIC_CLIENT_SECRET } from '../support/oidc-server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BUDGET_MS = 30_000;

interface DemoRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function runDemo(args: readonly string[]): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    // process.execPath: the same Node that runs vitest. Pipes, not a terminal: plain mode.
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    // Past the budget the demo counts as hung (a lingering handle, a stuck step).
    const timer = setTimeout(() => child.kill('SIGKILL'), BUDGET_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('npm run demo', () => {
  let run: DemoRun;

  // One run, short enough for CI, long enough for several refreshes of 2 s tokens.
  beforeAll(async () => {
    run = await runDemo(['--duration', '6', '--token-lifetime', '2']);
  }, BUDGET_MS + 10_000);

  it('runs the whole scenario, passes its checks and exits 0 by itself', () => {
    const output = run.stdout + run.stderr;
    expect(run.signal, output).toBeNull();
    expect(run.code, output).toBe(0);
    expect(run.ms).toBeLessThan(BUDGET_MS);

    expect(run.stdout).toMatch(/refresh billing \(scheduled\)/);
    expect(run.stdout).toMatch(/refresh profile \(proactive\), refresh token rotated/);
    expect(run.stdout).toMatch(/\bok 401 recovered: .*1 401, 1 refresh, final status 200/);
    expect(run.stdout).toMatch(/blocked billing: origin-not-allowed, request refused/);
    expect(run.stdout).toMatch(/blocked billing: token-in-url, request refused/);
    expect(run.stdout).toMatch(/blocked billing: redirect, request stripped/);
    expect(run.stdout).toMatch(/ERR_ORIGIN_NOT_ALLOWED/);
    expect(run.stdout).toMatch(/ERR_TOKEN_IN_URL/);
    expect(run.stdout).toMatch(/status\(\): state=valid/);
    expect(run.stdout).toMatch(/anomaly billing: blocked-leak \(critical\)/);
    expect(run.stdout).toMatch(/\bok anomalies raised: /);
    expect(run.stdout).toMatch(/\bok DPoP-bound calls: \d+ accepted, all proving key /);
    expect(run.stdout).toMatch(/metrics billing: \d+ requests .* p99 /);
    expect(run.stdout).toMatch(/\bok metrics, inventory and audit: .*legacy unused -> revoked/);
    expect(run.stdout).toMatch(/\bok revoked at the server: .* 0 still active at the server/);
    expect(run.stdout).toMatch(/^Summary \(/m);
    expect(run.stdout).toMatch(/^All \d+ checks passed\.$/m);
    expect(run.stdout).not.toMatch(/\[FAIL\]/);
    // Not a terminal: no cursor movement or colour.
    expect(run.stdout).not.toContain('\x1b[');
  });

  it('prints no secret and nothing shaped like a token', () => {
    const output = run.stdout + run.stderr;
    for (const form of [
      BASIC_CLIENT_SECRET,
      encodeURIComponent(BASIC_CLIENT_SECRET),
      'refresh-secret-',
    ]) {
      expect(output).not.toContain(form);
    }
    // oidc-provider's opaque tokens are 43-character base64url strings; the refresh client's
    // secret (random per run) is longer. The demo prints 8-hex-digit fingerprints only.
    expect(output.match(/[A-Za-z0-9_-]{43,}/g) ?? []).toEqual([]);
  });

  it('explains its options with --help and rejects bad ones', async () => {
    const help = await runDemo(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--duration <seconds>/);
    expect(help.stdout).toMatch(/--token-lifetime <seconds>/);

    const bad = await runDemo(['--duration', '3', '--token-lifetime', '2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--duration must be/);
  }, 40_000);
});
