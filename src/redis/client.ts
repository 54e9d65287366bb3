/**
 * What the Redis store needs from a client: the few methods it calls, typed structurally so that
 * `tokenwarden/redis` never imports `ioredis` (an optional peer dependency). An `ioredis` `Redis`
 * instance fits as it is; so does any client with the same methods and semantics.
 *
 * The store runs everything through Lua scripts (`EVALSHA`, falling back to `EVAL`), and opens
 * one extra connection with `duplicate()` for pub/sub. It never calls `quit()` or `disconnect()`
 * on this client: the client stays yours.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import type { RedisClient } from 'tokenwarden/redis';
 * const client: RedisClient = new Redis(process.env.REDIS_URL!);
 * ```
 */
export interface RedisClient {
  /**
   * The connection state (`ioredis`: `wait`, `connecting`, `connect`, `ready`, `reconnecting`,
   * `close`, `end`). Commands are only sent while it is `ready`; a client without `status` is
   * taken as always ready.
   */
  readonly status?: string;
  /** The client's options; the store reads `keyPrefix`. */
  readonly options?:
    | {
        /**
         * A prefix `ioredis` adds to every key of every command. The store's keys get it too
         * (after it comes the store's own `prefix`).
         */
        readonly keyPrefix?: string | undefined;
      }
    | undefined;
  /**
   * Runs a cached Lua script by its SHA-1 (`EVALSHA`).
   * @param sha1 - The script's SHA-1, hex.
   * @param numkeys - How many of `args` are keys.
   * @param args - Keys, then arguments.
   * @returns The script's reply.
   */
  evalsha(sha1: string, numkeys: number, ...args: (string | number)[]): Promise<unknown>;
  /**
   * Runs a Lua script (`EVAL`), which also caches it for `EVALSHA`.
   * @param script - The script.
   * @param numkeys - How many of `args` are keys.
   * @param args - Keys, then arguments.
   * @returns The script's reply.
   */
  eval(script: string, numkeys: number, ...args: (string | number)[]): Promise<unknown>;
  /**
   * A new connection with the same options, for subscriptions.
   * @returns The new connection.
   */
  duplicate(): RedisSubscriber;
  /**
   * Starts connecting a client created with `lazyConnect`. Optional.
   * @returns Once connected.
   */
  connect?(): Promise<unknown>;
  /**
   * Listens once to a connection event (`ready`, `end`).
   * @param event - The event.
   * @param listener - The listener.
   */
  once(event: 'ready' | 'end', listener: () => void): unknown;
  /**
   * Removes a listener added with `once`.
   * @param event - The event.
   * @param listener - The listener.
   */
  removeListener(event: 'ready' | 'end', listener: () => void): unknown;
}

/**
 * The pub/sub connection the store opens with {@link RedisClient.duplicate}. It only subscribes to
 * the store's channel, and the store closes it in `close()`.
 *
 * @example
 * ```ts
 * import type { RedisSubscriber } from 'tokenwarden/redis';
 * const subscriber: RedisSubscriber = client.duplicate();
 * await subscriber.subscribe('tokenwarden:changes');
 * ```
 */
export interface RedisSubscriber {
  /** The connection state; see {@link RedisClient.status}. */
  readonly status?: string;
  /**
   * Subscribes to channels.
   * @param channels - The channels.
   * @returns Once subscribed.
   */
  subscribe(...channels: string[]): Promise<unknown>;
  /**
   * Listens to the messages of subscribed channels.
   * @param event - `message`.
   * @param listener - Called with the channel and the message text.
   */
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  /**
   * Listens to (re)connections, after which the store subscribes again.
   * @param event - `ready`.
   * @param listener - The listener.
   */
  on(event: 'ready', listener: () => void): unknown;
  /**
   * Listens to connection errors (the store ignores them: its operations report their own).
   * @param event - `error`.
   * @param listener - The listener.
   */
  on(event: 'error', listener: (error: unknown) => void): unknown;
  /**
   * Removes every listener of an event.
   * @param event - The event.
   */
  removeAllListeners(event: 'message' | 'ready' | 'error'): unknown;
  /**
   * Closes the connection after pending replies.
   * @returns Once closed.
   */
  quit(): Promise<unknown>;
  /** Closes the connection at once and stops reconnecting. */
  disconnect(): void;
}
