// The keychain store and key where the keychain cannot work: no D-Bus session bus, a bus with no
// Secret Service, @napi-rs/keyring not installed. Each case runs in a child process of its own,
// because @napi-rs/keyring fixes the bus address the first time a process uses it. Every call
// must fail quickly with a coded error that says what is missing: no crash, no hang.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SessionBus, startSecretService } from '../support/keyring.js';

const CHILD = fileURLToPath(new URL('../fixtures/keychain-child.ts', import.meta.url));
const CALLS = ['store.set', 'store.get', 'store.list', 'store.delete', 'key.current'];
/** Generous for a loaded CI machine; a hang on a D-Bus timeout would take 25 s per call. */
const PER_CALL_MS = 5_000;

interface Outcome {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly ok?: boolean;
  readonly ms: number;
}

function runChild(env: NodeJS.ProcessEnv, arg?: string): Promise<Record<string, Outcome>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...(arg ? [arg] : [])], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      try {
        if (code !== 0) throw new Error(`exit ${code ?? signal}`);
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? ''));
      } catch (error) {
        reject(new Error(`keychain child failed (${(error as Error).message}): ${out} ${err}`));
      }
    });
  });
}

function expectEveryCall(results: Record<string, Outcome>, code: string, message: RegExp) {
  expect(Object.keys(results).sort()).toEqual([...CALLS].sort());
  for (const [call, outcome] of Object.entries(results)) {
    expect({ call, ...outcome }).toMatchObject({ call, name: 'TokenWardenError', code });
    expect(outcome.message, call).toMatch(message);
    expect(outcome.ms, call).toBeLessThan(PER_CALL_MS);
  }
}

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'tw-no-keyring-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('keychain without a usable keychain', () => {
  it('a bus address that points nowhere: ERR_STORE_UNAVAILABLE, the bus cannot be reached', async () => {
    const results = await runChild({
      ...process.env,
      DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(scratch, 'no-bus')}`,
    });
    expectEveryCall(
      results,
      'ERR_STORE_UNAVAILABLE',
      /the D-Bus session bus at DBUS_SESSION_BUS_ADDRESS cannot be reached/,
    );
  });

  it('no bus address at all: ERR_STORE_UNAVAILABLE, DBUS_SESSION_BUS_ADDRESS is not set', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: scratch };
    delete env['DBUS_SESSION_BUS_ADDRESS'];
    const results = await runChild(env);
    expectEveryCall(
      results,
      'ERR_STORE_UNAVAILABLE',
      /no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set/,
    );
  });

  describe('a session bus without a Secret Service', () => {
    let bus: SessionBus;
    beforeAll(async () => {
      bus = await startSecretService({ secrets: false, applyToProcess: false });
    });
    afterAll(async () => {
      await bus?.stop();
    });

    it('ERR_STORE_UNAVAILABLE: install and unlock gnome-keyring or KWallet', async () => {
      const results = await runChild(bus.childEnv());
      expectEveryCall(
        results,
        'ERR_STORE_UNAVAILABLE',
        /no Secret Service on the session bus: install and unlock gnome-keyring or KWallet/,
      );
    });
  });

  it('@napi-rs/keyring not installed: tokenwarden/node imports, calls say what to install', async () => {
    const results = await runChild({ ...process.env }, 'no-module');
    expectEveryCall(results, 'ERR_UNSUPPORTED', /npm install @napi-rs\/keyring/);
  });
});
