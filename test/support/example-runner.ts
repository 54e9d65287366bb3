// Runs one of examples/*.ts as a child process, the way its header tells a user to, but with
// `tokenwarden` resolved to src/ through the test tsconfig's `paths`: a fresh clone runs the
// tests without `npm run build`, so nothing here may depend on dist/.
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
// tsx's loader by URL: the examples run in a temp directory, where `--import tsx` finds nothing.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** A running example. */
export interface ExampleRun {
  readonly process: ChildProcess;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stdout + stderr; rejects if the example exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves once the example has exited and its output is read. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/**
 * Starts `tsx examples/<name>.ts [args]` in `cwd` with the given extra environment. The
 * example is killed (SIGKILL) past `budgetMs`, so a hung example fails its test instead of the
 * whole run.
 */
export function runExample(
  name: string,
  options: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    args?: readonly string[];
    budgetMs?: number;
  },
): ExampleRun {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    ['--import', TSX, `${root}examples/${name}.ts`, ...(options.args ?? [])],
    {
      cwd: options.cwd,
      env: { ...options.env, NODE_OPTIONS: '', TSX_TSCONFIG_PATH: TSCONFIG },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of listeners) listener();
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    changed();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    changed();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.budgetMs ?? 30_000);
  let isClosed = false;
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>(
    (resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        isClosed = true;
        changed();
        resolve({ code, signal, ms: Date.now() - started });
      });
    },
  );
  return {
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    closed,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(stdout + stderr);
          if (match) {
            done();
            resolve(match);
          } else if (isClosed) {
            done();
            reject(
              new Error(
                `examples/${name}.ts exited before printing ${pattern}:\n${stdout}\n${stderr}`,
              ),
            );
          }
        };
        const timeout = setTimeout(() => {
          done();
          reject(
            new Error(
              `examples/${name}.ts printed no ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`,
            ),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(timeout);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}
