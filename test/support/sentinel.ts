import { inspect } from 'node:util';

/**
 * Sentinel secrets: distinctive strings used as tokens and client secrets so that a leak can be
 * found by searching for them. Each contains characters that URL and form encoding change.
 */
export const SENTINEL = {
  accessToken: 'tw-sentinel-access-Zq8f3kP1xV',
  refreshToken: 'tw-sentinel-refresh-Hj5LmN7bQc',
  clientSecret: 'tw-sentinel-secret-%:+ Yw2R/é',
  apiKey: 'tw-sentinel-apikey-Kd93hFq0Lm',
} as const;

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/**
 * Every form a secret can take on its way out: raw, base64, base64url, URL-encoded and
 * form-encoded, plus the base64 of the Basic-auth pair prefix so a partially encoded secret
 * inside `id:secret` is found too.
 */
export function encodings(secret: string): string[] {
  const forms = new Set<string>([
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ x: secret }).toString().slice(2),
    base64(secret),
    base64(secret).replace(/=+$/, ''),
    Buffer.from(secret, 'utf8').toString('base64url'),
  ]);
  // base64 of a secret embedded in a longer string depends on its offset mod 3: search the
  // stable middle of each alignment.
  for (const pad of ['', 'a', 'aa']) {
    const encoded = base64(pad + secret);
    const start = Math.ceil((pad.length * 4) / 3) + 4;
    forms.add(encoded.slice(start, start + 12));
  }
  return [...forms].filter((form) => form.length >= 8);
}

/** Renders anything the way a log, an error reporter or a serialiser might. */
export function renderings(value: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const visit = (item: unknown, depth: number) => {
    if (depth > 6 || seen.has(item)) return;
    if (typeof item === 'object' && item !== null) seen.add(item);
    out.push(inspect(item, { depth: 10, showHidden: true, getters: true }));
    try {
      out.push(JSON.stringify(item) ?? '');
    } catch {
      // Circular structures cannot be JSON; inspect covers them.
    }
    try {
      out.push(String(item));
    } catch {
      // Objects without a string form.
    }
    if (item instanceof Error) {
      out.push(item.message, item.stack ?? '');
      visit(item.cause, depth + 1);
      for (const key of Object.getOwnPropertyNames(item)) {
        visit((item as unknown as Record<string, unknown>)[key], depth + 1);
      }
    } else if (typeof item === 'object' && item !== null) {
      for (const child of Object.values(item)) visit(child, depth + 1);
    }
  };
  visit(value, 0);
  return out;
}

/** Returns a description of each leak of `secrets` found in `observed`; empty when clean. */
export function findLeaks(observed: unknown[], secrets: readonly string[]): string[] {
  const leaks: string[] = [];
  const needles = secrets.flatMap((secret) => encodings(secret).map((form) => ({ secret, form })));
  observed.forEach((item, index) => {
    for (const text of renderings(item)) {
      for (const { secret, form } of needles) {
        if (text.includes(form)) {
          leaks.push(
            `observation #${index} contains ${JSON.stringify(secret.slice(0, 20))} as ${JSON.stringify(form)}: ${text.slice(0, 200)}`,
          );
        }
      }
    }
  });
  return leaks;
}
