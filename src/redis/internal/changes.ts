import type { RedisClient, RedisSubscriber } from '../client.js';

/** A listener of announced record changes: the sealed record (`undefined`: deleted) and its version. */
export type ChangeListener = (sealed: string | undefined, version: number) => void;

/**
 * The store's one pub/sub connection and what listens to it: record watchers (changes made by
 * other store instances) and lock waiters (a release wakes them before their next poll).
 *
 * Pub/sub is fire-and-forget: a message sent while the connection is down is lost. Nothing
 * depends on it for correctness: a credential re-reads the record under the lock before any
 * refresh, and lock waiters poll as well.
 */
export interface Changes {
  watch(id: string, listener: ChangeListener): () => void;
  /** Calls `wake` when a release of the lock of `id` is announced. */
  onUnlock(id: string, wake: () => void): () => void;
  /** Records a version this instance read or wrote, so an older announcement is not delivered. */
  saw(id: string, version: number): void;
  close(): Promise<void>;
}

interface Message {
  readonly t: 'w' | 'd' | 'u';
  readonly id: string;
  readonly o?: string;
  readonly v?: number;
  readonly s?: string;
}

function parse(text: string): Message | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { t, id, o, v, s } = value as Record<string, unknown>;
  if ((t !== 'w' && t !== 'd' && t !== 'u') || typeof id !== 'string') return undefined;
  if (t !== 'u' && (typeof o !== 'string' || !Number.isSafeInteger(v))) return undefined;
  if (t === 'w' && typeof s !== 'string') return undefined;
  return value as Message;
}

export function changes(client: RedisClient, channel: string, instance: string): Changes {
  const watchers = new Map<string, Set<ChangeListener>>();
  const waiters = new Map<string, Set<() => void>>();
  /** The newest version seen per id; announcements arrive in order, reads may overtake them. */
  const seen = new Map<string, number>();
  let subscriber: RedisSubscriber | undefined;
  let closed = false;

  const add = <T>(map: Map<string, Set<T>>, id: string, item: T): (() => void) => {
    let set = map.get(id);
    if (!set) {
      set = new Set();
      map.set(id, set);
    }
    set.add(item);
    open();
    return () => {
      set.delete(item);
      if (set.size === 0 && map.get(id) === set) map.delete(id);
    };
  };

  const deliver = (channelName: string, text: string) => {
    if (channelName !== channel) return;
    const message = parse(text);
    if (!message) return;
    if (message.t === 'u') {
      for (const wake of [...(waiters.get(message.id) ?? [])]) wake();
      return;
    }
    const version = message.v as number;
    if (version <= (seen.get(message.id) ?? 0)) return;
    seen.set(message.id, version);
    // This instance's own writes are not news to it.
    if (message.o === instance) return;
    for (const listener of [...(watchers.get(message.id) ?? [])]) {
      try {
        listener(message.t === 'w' ? message.s : undefined, version);
      } catch {
        // One failing listener must not starve the others.
      }
    }
  };

  const open = () => {
    if (subscriber || closed) return;
    const sub = client.duplicate();
    subscriber = sub;
    const subscribe = () => {
      if (!closed) sub.subscribe(channel).catch(() => {});
    };
    sub.on('message', deliver);
    // Errors surface through the operations of the main client; here they would only be noise.
    sub.on('error', () => {});
    // Subscribe on every (re)connection: a client with autoResubscribe off, or one whose first
    // subscribe failed because it was not connected yet, still ends up subscribed.
    sub.on('ready', subscribe);
    if (sub.status === undefined || sub.status === 'ready' || sub.status === 'wait') subscribe();
  };

  return {
    watch: (id, listener) => add(watchers, id, listener),
    onUnlock: (id, wake) => add(waiters, id, wake),
    saw(id, version) {
      if (version > (seen.get(id) ?? 0)) seen.set(id, version);
    },
    async close() {
      closed = true;
      watchers.clear();
      waiters.clear();
      const sub = subscriber;
      subscriber = undefined;
      if (!sub) return;
      sub.removeAllListeners('message');
      sub.removeAllListeners('ready');
      if (sub.status === 'ready') {
        // A polite QUIT, but never a hang on a server that stopped answering.
        await Promise.race([
          sub.quit().catch(() => {}),
          new Promise((resolve) => {
            const timer = setTimeout(resolve, 1_000);
            (timer as { unref?: () => void }).unref?.();
          }),
        ]);
      }
      sub.disconnect();
      sub.removeAllListeners('error');
    },
  };
}
