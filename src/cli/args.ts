// The command line: parsed with node:util parseArgs (strict), then checked per command, so that
// every mistake is a usage error (exit 2) before any store is touched.
import { parseArgs } from 'node:util';
import { type Duration, toMs } from '../internal/duration.js';
import { EXIT_HELP, usage } from './exit-codes.js';

/** The commands. */
export type CommandName = 'inventory' | 'audit' | 'revoke';

/** Where the records are and how they are opened. */
export interface StoreArgs {
  /** The token file of a `fileStore`. */
  readonly file?: string;
  /** The Redis URL of a `redisStore` (`redis://` or `rediss://`). */
  readonly redis?: string;
  /** The key prefix of the Redis store. */
  readonly prefix?: string;
  /** The environment variable that holds the key (when the keychain is not used). */
  readonly keyEnv: string;
  /** The keychain service of a `keychainKey`. */
  readonly keychain?: string;
  /** The keychain account of a `keychainKey`. */
  readonly keychainAccount?: string;
}

/** A command to run. */
export interface Invocation {
  readonly kind: 'run';
  readonly command: CommandName;
  readonly store: StoreArgs;
  /** The `--config` module. */
  readonly config?: string;
  readonly json: boolean;
  /** `revoke`: the credential id. */
  readonly id?: string;
  /** `audit` thresholds, already checked. */
  readonly idleFor?: Duration;
  readonly maxAge?: Duration;
  readonly expiringWithin?: Duration;
  /** `audit --revoke`. */
  readonly revoke: boolean;
  /** How long `revoke` (and `audit --revoke`) wait for the authorization server, in ms. */
  readonly timeoutMs: number;
}

/** What the command line asks for. */
export type Parsed =
  | Invocation
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version' };

/** The default environment variable of the key. */
export const DEFAULT_KEY_ENV = 'TOKENWARDEN_KEY';

const OPTIONS = {
  file: { type: 'string' },
  redis: { type: 'string' },
  'redis-env': { type: 'string' },
  prefix: { type: 'string' },
  'key-env': { type: 'string' },
  keychain: { type: 'string' },
  'keychain-account': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  'idle-for': { type: 'string' },
  'max-age': { type: 'string' },
  'expiring-within': { type: 'string' },
  revoke: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

const STORE_HELP = `Store (one of):
  --file <path>              a fileStore token file
  --redis <url>              a redisStore (redis:// or rediss://)
  --redis-env <NAME>         read the Redis URL from this environment variable
                             (keeps a password out of the process list)
  --prefix <prefix>          the Redis key prefix (default 'tokenwarden:')

Key (one of):
  --key-env <NAME>           the environment variable holding the key
                             (default TOKENWARDEN_KEY)
  --keychain <service>       the OS keychain entry of keychainKey({ service })
  --keychain-account <name>  its account (default '__tokenwarden_key__')

Other options:
  --config <module>          an ES module whose default export is
                             (store) => Warden | Promise<Warden>: it registers the app's
                             credentials, so they show as registered and revoke reaches
                             the authorization server
  --json                     machine-readable JSON on stdout
  -h, --help                 this help`;

/** The help text of the tool, or of one command. */
export function helpText(command?: CommandName): string {
  switch (command) {
    case 'inventory':
      return `Usage: tokenwarden inventory (--file <path> | --redis <url>) [options]

Lists every credential the --config module registers and every record in the store
(records no credential registers are 'orphaned'): state, source, scopes, expiry, last
use and a fingerprint of the access token (the first 16 hex digits of its SHA-256).
Never a token.

${STORE_HELP}

${EXIT_HELP}`;
    case 'audit':
      return `Usage: tokenwarden audit (--file <path> | --redis <url>) [options]

Reports unused, orphaned, over-age, over-scoped, expiring and reauth-required
credentials. Exits 1 when there are findings, 0 when there are none.

Audit options:
  --idle-for <duration>         unused after this long without a request (default 30d)
  --max-age <duration>          over-age when the token or key is older (default 90d)
  --expiring-within <duration>  expiring within this window (default 7d)
  --revoke                      revoke unused credentials (with --config, at the server)
                                and delete orphaned records
  --timeout <duration>          how long revocations wait for the server (default 30s)
Durations: 500ms, 30s, 5m, 2h, 30d.

${STORE_HELP}

${EXIT_HELP}`;
    case 'revoke':
      return `Usage: tokenwarden revoke <id> (--file <path> | --redis <url>) [options]

With --config registering <id>: revokes its tokens at the authorization server
(RFC 7009) and deletes every stored copy; exits 0 when the server confirmed it.
Otherwise deletes the stored record only, says that the server was not contacted,
and exits 3: the tokens stay valid at the server until they expire.

  --timeout <duration>       how long to wait for the server (default 30s)

${STORE_HELP}

${EXIT_HELP}`;
    default:
      return `Usage: tokenwarden <command> (--file <path> | --redis <url>) [options]

Commands:
  inventory        list credentials and stored records (never a token)
  audit            report unused, orphaned, over-age, over-scoped and expiring ones
  revoke <id>      revoke one credential and delete its stored record
  help [command]   this help, or a command's

${STORE_HELP}
  --version                  the version

${EXIT_HELP}

Run 'tokenwarden help <command>' for a command's options.`;
  }
}

const COMMANDS: readonly CommandName[] = ['inventory', 'audit', 'revoke'];

function isCommand(name: string | undefined): name is CommandName {
  return COMMANDS.includes(name as CommandName);
}

/** Checks a duration option; a malformed one is a usage error. */
function duration(value: string | undefined, option: string): Duration | undefined {
  if (value === undefined) return undefined;
  try {
    toMs(value, option);
  } catch {
    throw usage(`--${option} must be a duration such as 30s, 5m, 12h or 30d, not "${value}".`);
  }
  return value as Duration;
}

/** The first sentence of a parseArgs error, which names the option. */
function parseError(error: unknown): string {
  const message = error instanceof Error ? error.message : 'Invalid arguments.';
  const first = /^[^.]*\./.exec(message)?.[0] ?? message;
  return first.replace(/'/g, '"');
}

/**
 * Parses the arguments (without `node` and the script).
 * @param argv - The arguments.
 * @param env - The environment (for `--redis-env`).
 * @returns What to do.
 * @throws {@link CliError} (exit 2) for every usage error.
 */
export function parse(argv: readonly string[], env: Record<string, string | undefined>): Parsed {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage(`${parseError(error)} Run 'tokenwarden --help'.`);
  }
  const { values, positionals } = parsed;
  const [name, ...rest] = positionals;

  if (name === 'help') {
    const topic = rest[0];
    if (topic !== undefined && !isCommand(topic)) {
      throw usage(`There is no command "${topic}". Run 'tokenwarden --help'.`);
    }
    return { kind: 'help', text: helpText(topic) };
  }
  if (values.help) return { kind: 'help', text: helpText(isCommand(name) ? name : undefined) };
  if (values.version) return { kind: 'version' };
  if (name === undefined) throw usage(`No command given. Run 'tokenwarden --help'.`);
  if (!isCommand(name)) throw usage(`There is no command "${name}". Run 'tokenwarden --help'.`);

  let id: string | undefined;
  if (name === 'revoke') {
    if (rest.length !== 1 || rest[0] === '') {
      throw usage('revoke needs exactly one credential id: tokenwarden revoke <id> ...');
    }
    id = rest[0];
  } else if (rest.length > 0) {
    throw usage(`${name} takes no arguments, but got "${rest[0]}".`);
  }

  if (name !== 'audit') {
    for (const option of ['idle-for', 'max-age', 'expiring-within', 'revoke'] as const) {
      if (values[option] !== undefined) throw usage(`--${option} is an option of audit only.`);
    }
  }
  if (name === 'inventory' && values.timeout !== undefined) {
    throw usage('--timeout is an option of revoke and audit --revoke only.');
  }

  const stores = (['file', 'redis', 'redis-env'] as const).filter((o) => values[o] !== undefined);
  if (stores.length === 0) {
    throw usage('Say which store to open: --file <path> or --redis <url>.');
  }
  if (stores.length > 1) {
    throw usage(`Give one store only, not ${stores.map((o) => `--${o}`).join(' and ')}.`);
  }
  let redis = values.redis;
  const redisEnv = values['redis-env'];
  if (redisEnv !== undefined) {
    redis = env[redisEnv];
    if (redis === undefined || redis.trim() === '') {
      throw usage(`--redis-env: the environment variable ${redisEnv} is not set.`);
    }
  }
  if (values.prefix !== undefined && redis === undefined) {
    throw usage('--prefix is an option of the Redis store (--redis) only.');
  }
  if (values.file !== undefined && values.file.trim() === '') {
    throw usage('--file needs the path of the token file.');
  }
  if (values.keychain !== undefined && values['key-env'] !== undefined) {
    throw usage('Give one key only: --key-env <NAME> or --keychain <service>.');
  }
  if (values['keychain-account'] !== undefined && values.keychain === undefined) {
    throw usage('--keychain-account needs --keychain <service>.');
  }
  const keyEnv = values['key-env'] ?? DEFAULT_KEY_ENV;
  if (keyEnv === '' || keyEnv.includes('=')) {
    throw usage('--key-env needs the name of an environment variable.');
  }

  const timeout = duration(values.timeout, 'timeout') ?? '30s';
  const store: StoreArgs = {
    keyEnv,
    ...(values.file !== undefined && { file: values.file }),
    ...(redis !== undefined && { redis }),
    ...(values.prefix !== undefined && { prefix: values.prefix }),
    ...(values.keychain !== undefined && { keychain: values.keychain }),
    ...(values['keychain-account'] !== undefined && {
      keychainAccount: values['keychain-account'],
    }),
  };
  const idleFor = duration(values['idle-for'], 'idle-for');
  const maxAge = duration(values['max-age'], 'max-age');
  const expiringWithin = duration(values['expiring-within'], 'expiring-within');
  return {
    kind: 'run',
    command: name,
    store,
    json: values.json === true,
    revoke: values.revoke === true,
    timeoutMs: toMs(timeout, 'timeout'),
    ...(values.config !== undefined && { config: values.config }),
    ...(id !== undefined && { id }),
    ...(idleFor !== undefined && { idleFor }),
    ...(maxAge !== undefined && { maxAge }),
    ...(expiringWithin !== undefined && { expiringWithin }),
  };
}
