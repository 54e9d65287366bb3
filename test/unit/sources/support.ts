import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createSkewClock } from '../../../src/internal/clock.js';
import { clearDiscoveryCache } from '../../../src/sources/discovery.js';
import type { SourceContext } from '../../../src/sources/types.js';

/** The issuer every source test talks to. */
export const ISSUER = 'https://auth.example.com';
export const TOKEN_ENDPOINT = 'https://auth.example.com/oauth/token';

/** An msw server with the strict hooks every file installs. */
export function useMsw(): ReturnType<typeof setupServer> {
  const server = setupServer();
  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
  afterEach(() => {
    server.resetHandlers();
    clearDiscoveryCache();
  });
  afterAll(() => server.close());
  return server;
}

/** A source context with test defaults; `fetch` goes through msw's patched global. */
export function makeContext(overrides: Partial<SourceContext> = {}): SourceContext {
  return {
    credentialId: 'test-credential',
    current: undefined,
    signal: new AbortController().signal,
    fetch: (input, init) => globalThis.fetch(input, init),
    timeoutMs: 5_000,
    maxResponseBytes: 65_536,
    defaultLifetimeMs: 3_600_000,
    clock: createSkewClock(),
    ...overrides,
  };
}

/** Awaits a promise that must reject, and returns what it rejected with. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Calls a function that must throw, and returns what it threw. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}
