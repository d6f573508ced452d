/**
 * The Prometheus endpoint: parseable, lint-clean by promtool, labels only from bounded sets.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';

const promtool = spawnSync('promtool', ['--version']).status === 0;
// CI installs promtool (.ci/run); elsewhere the lint test runs when it is on PATH.
const lint = promtool || process.env.CI ? it : it.skip;

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  const c = h.client('pension');
  for (const n of population(20, 5)) await c.issueCode(n);
  await statusOf(c.issueCode('123'));
});
afterAll(async () => {
  await h?.stop();
});

async function scrape(): Promise<string> {
  const res = await fetch(`http://${h.gw.opsAddress}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

describe('/metrics', () => {
  it('has the gateway families with values from the traffic', async () => {
    const text = await scrape();
    expect(text).toMatch(/^linkgw_requests_total\{method="IssueCode",code="OK",agency="pension"\} 20$/m);
    expect(text).toMatch(/^linkgw_requests_total\{method="IssueCode",code="INVALID_ARGUMENT",agency="pension"\} 1$/m);
    expect(text).toMatch(/^linkgw_records_committed_total \d+$/m);
    expect(text).toMatch(/^linkgw_record_commit_duration_seconds_count \d+$/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    // Timed inside the SQLite worker thread and carried to the main registry.
    expect(text).toMatch(/^linkgw_record_store_thread_seconds_count\{op="commit",ok="true"\} [1-9]\d*$/m);
  });

  it('uses only bounded label values', async () => {
    const text = await scrape();
    const agencies = new Set<string>();
    for (const m of text.matchAll(/agency="([^"]*)"/g)) agencies.add(m[1]!);
    for (const a of agencies) expect(['pension', 'tax', 'employment', 'welfare', 'disclosure', 'unknown']).toContain(a);
    for (const m of text.matchAll(/="([^"]*)"/g)) expect(m[1]).not.toMatch(/[0-9]{12}/);
  });

  lint('passes promtool check metrics', async () => {
    const text = await scrape();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text });
    expect(r.error).toBeUndefined();
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});
