import { type InvalidArgumentError, invalidArgument, TokenWardenError } from '../errors.js';
import { type KeyProvider, keyUnavailable, redacted, staticKey } from '../stores/keys.js';

/**
 * A key provider that reads the sealing key from an environment variable: 32 random bytes in
 * base64url (43 characters). The variable is read at first use, not at creation, and the key
 * is kept (non-extractable) from then on. Create a key with
 * `node -e "console.log(crypto.randomBytes(32).toString('base64url'))"`.
 *
 * The environment is inherited by child processes: prefer `keychainKey()` on a workstation,
 * and a secret manager that injects the variable in a service.
 *
 * @param name - The variable's name, e.g. `TOKENWARDEN_KEY`.
 * @returns A {@link KeyProvider} of kind `env`. `rotate(next)` needs the new key (like
 *   `staticKey`); put it into the variable before the next start, or the records are wiped.
 * @throws An {@link InvalidArgumentError} when `name` is not a variable name. At first use, the
 *   provider throws {@link TokenWardenError}, naming the variable (never its value):
 *   `ERR_STORE_UNAVAILABLE` when it is unset (the stored records are kept for a process that has
 *   it), `ERR_KEY_UNAVAILABLE` when it does not hold 32 base64url bytes (the key is unusable: a
 *   store of this process alone is wiped; a file or Redis store, shared, is left as it is).
 * @example
 * ```ts
 * import { createWarden } from 'tokenwarden';
 * import { envKey, fileStore } from 'tokenwarden/node';
 * // TOKENWARDEN_KEY=$(node -e "console.log(crypto.randomBytes(32).toString('base64url'))")
 * const store = fileStore({ path: './tokens.json', key: envKey('TOKENWARDEN_KEY') });
 * const warden = createWarden({ store });
 * ```
 */
export function envKey(name: string): KeyProvider {
  if (typeof name !== 'string' || name === '' || name.includes('=') || name.includes('\u0000')) {
    throw invalidArgument(
      "envKey(name): name must be the name of an environment variable, e.g. envKey('TOKENWARDEN_KEY').",
    );
  }
  let inner: KeyProvider | undefined;
  const load = (): KeyProvider => {
    if (inner) return inner;
    const value = process.env[name];
    if (value === undefined || value.trim() === '') {
      // Not a lost key but a process started without it (a cron job, another shell): the
      // records stay for a run that has it, so this is not the wiping ERR_KEY_UNAVAILABLE.
      throw new TokenWardenError(
        'ERR_STORE_UNAVAILABLE',
        `The environment variable ${name} is not set. Set it to 32 random bytes in base64url, e.g. the output of: node -e "console.log(crypto.randomBytes(32).toString('base64url'))"`,
      );
    }
    try {
      inner = staticKey(value);
    } catch {
      // The parse error says nothing about the value either, but the message should name the
      // variable, and no cause may carry what was in it.
      throw keyUnavailable(
        `The environment variable ${name} does not hold a usable key: it must be 32 random bytes in base64url (43 characters).`,
      );
    }
    return inner;
  };
  return redacted<KeyProvider>({
    kind: 'env',
    current: async () => load().current(),
    find: async (kid) => load().find(kid),
    async rotate(next) {
      if (next === undefined || (typeof next !== 'string' && !(next instanceof Uint8Array))) {
        throw invalidArgument(
          `Rotating the key from ${name} needs the new key: rotateKey(newKey). Put the new key into ${name} before the next start.`,
        );
      }
      return load().rotate(next);
    },
    retire: async (kid) => load().retire(kid),
  });
}
