// The tokenwarden command: parses the arguments, opens the store, loads the --config module,
// runs one command and maps every outcome to an exit code (see ./exit-codes.ts). Written against
// an injected I/O so the tests can also drive it in-process; ../cli.ts is the executable.
import type { AuditOptions } from '../audit.js';
import { TokenWardenError } from '../errors.js';
import { createWarden, type Warden } from '../warden.js';
import { type Invocation, parse } from './args.js';
import { loadConfig } from './config.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';
import {
  auditTable,
  clean,
  entryJson,
  findingJson,
  inventoryTable,
  revocationJson,
} from './format.js';
import { type OpenedStore, openStore, type Survey } from './store.js';

/** What the command reads and writes. */
export interface CliIo {
  /** Writes to standard output. */
  readonly stdout: (text: string) => void;
  /** Writes to standard error. */
  readonly stderr: (text: string) => void;
  /** The environment (keys, `--redis-env`). */
  readonly env: Record<string, string | undefined>;
  /** The directory relative paths are resolved against. */
  readonly cwd: string;
  /** The tool's version, for `--version`. */
  readonly version: () => Promise<string>;
}

/** Everything a command needs. */
interface Context {
  readonly io: CliIo;
  readonly args: Invocation;
  readonly opened: OpenedStore;
  readonly survey: Survey;
  readonly warden: Warden;
  readonly now: number;
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** The codes of a store or key that cannot be used: exit 5. */
const STORE_CODES = new Set([
  'ERR_STORE_UNAVAILABLE',
  'ERR_STORE_CORRUPT',
  'ERR_STORE_CONFLICT',
  'ERR_LOCK_TIMEOUT',
  'ERR_KEY_UNAVAILABLE',
  'ERR_UNSUPPORTED',
]);

/** The failure of records that the given key does not open (a wrong key): exit 5. */
function wrongKey(ctx: {
  args: Invocation;
  opened: OpenedStore;
  survey: Survey;
}): CliError | undefined {
  const ids = [...ctx.survey.failed].filter(([, code]) => code === 'ERR_KEY_UNAVAILABLE');
  if (ids.length === 0) return undefined;
  const key =
    ctx.args.store.keychain !== undefined
      ? `the keychain key of service "${ctx.args.store.keychain}"`
      : `the key in ${ctx.args.store.keyEnv}`;
  return new CliError(
    EXIT.store,
    `${ids.length} of ${ctx.survey.ids.length} records in the ${ctx.opened.label} are sealed under a key that ${key} does not open: wrong key? Nothing was changed.`,
    'ERR_KEY_UNAVAILABLE',
  );
}

/** Any other record that could not be read because the store failed: exit 5. */
function unreadable(ctx: { opened: OpenedStore; survey: Survey }): CliError | undefined {
  const failed = [...ctx.survey.failed].find(([, code]) => code !== 'ERR_KEY_UNAVAILABLE');
  if (!failed) return undefined;
  return new CliError(
    EXIT.store,
    `The record of "${clean(failed[0])}" in the ${ctx.opened.label} cannot be read (${failed[1]}). Nothing was changed.`,
    failed[1],
  );
}

async function inventory(ctx: Context): Promise<ExitCode> {
  const entries = await ctx.warden.inventory();
  ctx.io.stdout(
    ctx.args.json
      ? json({ entries: entries.map(entryJson) })
      : `${inventoryTable(entries, ctx.now)}\n`,
  );
  const failure = wrongKey(ctx) ?? unreadable(ctx);
  if (failure) throw failure;
  return EXIT.ok;
}

async function audit(ctx: Context): Promise<ExitCode> {
  const failure = wrongKey(ctx) ?? unreadable(ctx);
  if (failure) throw failure;
  const { args } = ctx;
  const options: AuditOptions = {
    now: ctx.now,
    revoke: args.revoke,
    ...(args.idleFor !== undefined && { idleFor: args.idleFor }),
    ...(args.maxAge !== undefined && { maxAge: args.maxAge }),
    ...(args.expiringWithin !== undefined && { expiringWithin: args.expiringWithin }),
    ...(args.revoke && { signal: AbortSignal.timeout(args.timeoutMs) }),
  };
  const findings = await ctx.warden.audit(options);
  ctx.io.stdout(
    args.json
      ? json({ findings: findings.map(findingJson) })
      : `${auditTable(findings, ctx.now, args.revoke)}\n`,
  );
  if (findings.some((f) => f.error !== undefined)) {
    ctx.io.stderr('tokenwarden: acting on some findings failed; see their action.\n');
    return EXIT.store;
  }
  if (findings.some((f) => f.action === 'revoked' && !f.revocation?.revokedAtServer)) {
    ctx.io.stderr(
      'tokenwarden: some credentials were wiped locally but not confirmed revoked at the server.\n',
    );
    return EXIT.notConfirmed;
  }
  return findings.length > 0 ? EXIT.findings : EXIT.ok;
}

async function revoke(ctx: Context): Promise<ExitCode> {
  const failure = wrongKey(ctx) ?? unreadable(ctx);
  if (failure) throw failure;
  const { args, io, opened } = ctx;
  const id = args.id as string;
  const shown = clean(id);
  const stored = ctx.survey.ids.includes(id);
  const credential = ctx.warden.get(id);

  if (credential) {
    const result = await credential.revoke({ signal: AbortSignal.timeout(args.timeoutMs) });
    if (result.outcome === 'nothing-held' && !stored) {
      throw new CliError(
        EXIT.notFound,
        `"${shown}" is registered but has no stored token in the ${opened.label}: nothing to revoke.`,
      );
    }
    const confirmed = result.revokedAtServer;
    if (args.json) {
      io.stdout(
        json({
          id,
          registered: true,
          deleted: true,
          serverContacted: true,
          ...revocationJson(result),
        }),
      );
    } else if (confirmed) {
      io.stdout(
        `Revoked "${shown}" at the authorization server (${result.tokens.join(', ')}) and deleted its stored record.\n`,
      );
    } else {
      const failures = result.failures.map(
        (f) => `${f.token}: ${f.code}${f.status === undefined ? '' : ` ${f.status}`}`,
      );
      io.stdout(
        `Deleted the stored record of "${shown}", but the authorization server did not confirm the revocation (${result.outcome}${failures.length > 0 ? `; ${failures.join(', ')}` : ''}). Its tokens may stay valid there until they expire.\n`,
      );
    }
    return confirmed ? EXIT.ok : EXIT.notConfirmed;
  }

  if (!stored) {
    throw new CliError(
      EXIT.notFound,
      `No credential or stored record "${shown}" in the ${opened.label}${args.config === undefined ? '' : ' or the --config module'}.`,
    );
  }
  try {
    await opened.store.delete(id);
  } catch (error) {
    throw new CliError(
      EXIT.store,
      `Deleting the record of "${shown}" failed: ${error instanceof TokenWardenError ? error.message : 'the store failed'}.`,
      error instanceof TokenWardenError ? error.code : undefined,
    );
  }
  const why =
    args.config === undefined
      ? 'pass --config with the app’s registrations to revoke at the server'
      : 'the --config module does not register this id';
  if (args.json) {
    io.stdout(
      json({
        id,
        registered: false,
        deleted: true,
        serverContacted: false,
        outcome: 'not-contacted',
        revokedAtServer: false,
      }),
    );
  } else {
    io.stdout(
      `Deleted the stored record of "${shown}" from the ${opened.label}. The authorization server was NOT contacted (${why}): its tokens stay valid there until they expire.\n`,
    );
  }
  return EXIT.notConfirmed;
}

const COMMANDS = { inventory, audit, revoke } as const;

/** The one line an error prints; never a stack, never a secret. */
function failure(error: unknown): { line: string; code: ExitCode } {
  if (error instanceof CliError) return { line: error.message, code: error.exitCode };
  if (error instanceof TokenWardenError) {
    return {
      line: `${error.code}: ${error.message}`,
      code: STORE_CODES.has(error.code) ? EXIT.store : EXIT.internal,
    };
  }
  const name = error instanceof Error ? error.name : typeof error;
  const code = (error as { code?: unknown } | null)?.code;
  return {
    line: `internal error (${name}${typeof code === 'string' ? ` ${code}` : ''}). Please report it.`,
    code: EXIT.internal,
  };
}

/**
 * Runs the tokenwarden command.
 * @param argv - The arguments, without `node` and the script.
 * @param io - Output, environment and working directory.
 * @returns The exit code.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  let opened: OpenedStore | undefined;
  let warden: Warden | undefined;
  try {
    const parsed = parse(argv, io.env);
    if (parsed.kind === 'help') {
      io.stdout(`${parsed.text}\n`);
      return EXIT.ok;
    }
    if (parsed.kind === 'version') {
      io.stdout(`${await io.version()}\n`);
      return EXIT.ok;
    }
    opened = await openStore(parsed.store, io.cwd);
    for (const note of opened.notes) io.stderr(`tokenwarden: ${note}\n`);
    const survey = await opened.survey();
    warden =
      parsed.config === undefined
        ? createWarden({ store: opened.store })
        : await loadConfig(parsed.config, io.cwd, opened.store);
    return await COMMANDS[parsed.command]({
      io,
      args: parsed,
      opened,
      survey,
      warden,
      now: Date.now(),
    });
  } catch (error) {
    const { line, code } = failure(error);
    io.stderr(`tokenwarden: ${line}\n`);
    return code;
  } finally {
    await warden?.close().catch(() => {});
    await opened?.close().catch(() => {});
  }
}
