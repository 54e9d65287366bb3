import type { BlockReason } from '../../../src/errors.js';
import type {
  AttachedToken,
  BlockAction,
  ForeignOriginAction,
  RequestOutcome,
  TransportHost,
} from '../../../src/transport/types.js';

/** Sentinel tokens: distinctive, and containing characters that URL encoding changes. */
export const TOKEN_1 = 'tw-transport-token-1+Zq8/f3kP1xV';
export const TOKEN_2 = 'tw-transport-token-2+Hj5/LmN7bQc';

/** Options of {@link fakeHost}. */
export interface FakeHostOptions {
  origins?: string[];
  allowInsecure?: boolean;
  foreignOrigin?: ForeignOriginAction;
  header?: string;
  scheme?: string | null;
  maxRedirects?: number;
  tokens?: string[];
  recoverError?: unknown;
  peek?: boolean;
  acquireDelayMs?: number;
}

/** What the fake host recorded. */
export interface FakeHost extends TransportHost {
  acquireCount: number;
  recoverCalls: number[];
  refreshes: number;
  blockedEvents: Array<{ reason: BlockReason; url: string; action: BlockAction | undefined }>;
  outcomes: RequestOutcome[];
}

/**
 * A small TransportHost: hands out tokens from a list, counts acquire/recover, dedupes
 * concurrent recoveries of the same generation (as a credential's single-flight does) and
 * records every blocked event and outcome.
 */
export function fakeHost(options: FakeHostOptions = {}): FakeHost {
  const tokens = options.tokens ?? [TOKEN_1, TOKEN_2, 'tw-transport-token-3'];
  const header = options.header ?? 'Authorization';
  const scheme = options.scheme === undefined ? 'Bearer' : options.scheme;
  let generation = 1;
  let inflight: { from: number; promise: Promise<AttachedToken> } | undefined;
  const attached = (): AttachedToken => {
    const raw = tokens[Math.min(generation - 1, tokens.length - 1)] as string;
    return { header, value: scheme === null ? raw : `${scheme} ${raw}`, raw, generation };
  };
  const host: FakeHost = {
    id: 'test',
    origins: new Set(options.origins ?? ['https://api.example.com']),
    allowInsecure: options.allowInsecure ?? false,
    foreignOrigin: options.foreignOrigin ?? 'block',
    credentialHeaders: [header, 'Authorization', 'DPoP'],
    fetch: (input, init) => globalThis.fetch(input, init),
    maxRedirects: options.maxRedirects ?? 20,
    acquireCount: 0,
    recoverCalls: [],
    refreshes: 0,
    blockedEvents: [],
    outcomes: [],
    async acquire(signal) {
      host.acquireCount++;
      if (options.acquireDelayMs !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, options.acquireDelayMs));
      }
      signal?.throwIfAborted();
      return attached();
    },
    recover(from) {
      host.recoverCalls.push(from);
      if (options.recoverError !== undefined) return Promise.reject(options.recoverError);
      if (from < generation) return Promise.resolve(attached());
      if (inflight?.from === from) return inflight.promise;
      const promise = new Promise<AttachedToken>((resolve) =>
        setTimeout(() => {
          host.refreshes++;
          generation = from + 1;
          inflight = undefined;
          resolve(attached());
        }, 5),
      );
      inflight = { from, promise };
      return promise;
    },
    blocked(reason, url, action) {
      host.blockedEvents.push({ reason, url, action });
    },
    observed(outcome) {
      host.outcomes.push(outcome);
    },
  };
  if (options.peek) host.peek = () => attached();
  return host;
}
