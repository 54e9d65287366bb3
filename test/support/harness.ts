// Shared setup of the integration tests: the oidc fixture per file, a warden per test, the
// credential builders of ./credentials.ts, and helpers for what the fixture recorded.
import { afterAll, afterEach, beforeAll } from 'vitest';
import {
  createWarden,
  type Warden,
  type WardenEvents,
  type WardenOptions,
} from '../../src/index.js';
import {
  type OidcServer,
  type OidcServerOptions,
  type RecordedRequest,
  startOidcServer,
  type TokenCounts,
} from './oidc-server.js';

export * from './credentials.js';

/** Starts the oidc fixture before the file's tests and closes it after them. */
export function useOidcServer(options?: OidcServerOptions): () => OidcServer {
  let server: OidcServer | undefined;
  beforeAll(async () => {
    server = await startOidcServer(options);
  });
  afterAll(async () => {
    await server?.close();
  });
  return () => {
    if (!server) throw new Error('the oidc fixture runs only inside the tests and their hooks');
    return server;
  };
}

/** Returns a `createWarden` whose warden is closed after each test. */
export function useWarden(): (options?: WardenOptions) => Warden {
  let warden: Warden | undefined;
  afterEach(async () => {
    await warden?.close();
    warden = undefined;
  });
  return (options) => {
    warden = createWarden(options);
    return warden;
  };
}

/** Collects every `name` event the warden emits from now on. */
export function collect<K extends keyof WardenEvents>(
  warden: Warden,
  name: K,
): WardenEvents[K][0][] {
  const events: WardenEvents[K][0][] = [];
  warden.on(name, (...args) => events.push(args[0]));
  return events;
}

/** Token-endpoint counts (optionally of one grant type) since the call, as a difference. */
export function tokenCountsSince(op: OidcServer, grantType?: string): () => TokenCounts {
  const before = op.tokenCounts(grantType);
  return () => {
    const now = op.tokenCounts(grantType);
    const errors: Record<string, number> = {};
    for (const code of new Set([...Object.keys(before.errors), ...Object.keys(now.errors)])) {
      errors[code] = (now.errors[code] ?? 0) - (before.errors[code] ?? 0);
    }
    return {
      total: now.total - before.total,
      ok: now.ok - before.ok,
      failed: now.failed - before.failed,
      errors,
    };
  };
}

/** How much `read()` has grown since the call, e.g. the requests recorded since then. */
export function countSince(read: () => number): () => number {
  const before = read();
  return () => read() - before;
}

/** The token-endpoint requests the authorization server received, oldest first. */
export function tokenEndpointRequests(op: OidcServer): RecordedRequest[] {
  return op.requests.filter((r) => r.url === '/token');
}

/** The form body of the latest token-endpoint request. */
export function lastTokenForm(op: OidcServer): URLSearchParams {
  return new URLSearchParams(tokenEndpointRequests(op).at(-1)?.body);
}
