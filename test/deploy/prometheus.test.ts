/**
 * The Prometheus rules: `promtool check rules` and `promtool test rules` (the unit tests in
 * deploy/prometheus/*.test.yaml), every alert unit-tested firing, and every runbook_url landing on a
 * subsection of the README's Runbooks (and every subsection naming an alert).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { itWithTool, tool } from '../helpers/deploy-tools.js';

const DIR = join(PACKAGE_ROOT, 'deploy', 'prometheus');
const RULE_FILES = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'));
const TEST_FILES = readdirSync(DIR).filter((f) => f.endsWith('.test.yaml'));
const RUNBOOK_BASE = 'https://git.example/linkgw/blob/main/README.md#';
const withPromtool = itWithTool('promtool');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rules(): Rule[] {
  return RULE_FILES.flatMap((f) => (parse(readFileSync(join(DIR, f), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function runbookAnchors(): string[] {
  const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Runbooks\n');
  expect(start, 'README has a "## Runbooks" section').toBeGreaterThan(0);
  const rest = readme.slice(start + 1);
  const next = rest.slice(3).search(/^## /m);
  const section = next < 0 ? rest : rest.slice(0, next + 3);
  return [...section.matchAll(/^### (.+)$/gm)].map((m) => slug(m[1]!));
}

describe('Prometheus rules deploy/prometheus', () => {
  withPromtool('pass promtool check rules', () => {
    const r = spawnSync(tool('promtool'), ['check', 'rules', ...RULE_FILES], { cwd: DIR, encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout.match(/SUCCESS/g)).toHaveLength(RULE_FILES.length);
  });

  withPromtool('pass their unit tests (promtool test rules)', () => {
    expect(TEST_FILES.length).toBeGreaterThan(0);
    const r = spawnSync(tool('promtool'), ['test', 'rules', ...TEST_FILES], { cwd: DIR, encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toContain('FAILED');
  });

  it('give every alert a severity, a summary and a runbook in the README, and every runbook an alert', () => {
    const alerts = rules().filter((r) => r.alert);
    expect(alerts.length).toBeGreaterThanOrEqual(12);
    const anchors = runbookAnchors();
    const names = new Set<string>();
    for (const a of alerts) {
      names.add(a.alert!);
      expect(['page', 'ticket'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      const url = a.annotations?.runbook_url ?? '';
      expect(url.startsWith(RUNBOOK_BASE), `${a.alert}: ${url}`).toBe(true);
      expect(anchors, `${a.alert}: no README subsection for ${url}`).toContain(url.slice(RUNBOOK_BASE.length));
      expect(url.slice(RUNBOOK_BASE.length), `${a.alert}: its runbook is named after it`).toBe(slug(a.alert!));
    }
    expect([...names].map(slug).sort(), 'one Runbooks subsection per alert').toEqual([...new Set(anchors)].sort());
    for (const s of ['LinkgwAvailabilityBudgetBurnFast', 'LinkgwLatencyBudgetBurnFast', 'LinkgwRedisDown', 'LinkgwTargetDown', 'LinkgwCertificateExpiry', 'LinkgwRecordStoreStalled', 'LinkgwRecordBacklog'])
      expect(names).toContain(s);
  });

  it('have a unit test in which each alert fires', () => {
    const fired = new Set<string>();
    for (const f of TEST_FILES) {
      const doc = parse(readFileSync(join(DIR, f), 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
      for (const t of doc.tests) for (const a of t.alert_rule_test ?? []) if (a.exp_alerts.length) fired.add(a.alertname);
    }
    const alerts = new Set(rules().flatMap((r) => (r.alert ? [r.alert] : [])));
    expect([...alerts].filter((a) => !fired.has(a))).toEqual([]);
  });

  it('record every rule the alerts use', () => {
    const recorded = new Set(rules().flatMap((r) => (r.record ? [r.record] : [])));
    for (const a of rules().filter((r) => r.alert))
      for (const name of a.expr.match(/\blinkgw:[a-z0-9_:]+/g) ?? []) expect(recorded, `${a.alert} uses ${name}`).toContain(name);
  });
});
