// A real redis-server for integration tests: started as a child process of the test file on a
// free loopback port, with no persistence, and stopped after the file. Nothing here is mocked.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

const BINARY = process.env['REDIS_SERVER'] ?? 'redis-server';
const MISSING = `redis-server was not found (${BINARY}). Install the Debian package "redis-server" (apt-get install redis-server), or point REDIS_SERVER at the binary. The Redis tests need a real server and are never skipped.`;

/** A running redis-server. */
export interface RedisServer {
  /** Its loopback port. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Whether the process is running. */
  readonly running: boolean;
  /** Stops the server (SIGTERM, then SIGKILL). Its data is gone: it persists nothing. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty; resolves once it answers PING. */
  restart(): Promise<void>;
  /** Stops the server for good and removes its directory. */
  close(): Promise<void>;
  /** Sends one command over a raw connection and returns the raw RESP reply. */
  command(...args: string[]): Promise<string>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** RESP-encodes a command and returns the server's raw reply (the first chunk suffices here). */
function rawCommand(port: number, args: string[], timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('redis-server did not answer'));
    }, timeoutMs);
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      const encoded = args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('');
      socket.write(`*${args.length}\r\n${encoded}`);
    });
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.endsWith('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

async function spawnServer(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    BINARY,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      dir,
      '--loglevel',
      'warning',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'ENOENT' ? new Error(MISSING) : error);
    });
    child.once('exit', (code, signal) => {
      reject(
        new Error(`redis-server exited at start (${code ?? signal}): ${stderr.slice(0, 500)}`),
      );
    });
  });
  failed.catch(() => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    const reply = await Promise.race([rawCommand(port, ['PING'], 200).catch(() => ''), failed]);
    if (reply.startsWith('+PONG')) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer PING on port ${port}: ${stderr.slice(0, 500)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts redis-server on a free loopback port. It runs in the foreground as a child of this
 * process (killed on exit, too), persists nothing, and writes nothing outside a temp directory.
 *
 * @throws when the `redis-server` binary is missing, naming the Debian package to install.
 */
export async function startRedisServer(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tw-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 0; !child; attempt++) {
    port = await freePort();
    try {
      child = await spawnServer(port, dir);
    } catch (error) {
      // Another process may have taken the port between the probe and the start.
      if (attempt >= 3 || (error as Error).message === MISSING) throw error;
    }
  }
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async stop() {
      if (child) await stopProcess(child);
    },
    async restart() {
      if (child) await stopProcess(child);
      child = await spawnServer(port, dir);
    },
    async close() {
      if (child) await stopProcess(child);
      process.off('exit', killOnExit);
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
    command: (...args) => rawCommand(port, args),
  };
}

/** Starts redis-server before the file's tests and stops it after them. */
export function useRedisServer(): () => RedisServer {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
  }, 20_000);
  afterAll(async () => {
    await server?.close();
  });
  return () => {
    if (!server) throw new Error('redis-server runs only inside the tests and their hooks');
    return server;
  };
}
