// A small in-memory LockManager (the Web Locks API) for unit tests under Node, which has none:
// exclusive locks granted in request order, waiting requests aborted by their signal.
import { vi } from 'vitest';

/** The fake, with what it saw. */
export interface FakeLocks {
  readonly manager: LockManager;
  /** The name of every request, in order. */
  readonly requested: string[];
  /** Names currently held. */
  readonly held: Set<string>;
}

/** Builds a fake LockManager. */
export function fakeLocks(): FakeLocks {
  const queues = new Map<string, (() => void)[]>();
  const held = new Set<string>();
  const requested: string[] = [];

  const next = (name: string) => {
    const grant = queues.get(name)?.shift();
    if (grant) grant();
    else queues.delete(name);
  };

  const request = (
    name: string,
    options: LockOptions,
    callback: (lock: Lock | null) => unknown,
  ): Promise<unknown> => {
    requested.push(name);
    const signal = options.signal;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new DOMException('aborted', 'AbortError'));
        return;
      }
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        held.add(name);
        Promise.resolve()
          .then(() => callback({ name, mode: 'exclusive' } as Lock))
          .then(resolve, reject)
          .finally(() => {
            held.delete(name);
            next(name);
          });
      };
      const onAbort = () => {
        const queue = queues.get(name);
        const at = queue?.indexOf(grant) ?? -1;
        if (at >= 0) queue?.splice(at, 1);
        reject(new DOMException('aborted', 'AbortError'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (held.has(name) || queues.has(name)) {
        const queue = queues.get(name) ?? [];
        queue.push(grant);
        queues.set(name, queue);
      } else {
        queues.set(name, []);
        grant();
      }
    });
  };

  const manager = {
    request: (name: string, ...rest: unknown[]) =>
      rest.length === 1
        ? request(name, {}, rest[0] as (lock: Lock | null) => unknown)
        : request(name, rest[0] as LockOptions, rest[1] as (lock: Lock | null) => unknown),
    query: async () => ({ held: [], pending: [] }),
  } as unknown as LockManager;
  return { manager, requested, held };
}

/** Installs `navigator.locks` (a fake, or none) for the test. */
export function stubNavigatorLocks(locks: LockManager | undefined): void {
  vi.stubGlobal('navigator', locks ? { locks } : {});
}
