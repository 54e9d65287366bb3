// Loads the --config module: the application's own registration code, so that the CLI sees its
// credentials as registered and can revoke them at their authorization server.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TokenWardenError } from '../errors.js';
import type { TokenStore } from '../stores/types.js';
import type { Warden } from '../warden.js';
import { CliError, EXIT } from './exit-codes.js';

/**
 * What a config module exports as its default: a function that creates a warden on the store
 * it is given and registers the application's credentials on it.
 *
 * ```js
 * // tokenwarden.config.mjs
 * import { createWarden, clientCredentials } from 'tokenwarden';
 * export default (store) => {
 *   const warden = createWarden({ store });
 *   warden.register('billing', { source: clientCredentials({ ... }), origins: [...] });
 *   return warden;
 * };
 * ```
 */
export type ConfigFunction = (store: TokenStore) => Warden | Promise<Warden>;

/** Errors of module loading, whose messages name a path, never a value. */
const LOADER_CODES = new Set([
  'ERR_MODULE_NOT_FOUND',
  'ERR_UNSUPPORTED_DIR_IMPORT',
  'ERR_UNKNOWN_FILE_EXTENSION',
  'ERR_UNSUPPORTED_ESM_URL_SCHEME',
]);

/**
 * Describes a failure of the config module in one line. Its own errors are shown by name only:
 * their messages are the application's, and may hold a secret.
 */
function describe(error: unknown): string {
  if (error instanceof TokenWardenError) return `${error.code}: ${error.message}`;
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof code === 'string' && LOADER_CODES.has(code)) {
    return error.message.split('\n')[0] as string;
  }
  if (error instanceof SyntaxError) return 'SyntaxError (run the module with node to see where)';
  const name = error instanceof Error ? error.name : typeof error;
  return `${name}${typeof code === 'string' ? ` ${code}` : ''} (its message is not shown, as it may hold a secret; run the module with node to see it)`;
}

function isWarden(value: unknown): value is Warden {
  const candidate = value as Partial<Warden> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    ['inventory', 'audit', 'get', 'close', 'credentials'].every(
      (method) => typeof (candidate as Record<string, unknown>)[method] === 'function',
    )
  );
}

/**
 * Imports the config module and calls its default export with the store.
 * @param path - The module's path, relative to `cwd`.
 * @param cwd - The working directory.
 * @param store - The store the warden must use.
 * @returns The warden it returned.
 * @throws {@link CliError} exit 6 when the module cannot be loaded, has no default function, or
 *   does not return a warden.
 */
export async function loadConfig(path: string, cwd: string, store: TokenStore): Promise<Warden> {
  const url = pathToFileURL(resolve(cwd, path)).href;
  let loaded: { default?: unknown };
  try {
    loaded = (await import(url)) as { default?: unknown };
  } catch (error) {
    throw new CliError(EXIT.config, `The --config module cannot be loaded: ${describe(error)}`);
  }
  if (typeof loaded.default !== 'function') {
    throw new CliError(
      EXIT.config,
      'The --config module must have a default export (store) => Warden that creates a warden on the given store and registers the credentials.',
    );
  }
  let warden: unknown;
  try {
    warden = await (loaded.default as ConfigFunction)(store);
  } catch (error) {
    throw new CliError(EXIT.config, `The --config function failed: ${describe(error)}`);
  }
  if (!isWarden(warden)) {
    throw new CliError(
      EXIT.config,
      'The --config function must return the warden it created (createWarden({ store })).',
    );
  }
  return warden;
}
