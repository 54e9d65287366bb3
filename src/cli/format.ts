// Output: aligned tables for people, JSON with ISO times for scripts. Neither ever holds a token:
// both are built from inventory entries and audit findings, which carry fingerprints only.
import type { AuditFinding, InventoryEntry } from '../audit.js';
import type { RevokeResult } from '../revoke.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Control characters become `?`: ids and scopes come from the store and the server, and a
 * crafted one must not move the cursor or recolour the operator's terminal.
 */
export function clean(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
}

/** A duration in its largest sensible unit: `45s`, `12m`, `5h`, `3d`. */
export function span(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < MINUTE) return `${Math.round(abs / SECOND)}s`;
  if (abs < HOUR) return `${Math.floor(abs / MINUTE)}m`;
  if (abs < 2 * DAY) return `${Math.floor(abs / HOUR)}h`;
  return `${Math.floor(abs / DAY)}d`;
}

/** A time as `2026-11-29 01:43Z (in 59m)` or `(3d ago)`. */
export function when(at: number | undefined, now: number, none = '-'): string {
  if (at === undefined) return none;
  const iso = new Date(at).toISOString();
  const short = `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z`;
  return at >= now ? `${short} (in ${span(at - now)})` : `${short} (${span(now - at)} ago)`;
}

/** An aligned table: a header row, then one row per item; two spaces between columns. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [headers, ...rows].map((row) => row.map((cell) => clean(cell)));
  const widths = headers.map((_, column) =>
    Math.max(...cells.map((row) => (row[column] ?? '').length)),
  );
  return cells
    .map((row) =>
      row
        .map((cell, column) =>
          column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const TIMES = ['issuedAt', 'expiresAt', 'createdAt', 'lastUsedAt', 'lastRefreshedAt'] as const;

/** A copy with the epoch-millisecond times as ISO 8601 strings. */
function isoTimes<T extends object>(item: T): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(item as Record<string, unknown>) };
  for (const field of TIMES) {
    const value = out[field];
    if (typeof value === 'number') out[field] = new Date(value).toISOString();
  }
  return out;
}

/** An inventory entry for `--json`. */
export function entryJson(entry: InventoryEntry): Record<string, unknown> {
  return isoTimes(entry);
}

/** A revocation result for `--json`: failures by token and code (the error objects dropped). */
export function revocationJson(result: RevokeResult): Record<string, unknown> {
  return {
    outcome: result.outcome,
    revokedAtServer: result.revokedAtServer,
    tokens: [...result.tokens],
    failures: result.failures.map(({ token, code, status }) => ({
      token,
      code,
      ...(status !== undefined && { status }),
    })),
    wipedLocally: result.wipedLocally,
  };
}

/** An audit finding for `--json`. */
export function findingJson(finding: AuditFinding): Record<string, unknown> {
  const out = isoTimes(finding);
  if (finding.revocation) out['revocation'] = revocationJson(finding.revocation);
  return out;
}

/** The scopes of an entry: granted ones, else the ones asked for. */
function scopes(entry: InventoryEntry): string {
  const list = entry.grantedScope ?? entry.requestedScope;
  return list && list.length > 0 ? list.join(' ') : '-';
}

/** The inventory as a table. */
export function inventoryTable(entries: readonly InventoryEntry[], now: number): string {
  if (entries.length === 0) return 'No credentials and no stored records.';
  return table(
    ['ID', 'STATE', 'SOURCE', 'SCOPES', 'EXPIRES', 'LAST USED', 'FINGERPRINT'],
    entries.map((entry) => [
      entry.id,
      entry.error === undefined ? entry.state : `${entry.state} (${entry.error})`,
      entry.sourceKind ?? (entry.registered ? '-' : '(not registered)'),
      scopes(entry),
      when(entry.expiresAt, now, entry.fingerprint === undefined ? '-' : 'never'),
      when(entry.lastUsedAt, now, 'never'),
      entry.fingerprint ?? '-',
    ]),
  );
}

/** What a finding is about, in a few words. */
function detail(finding: AuditFinding, now: number): string {
  switch (finding.kind) {
    case 'unused':
      return finding.lastUsedAt === undefined
        ? `never used in ${span(finding.idleMs ?? 0)}`
        : `idle for ${span(finding.idleMs ?? 0)}`;
    case 'orphaned':
      return 'a stored record no credential registers';
    case 'over-age':
      return `token or key is ${span(finding.ageMs ?? 0)} old`;
    case 'over-scoped':
      return `granted beyond request: ${(finding.extraScope ?? []).join(' ')}`;
    case 'expiring':
      return `expires ${when(finding.expiresAt, now)}`;
    case 'reauth-required':
      return 'a user must sign in again';
    default:
      return '';
  }
}

/** What was done about a finding, in a few words. */
function action(finding: AuditFinding): string {
  if (finding.error !== undefined) return `failed (${finding.error})`;
  if (finding.action === 'revoked') {
    const outcome = finding.revocation?.outcome ?? 'unknown';
    return finding.revocation?.revokedAtServer
      ? 'revoked at server'
      : `wiped locally; server: ${outcome}`;
  }
  if (finding.action === 'deleted') return 'record deleted (server not contacted)';
  return '-';
}

/** The audit findings as a table. */
export function auditTable(findings: readonly AuditFinding[], now: number, acted: boolean): string {
  if (findings.length === 0) return 'No findings.';
  const headers = ['ID', 'FINDING', 'STATE', 'DETAIL', 'FINGERPRINT'];
  return table(
    acted ? [...headers, 'ACTION'] : headers,
    findings.map((finding) => {
      const row = [
        finding.id,
        finding.kind,
        finding.state,
        detail(finding, now),
        finding.fingerprint ?? '-',
      ];
      return acted ? [...row, action(finding)] : row;
    }),
  );
}
