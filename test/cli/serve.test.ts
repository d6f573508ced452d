/**
 * The gateway as an operator runs it: `linkgw serve` in its own process, driven by `linkgw client`, stopped
 * by SIGTERM; plaintext mode only behind its flag, with a warning.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/gateway-harness.js';
import { killServed, serve } from '../helpers/serve-process.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const run = promisify(execFile);
afterEach(killServed);

describe('linkgw serve', () => {
  it('starts with embedded defaults, issues and exchanges through the bundled client, and stops cleanly on SIGTERM', async () => {
    const dataDir = tempDir();
    const gw = await serve({ LINKGW_DATA_DIR: dataDir });
    const env = { ...process.env, LINKGW_DATA_DIR: dataDir, LINKGW_LISTEN: gw.address };
    const pension = JSON.parse((await run(process.execPath, [BIN, 'client', 'pension', 'issue', '123456789018', '--json'], { env })).stdout) as { code: string };
    expect(pension.code).toHaveLength(28);
    // The same number read from standard input (`-`): the same code.
    const viaStdin = await new Promise<string>((resolve, reject) => {
      const child = execFile(process.execPath, [BIN, 'client', 'pension', 'issue', '-', '--json'], { env }, (e, stdout) => (e ? reject(e) : resolve(stdout)));
      child.stdin!.end('123456789018\n');
    });
    expect((JSON.parse(viaStdin) as { code: string }).code).toBe(pension.code);
    const q = await run(process.execPath, [BIN, 'client', 'pension', 'query', pension.code, 'tax', 'pension.eligibility', 'income', '--json'], { env }).then(
      (r) => JSON.parse(r.stdout) as { legalBasisRow: string },
      (e: { stderr: string }) => ({ legalBasisRow: '', stderr: e.stderr }),
    );
    // 123456789018 may be unknown to the simulated tax office; then the exit status says NOT_FOUND.
    expect(['B2-001', '']).toContain(q.legalBasisRow);
    if (!q.legalBasisRow) expect((q as { stderr?: string }).stderr).toMatch(/NOT_FOUND/);
    const bad = await run(process.execPath, [BIN, 'client', 'pension', 'issue', '123456789012'], { env }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toMatch(/check digit .*INVALID_ARGUMENT/);
    // A wrong binding reported: its record first, then the exchanges (the query above, if the tax office knew
    // the person).
    const report = (await run(process.execPath, [BIN, 'client', 'pension', 'report-wrong-binding', pension.code, '--since', '2020-01-01T00:00:00Z', '--json'], { env })).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(report[0]).toMatchObject({ recordId: expect.any(String), truncated: false });
    expect(report.slice(1)).toEqual(q.legalBasisRow ? [expect.objectContaining({ direction: 'received', provider: 'tax', item: 'income' })] : []);

    const exited = new Promise<number | null>((r) => gw.child.on('close', (code) => r(code)));
    gw.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(gw.log()).toContain('"msg":"gateway stopped"');
    expect(gw.log()).not.toContain('123456789018');
  });

  it('prints help', async () => {
    const { stdout } = await run(process.execPath, [BIN, '--help']);
    expect(stdout).toMatch(/linkgw serve/);
    expect(stdout).toMatch(/LINKGW_DATA_DIR/);
  });

  it('runs plaintext only when asked, warns, and then takes the agency from metadata', async () => {
    const dataDir = tempDir();
    const gw = await serve({ LINKGW_DATA_DIR: dataDir, LINKGW_INSECURE_PLAINTEXT: '1', LINKGW_SIMULATE: '0' });
    expect(gw.log()).toContain('PLAINTEXT MODE');
    const env = { ...process.env, LINKGW_DATA_DIR: dataDir, LINKGW_LISTEN: gw.address, LINKGW_INSECURE_PLAINTEXT: '1' };
    const r = JSON.parse((await run(process.execPath, [BIN, 'client', 'tax', 'issue', '621498320257', '--json'], { env })).stdout) as { code: string };
    expect(r.code).toHaveLength(28);
    gw.child.kill('SIGTERM');
  });
});
