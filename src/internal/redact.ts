/** The marker every secret prints as. */
export const REDACTED = '[REDACTED]';

/**
 * Node's `util.inspect` hook, reached through the global symbol registry so the core needs no
 * `node:` import.
 */
export const INSPECT: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/**
 * A URL fit for logs, events and errors: scheme, host, port and path only. Query, fragment and
 * userinfo are dropped because that is where secrets end up.
 */
export function safeUrl(input: string | URL): string {
  try {
    const url = typeof input === 'string' ? new URL(input) : input;
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '[invalid URL]';
  }
}
