import { TokenWardenError } from '../errors.js';

/** The error a caller's abort turns into. */
export function abortError(signal: AbortSignal): TokenWardenError {
  return new TokenWardenError('ERR_ABORTED', 'The operation was aborted by its AbortSignal.', {
    cause: signal.reason,
  });
}

/**
 * Lets one caller stop waiting for a shared promise (a refresh other callers also wait for)
 * without cancelling it for the others.
 */
export function raceSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal | null | undefined,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
