import { TokenWardenError } from '../../errors.js';
import type { RedisClient } from '../client.js';
import type { Script } from './scripts.js';

/** Runs the store's scripts on the user's client, each within a deadline. */
export interface Connection {
  /**
   * Runs a script. Waits for the client to be ready, but never past the deadline; a command is
   * only sent while the client is ready, so none sits in the client's offline queue to run
   * minutes later.
   * @throws {@link TokenWardenError} `ERR_STORE_UNAVAILABLE` when Redis does not answer in time,
   *   is disconnected, or refuses the command.
   */
  run(
    script: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown>;
  /** Stops waiting for readiness (the store is closing). */
  close(): void;
}

const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');

/** EVALSHA needs the script's SHA-1: computed once per script, with WebCrypto. */
const digests = new Map<Script, Promise<string>>();
function sha1(script: Script): Promise<string> {
  let digest = digests.get(script);
  if (!digest) {
    digest = crypto.subtle
      .digest('SHA-1', new TextEncoder().encode(script.source))
      .then((bytes) => hex(bytes));
    digests.set(script, digest);
  }
  return digest;
}

export function unavailable(what: string, detail?: string): TokenWardenError {
  return new TokenWardenError(
    'ERR_STORE_UNAVAILABLE',
    `The Redis store could not ${what}${detail ? ` (${detail})` : ''}. Tokens are not refreshed while Redis is unavailable; valid ones keep being used.`,
  );
}

/**
 * A short, secret-free description of a client error: the Redis error code (`NOPERM`, `READONLY`,
 * `WRONGTYPE`, ...) or the client's error class. Client errors can carry the command's arguments
 * (sealed records), so neither the error nor its message is passed on.
 */
export function describeError(error: unknown): string {
  if (error instanceof TokenWardenError) return error.code;
  const message = error instanceof Error ? error.message : '';
  const code = /^(?:ERR [^\s:]+:\d+: )?([A-Z][A-Z_]{2,})\b/.exec(message)?.[1];
  if (code && code !== 'ERR') return code;
  if (/Connection is closed|Stream isn't writeable|enableOfflineQueue/i.test(message)) {
    return 'disconnected';
  }
  if (/timed? ?out/i.test(message)) return 'timeout';
  return error instanceof Error ? error.name : typeof error;
}

export function connection(client: RedisClient, timeoutMs: number): Connection {
  let ready: Promise<void> | undefined;
  let stopWaiting: (() => void) | undefined;
  let closed = false;

  /** One readiness wait shared by every pending operation, so listeners do not pile up. */
  const whenReady = (): Promise<void> => {
    ready ??= new Promise<void>((resolve, reject) => {
      const onReady = () => {
        client.removeListener('end', onEnd);
        ready = undefined;
        stopWaiting = undefined;
        resolve();
      };
      const onEnd = () => {
        client.removeListener('ready', onReady);
        ready = undefined;
        stopWaiting = undefined;
        reject(unavailable('reach Redis', 'the client was closed'));
      };
      stopWaiting = () => {
        client.removeListener('ready', onReady);
        client.removeListener('end', onEnd);
        ready = undefined;
        reject(unavailable('reach Redis', 'the store was closed'));
      };
      client.once('ready', onReady);
      client.once('end', onEnd);
      // A client created with lazyConnect connects on its first command; the store sends none
      // before it is ready, so it starts the connection itself.
      if (client.status === 'wait') client.connect?.().catch(() => {});
    });
    ready.catch(() => {});
    return ready;
  };

  const within = <T>(promise: Promise<T>, deadline: number, what: string): Promise<T> => {
    const left = deadline - Date.now();
    if (left <= 0) {
      promise.catch(() => {});
      return Promise.reject(unavailable(what, 'timed out'));
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        promise.catch(() => {});
        reject(unavailable(what, `no answer within ${timeoutMs} ms`));
      }, left);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  };

  return {
    async run(script, keys, args) {
      const what = `run its ${script.name} command`;
      if (closed) throw unavailable(what, 'the store was closed');
      const deadline = Date.now() + timeoutMs;
      const status = client.status;
      if (status === 'end') throw unavailable(what, 'the Redis client was closed');
      if (status !== undefined && status !== 'ready') await within(whenReady(), deadline, what);
      const digest = await sha1(script);
      try {
        try {
          return await within(
            client.evalsha(digest, keys.length, ...keys, ...args),
            deadline,
            what,
          );
        } catch (error) {
          // A server that restarted, or never ran this script, has no copy of it yet.
          if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
          return await within(
            client.eval(script.source, keys.length, ...keys, ...args),
            deadline,
            what,
          );
        }
      } catch (error) {
        if (error instanceof TokenWardenError) throw error;
        throw unavailable(what, describeError(error));
      }
    },
    close() {
      closed = true;
      stopWaiting?.();
    },
  };
}
