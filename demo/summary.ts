// The closing report: one table row per credential, then each expectation with its verdict.
import { formatMs, table } from './format.js';
import type { ScenarioResult } from './scenario.js';

export function renderSummary(result: ScenarioResult, elapsedMs: number): string[] {
  const rows = result.rows.map((r) => [
    r.id,
    r.label,
    String(r.refreshes),
    String(r.background),
    String(r.forced),
    String(r.rotations),
    String(r.ok),
    String(r.failed),
    formatMs(r.p50),
    formatMs(r.p95),
    String(r.blocked),
    String(r.anomalies),
  ]);
  const header = [
    'credential',
    'source',
    'refreshes',
    'background',
    'forced',
    'rotated',
    'requests ok',
    'failed',
    'p50',
    'p95',
    'blocked',
    'anomalies',
  ];
  const align = header.map((_, i) => (i < 2 ? 'left' : 'right') as 'left' | 'right');
  const passed = result.checks.filter((c) => c.ok).length;
  const verdict = result.interrupted
    ? `Interrupted: ${passed} of ${result.checks.length} checks passed before Ctrl-C.`
    : passed === result.checks.length
      ? `All ${passed} checks passed.`
      : `${result.checks.length - passed} of ${result.checks.length} checks FAILED.`;
  return [
    '',
    `Summary (${formatMs(elapsedMs)} in all)`,
    '',
    ...table(header, rows, { align }),
    '',
    ...result.checks.map((c) => `${c.ok ? '[ok]  ' : '[FAIL]'} ${c.name}: ${c.detail}`),
    '',
    verdict,
  ];
}
