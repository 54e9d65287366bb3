/**
 * The exit codes of the `tokenwarden` command, for scripts. They never change meaning.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success; for `audit`, no findings |
 * | 1 | `audit` reported findings (also with `--revoke`: read each finding's action) |
 * | 2 | usage error: unknown command or option, missing or conflicting options |
 * | 3 | `revoke` (or `audit --revoke`): the local record was wiped, but revocation at the server was not confirmed (no `--config`, a credential the config does not register, a source that cannot revoke, or a server that failed) |
 * | 4 | `revoke`: no credential or stored record with that id |
 * | 5 | the store or its key is unavailable or unreadable (missing key, wrong key, corrupt file, Redis unreachable, ioredis or @napi-rs/keyring not installed): nothing was changed; or `audit --revoke` could not act on a finding |
 * | 6 | the `--config` module could not be loaded or did not return a warden |
 * | 70 | internal error |
 */
export const EXIT = {
  ok: 0,
  findings: 1,
  usage: 2,
  notConfirmed: 3,
  notFound: 4,
  store: 5,
  config: 6,
  internal: 70,
} as const;

/** One of the {@link EXIT} codes. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit-code table of `--help`. */
export const EXIT_HELP = `Exit codes:
  0   success; for audit, no findings
  1   audit reported findings (also with --revoke: read each finding's action)
  2   usage error
  3   revoke, audit --revoke: wiped locally, not confirmed revoked at the server
  4   revoke: no credential or stored record with that id
  5   the store or its key is unavailable or unreadable; nothing was changed
  6   the --config module could not be loaded or did not return a warden
  70  internal error`;

/**
 * A failure the command reports as one line on stderr and turns into its exit code. Its message
 * is written for the operator and never holds a secret.
 */
export class CliError extends Error {
  override name = 'CliError' as const;

  /**
   * @param exitCode - The process exit code.
   * @param message - One line saying what went wrong and what to do.
   * @param code - The tokenwarden error code behind it, when there is one.
   */
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** A usage error (exit 2). */
export function usage(message: string): CliError {
  return new CliError(EXIT.usage, message);
}
