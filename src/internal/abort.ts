import { TokenWardenError } from '../errors.js';

/** The error a caller's abort turns into. */
export function abortError(signal: AbortSignal): TokenWardenError {
  return new TokenWardenError('ERR_ABORTED', 'The operation was aborted by its AbortSignal.', {
    cause: signal.reason,
  });
}

/**
 * Settles like `promise`, unless `signal` aborts first: then it rejects at once with
 * `reason(signal)` (the signal's own reason by default) and calls `onAbort`. The promise itself
 * runs on, which is what lets one caller stop waiting for work that others share or that ignores
 * signals.
 */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | null | undefined,
  reason: (signal: AbortSignal) => unknown = (aborted) => aborted.reason,
  onAbort?: () => void,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    // The promise may still settle later; observe it so it is never an unhandled rejection.
    promise.catch(() => {});
    onAbort?.();
    return Promise.reject(reason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      reject(reason(signal));
      onAbort?.();
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}

/**
 * Lets one caller stop waiting for a shared promise (a refresh other callers also wait for)
 * without cancelling it for the others; the caller gets `ERR_ABORTED`.
 */
export function raceSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal | null | undefined,
): Promise<T> {
  return untilAborted(promise, signal, abortError);
}

/** A signal that aborts when any of `signals` does (AbortSignal.any, where the runtime lacks it). */
export function anySignal(signals: readonly AbortSignal[]): AbortSignal {
  const native = (AbortSignal as { any?: (signals: AbortSignal[]) => AbortSignal }).any;
  if (native) return native([...signals]);
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  }
  return controller.signal;
}

/** Waits `ms`, or rejects with `ERR_ABORTED` as soon as `signal` aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
