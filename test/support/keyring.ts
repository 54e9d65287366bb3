// A real Secret Service for the keychain tests: a private D-Bus session bus and an unlocked
// gnome-keyring-daemon on it, in a throw-away HOME, started here rather than assumed running.
//
// @napi-rs/keyring reads DBUS_SESSION_BUS_ADDRESS when a process first opens a keychain entry
// and libdbus keeps that address for the life of the process (findCredentials, built on zbus,
// reads it on every call). So start the service before the first keychain call of a process,
// once per process; a test that needs another bus runs in a child process with `childEnv`.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { isMainThread } from 'node:worker_threads';

const run = promisify(execFile);

/** Debian packages that provide what this module starts. */
export const KEYRING_PACKAGES = 'gnome-keyring dbus dbus-x11 libsecret-1-0';

export interface SessionBus {
  /** The bus address, for DBUS_SESSION_BUS_ADDRESS. */
  readonly address: string;
  /** The temp directory holding HOME, XDG dirs and the bus socket. */
  readonly dir: string;
  /** An environment for child processes that use this bus. */
  childEnv(): NodeJS.ProcessEnv;
  /** Locks the default keyring collection (keychain calls then fail as on a locked desktop). */
  lock(): Promise<void>;
  /** Stops the daemons, restores the environment and removes the temp directory. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Start gnome-keyring-daemon on the bus; `false` gives a bus with no Secret Service. */
  readonly secrets?: boolean;
  /** Point this process's DBUS_SESSION_BUS_ADDRESS at the bus until `stop()`. */
  readonly applyToProcess?: boolean;
}

/**
 * Starts a session bus and (by default) an unlocked gnome-keyring on it. Fails with the
 * packages to install when a binary is missing: the keychain tests are never silently skipped.
 */
export async function startSecretService(options: StartOptions = {}): Promise<SessionBus> {
  const { secrets = true, applyToProcess = true } = options;
  if (applyToProcess && !isMainThread) {
    throw new Error(
      'The keychain tests change DBUS_SESSION_BUS_ADDRESS, which worker threads cannot pass to native code: run them in the forks pool.',
    );
  }
  const binaries = ['dbus-daemon', 'dbus-send', ...(secrets ? ['gnome-keyring-daemon'] : [])];
  const missing = binaries.filter((name) => !onPath(name));
  if (missing.length > 0) {
    throw new Error(
      `The keychain tests need a real Secret Service, but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not installed. Install the Debian packages: apt-get install ${KEYRING_PACKAGES}`,
    );
  }

  const dir = await mkdtemp(join(tmpdir(), 'tw-keyring-'));
  const home = join(dir, 'home');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    XDG_RUNTIME_DIR: join(dir, 'runtime'),
  };
  for (const sub of ['home', 'data', 'config', 'cache', 'runtime']) {
    await mkdir(join(dir, sub), { mode: 0o700 });
  }
  const children: ChildProcess[] = [];
  const previous = process.env['DBUS_SESSION_BUS_ADDRESS'];
  let applied = false;

  const stop = async () => {
    if (applied) {
      if (previous === undefined) delete process.env['DBUS_SESSION_BUS_ADDRESS'];
      else process.env['DBUS_SESSION_BUS_ADDRESS'] = previous;
      applied = false;
    }
    for (const child of children.reverse()) await terminate(child);
    children.length = 0;
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // A bus of our own configuration: it listens in the temp directory and has no service
    // directories, so nothing is activated behind the test's back (such as a second, locked
    // gnome-keyring) and a bus without secrets really has no Secret Service.
    const config = join(dir, 'session.conf');
    await writeFile(config, busConfig(join(dir, 'bus')));
    const bus = spawn('dbus-daemon', ['--config-file', config, '--nofork', '--print-address=1'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(bus);
    const address = (await firstLine(bus, 'dbus-daemon')).trim();
    env['DBUS_SESSION_BUS_ADDRESS'] = address;

    if (secrets) {
      // --unlock reads the login keyring's password from stdin and creates that keyring (the
      // default collection) unlocked; --foreground keeps it our child, so stop() can end it.
      const keyring = spawn(
        'gnome-keyring-daemon',
        ['--foreground', '--unlock', '--components=secrets'],
        { env, stdio: ['pipe', 'ignore', 'pipe'] },
      );
      children.push(keyring);
      keyring.stdin?.end('tokenwarden-test-keyring');
      await waitForDefaultCollection(address, keyring);
    }

    if (applyToProcess) {
      process.env['DBUS_SESSION_BUS_ADDRESS'] = address;
      applied = true;
    }
    return {
      address,
      dir,
      childEnv: () => ({ ...env }),
      lock: async () => {
        const collection = /object path "([^"]+)"/.exec(await readDefaultAlias(address))?.[1];
        if (!collection) throw new Error('The Secret Service has no default collection to lock.');
        await dbusSend(address, [
          '--dest=org.freedesktop.secrets',
          '/org/freedesktop/secrets',
          'org.freedesktop.Secret.Service.Lock',
          `array:objpath:${collection}`,
        ]);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function busConfig(socket: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`;
}

function onPath(name: string): boolean {
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function dbusSend(address: string, args: string[]): Promise<string> {
  return run('dbus-send', [`--bus=${address}`, '--print-reply', ...args], {
    timeout: 5_000,
  }).then(({ stdout }) => stdout);
}

function readDefaultAlias(address: string): Promise<string> {
  return dbusSend(address, [
    '--dest=org.freedesktop.secrets',
    '/org/freedesktop/secrets',
    'org.freedesktop.Secret.Service.ReadAlias',
    'string:default',
  ]);
}

/** Resolves once the keyring's `default` alias names a collection (the unlocked login keyring). */
async function waitForDefaultCollection(address: string, daemon: ChildProcess): Promise<void> {
  const stderr = collect(daemon);
  const deadline = Date.now() + 10_000;
  let last = '';
  while (Date.now() < deadline) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) {
      throw new Error(`gnome-keyring-daemon exited at start: ${stderr().slice(0, 500)}`);
    }
    try {
      const reply = await readDefaultAlias(address);
      if (/object path "\/org\/freedesktop\/secrets\/collection\//.test(reply)) return;
      last = reply;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(
    `gnome-keyring-daemon did not provide an unlocked default keyring within 10 s (last answer: ${last.slice(0, 300)}; daemon said: ${stderr().slice(0, 300)})`,
  );
}

function collect(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  return () => text;
}

function firstLine(child: ChildProcess, name: string): Promise<string> {
  const stderr = collect(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => fail(new Error(`${name} printed no address within 10 s`)),
      10_000,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(new Error(`${error.message}: ${stderr().slice(0, 500)}`));
    };
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`${name} exited (${code ?? signal})`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const end = out.indexOf('\n');
      if (end >= 0) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(out.slice(0, end));
      }
    });
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}
