import { isTokenWardenError } from '../errors.js';

/**
 * What kind of failure a thrown value is, in a word safe for logs, events and metrics: a
 * tokenwarden error's code, else the error's name (`TimeoutError` for `AbortSignal.timeout()`,
 * `AbortError`, `TypeError` for a network failure in `fetch`), else the `typeof` of the value
 * (an abort reason can be anything). Never a message: messages carry URLs, addresses and, in an
 * application's own errors, maybe secrets.
 */
export function errorKind(error: unknown): string {
  if (isTokenWardenError(error)) return error.code;
  if (typeof error === 'object' && error !== null) {
    const { name } = error as { name?: unknown };
    if (typeof name === 'string' && name !== '') return name;
  }
  return typeof error;
}
