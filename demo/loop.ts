// A steady stream of API calls through one credential, the way a service's handlers would make
// them: a few concurrent workers, each sending a request, then pausing briefly.
import type { CredentialStats } from './stats.js';

export interface LoopOptions {
  /** Concurrent workers; more than one shows that concurrent callers share one refresh. */
  readonly workers: number;
  /** Pause of each worker between two requests, milliseconds. */
  readonly intervalMs: number;
  /** Sends one request; resolves when it succeeded, rejects otherwise. */
  readonly send: () => Promise<void>;
  /** Told about each failed request. */
  readonly onFailure: (error: unknown) => void;
}

export class RequestLoop {
  readonly #stats: CredentialStats;
  readonly #options: LoopOptions;
  readonly #stop = new AbortController();
  #workers: Promise<void>[] = [];
  #inflight = 0;
  #paused = false;
  #resume: (() => void) | undefined;
  #gate: Promise<void> = Promise.resolve();
  #drained: (() => void) | undefined;

  constructor(stats: CredentialStats, options: LoopOptions) {
    this.#stats = stats;
    this.#options = options;
  }

  start(): void {
    this.#workers = Array.from({ length: this.#options.workers }, () => this.#work());
  }

  /** Holds new requests and waits for those in flight, so a step can own the credential's traffic. */
  async pause(): Promise<void> {
    if (!this.#paused) {
      this.#paused = true;
      this.#gate = new Promise((resolve) => {
        this.#resume = resolve;
      });
    }
    if (this.#inflight > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
    }
  }

  resume(): void {
    this.#paused = false;
    this.#resume?.();
    this.#resume = undefined;
  }

  /** Stops every worker after its current request. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.resume();
    await Promise.all(this.#workers);
  }

  async #work(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      // Re-checked after every wake-up: pause() may have been called while this worker waited,
      // and the check and the in-flight count below must happen without an await between them.
      while (this.#paused && !signal.aborted) await this.#gate;
      if (signal.aborted) break;
      this.#inflight++;
      const started = performance.now();
      try {
        await this.#options.send();
        this.#stats.ok++;
        this.#stats.latencies.push(performance.now() - started);
      } catch (error) {
        this.#stats.failed++;
        this.#options.onFailure(error);
      } finally {
        this.#inflight--;
        if (this.#inflight === 0) {
          this.#drained?.();
          this.#drained = undefined;
        }
      }
      await sleep(this.#options.intervalMs, signal);
    }
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
