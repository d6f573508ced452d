/**
 * Policy reload from a Kubernetes ConfigMap volume (issue 12): the kubelet's atomic writer is played step by
 * step (a `..<timestamp>` directory with the files, a `..data_tmp` link to it renamed over `..data`, the files as
 * links through `..data`, the old directory removed), several times over, against a running gateway. Each
 * update must be applied (a file watch used to see only the first), a broken one counted and left out, and
 * `/metrics` must show the versions in force and the reloads.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { startHarness, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { until } from '../helpers/wait.js';

const AGENCIES = readFileSync(join(PACKAGE_ROOT, 'config', 'agencies.json'), 'utf8');
const LEGAL_BASIS = readFileSync(join(PACKAGE_ROOT, 'config', 'legal-basis.json'), 'utf8');

/** The kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go), one update of the whole volume. */
class ConfigMapVolume {
  #n = 0;
  #current: string | undefined;
  constructor(readonly dir: string) {}

  update(files: Record<string, string>): void {
    const ts = `..2026_01_02_15_04_05.${String(100000000 + this.#n++)}`;
    mkdirSync(join(this.dir, ts));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(this.dir, ts, name), text);
    symlinkSync(ts, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) if (!existsSync(join(this.dir, name))) symlinkSync(join('..data', name), join(this.dir, name));
    if (this.#current) rmSync(join(this.dir, this.#current), { recursive: true });
    this.#current = ts;
  }
}

function policyFiles(legalBasisVersion: string, registryVersion?: string): Record<string, string> {
  const lb = JSON.parse(LEGAL_BASIS) as { version: string };
  lb.version = legalBasisVersion;
  const reg = JSON.parse(AGENCIES) as Record<string, unknown>;
  if (registryVersion) reg.version = registryVersion;
  else delete reg.version;
  return { 'agencies.json': JSON.stringify(reg), 'legal-basis.json': JSON.stringify(lb) };
}

let h: Harness;
let volume: ConfigMapVolume;
let dir: string;

async function metrics(): Promise<string> {
  return (await fetch(`http://${h.gw.opsAddress}/metrics`)).text();
}

function sample(page: string, name: string, labels: string): number | undefined {
  const m = new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ''} (\\S+)$`, 'm').exec(page);
  return m ? Number(m[1]) : undefined;
}

beforeAll(async () => {
  dir = tempDir('linkgw-configmap-');
  volume = new ConfigMapVolume(dir);
  volume.update(policyFiles('v1', 'reg-1'));
  h = await startHarness({ env: { LINKGW_AGENCIES: join(dir, 'agencies.json'), LINKGW_LEGAL_BASIS: join(dir, 'legal-basis.json') } });
  h.gw.policy.watchFiles();
});
afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('policy in a ConfigMap volume', () => {
  it('applies every kubelet update, not only the first, and shows the versions in force', async () => {
    expect(h.gw.policy.versions).toEqual({ legalBasis: 'v1', registry: 'reg-1' });
    let page = await metrics();
    expect(sample(page, 'linkgw_policy_info', 'legal_basis_version="v1",registry_version="reg-1"')).toBe(1);
    expect(sample(page, 'linkgw_policy_reloads_total', 'result="success"')).toBe(0);
    expect(sample(page, 'linkgw_policy_reloads_total', 'result="failure"')).toBe(0);

    for (let i = 2; i <= 5; i++) {
      volume.update(policyFiles(`v${i}`, `reg-${i}`));
      await until(() => h.gw.policy.versions.legalBasis === `v${i}`);
      expect(h.gw.policy.versions.registry).toBe(`reg-${i}`);
      expect(h.gw.policy.current.table.version).toBe(`v${i}`);
    }
    page = await metrics();
    // One series: the old versions are gone from the page.
    expect(page.match(/^linkgw_policy_info\{/gm)).toHaveLength(1);
    expect(sample(page, 'linkgw_policy_info', 'legal_basis_version="v5",registry_version="reg-5"')).toBe(1);
    // One reload per update (a swap is a burst of events, debounced into one).
    expect(sample(page, 'linkgw_policy_reloads_total', 'result="success"')).toBe(4);
  });

  it('counts a broken update as a failure, keeps the policy in force, and applies the next good one', async () => {
    const before = sample(await metrics(), 'linkgw_policy_reloads_total', 'result="success"')!;
    volume.update({ ...policyFiles('v6'), 'legal-basis.json': '{ "version": "v6", "rows": [' });
    await until(async () => sample(await metrics(), 'linkgw_policy_reloads_total', 'result="failure"') === 1);
    expect(sample(await metrics(), 'linkgw_policy_reload_failed', '')).toBe(1);
    expect(h.gw.policy.versions.legalBasis).toBe('v5');
    expect(h.logs()).toContain('policy reload failed; the previous policy stays in force');

    // Without a declared version, the registry's version is a hash of its file: another file, another hash.
    volume.update(policyFiles('v7'));
    await until(() => h.gw.policy.versions.legalBasis === 'v7');
    const hashed = h.gw.policy.versions.registry;
    expect(hashed).toMatch(/^sha256:[0-9a-f]{12}$/);
    const page = await metrics();
    expect(sample(page, 'linkgw_policy_info', `legal_basis_version="v7",registry_version="${hashed}"`)).toBe(1);
    expect(sample(page, 'linkgw_policy_reloads_total', 'result="success"')).toBe(before + 1);
    // The newest reload succeeded: LinkgwPolicyReloadFailed resolves.
    expect(sample(page, 'linkgw_policy_reload_failed', '')).toBe(0);
  });

  it('also follows a plain file saved the way editors save it (a temporary renamed over it)', async () => {
    const plain = tempDir('linkgw-plain-policy-');
    try {
      const lb = join(plain, 'legal-basis.json');
      writeFileSync(lb, policyFiles('p1')['legal-basis.json']!);
      writeFileSync(join(plain, 'agencies.json'), AGENCIES);
      const h2 = await startHarness({ env: { LINKGW_AGENCIES: join(plain, 'agencies.json'), LINKGW_LEGAL_BASIS: lb } });
      try {
        h2.gw.policy.watchFiles();
        for (const v of ['p2', 'p3', 'p4']) {
          writeFileSync(`${lb}.tmp`, policyFiles(v)['legal-basis.json']!);
          renameSync(`${lb}.tmp`, lb);
          await until(() => h2.gw.policy.versions.legalBasis === v);
        }
        // And edited in place.
        writeFileSync(lb, policyFiles('p5')['legal-basis.json']!);
        await until(() => h2.gw.policy.versions.legalBasis === 'p5');
      } finally {
        await h2.stop();
      }
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });
});
