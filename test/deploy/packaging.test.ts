/**
 * What ships: the license matches package.json; the image build never sends the data directory (keys!) and
 * has a health check and OCI labels; the systemd unit runs in production mode inside a tight sandbox; the
 * example environment file lists every setting with values the strict schema accepts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_DOC, PACKAGE_ROOT, settingsFromEnv } from '../../src/config/settings.js';

const read = (p: string) => readFileSync(join(PACKAGE_ROOT, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as { license: string };

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('packaging', () => {
  it('ships the Apache-2.0 license that package.json names', () => {
    expect(pkg.license).toBe('Apache-2.0');
    const license = read('LICENSE');
    expect(license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(license).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
  });

  it('keeps the data directory, node_modules, .git and .tools out of the image build context', () => {
    const ignore = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const p of ['data/', 'node_modules/', '.git/', '.tools/']) expect(ignore).toContain(p);
    const dockerfile = read('deploy/Dockerfile');
    // Every COPY from the context exists and is not ignored.
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) {
      expect(existsSync(join(PACKAGE_ROOT, s)), s).toBe(true);
      expect(ignore.some((p) => p.replace(/\/$/, '') === s.replace(/\/$/, '')), `${s} is ignored`).toBe(false);
    }
  });

  it('gives the image a health check, OCI labels, a volume for state and a non-root user', () => {
    const d = read('deploy/Dockerfile');
    expect(d).toMatch(/^HEALTHCHECK .*CMD \["node", "bin\/linkgw\.js", "health"\]$/m);
    expect(d).toContain(`org.opencontainers.image.licenses="${pkg.license}"`);
    for (const l of ['title', 'description', 'version', 'revision', 'created']) expect(d).toContain(`org.opencontainers.image.${l}=`);
    expect(d).toMatch(/^VOLUME \/var\/lib\/linkgw$/m);
    expect(d).toMatch(/^USER 10001$/m);
    expect(d).toMatch(/LINKGW_SIMULATE=0/);
  });

  it('runs the systemd unit in production mode, sandboxed', () => {
    const unit = read('deploy/systemd/linkgw.service');
    expect(unit).toMatch(/^Environment=LINKGW_DATA_DIR=\/var\/lib\/linkgw LINKGW_SIMULATE=0$/m);
    expect(unit).toMatch(/^StateDirectory=linkgw$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=78$/m);
    if (!which('systemd-analyze')) return;
    const out = execFileSync('systemd-analyze', ['security', '--offline=yes', join(PACKAGE_ROOT, 'deploy/systemd/linkgw.service')], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for linkgw\.service: ([\d.]+)/.exec(out)![1]);
    console.log(`systemd-analyze security: ${score}`);
    expect(score).toBeLessThanOrEqual(2);
  });

  it('gives the Kubernetes manifest settings the schema accepts', () => {
    const manifest = read('deploy/kubernetes/gateway.yaml');
    const env = Object.fromEntries([...manifest.matchAll(/^\s+(LINKGW_[A-Z0-9_]+): "(.*)"$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(Object.keys(env).length).toBeGreaterThan(5);
    expect(settingsFromEnv({ ...env, LINKGW_RECORDS_URL: 'postgres://linkgw@db:5432/linkgw' })).toMatchObject({ simulate: false, listen: '0.0.0.0:50051' });
    for (const m of manifest.matchAll(/- name: (LINKGW_[A-Z0-9_]+)/g)) expect(ENV_DOC.some(([k]) => k === m[1]), m[1]).toBe(true);
  });

  it('lists every setting in the example environment file, with values the schema accepts', () => {
    const text = read('deploy/linkgw.env.example');
    const set = new Map<string, string>();
    const commented = new Map<string, string>();
    for (const line of text.split('\n')) {
      const m = /^(#\s*)?(LINKGW_[A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) (m[1] ? commented : set).set(m[2]!, m[3]!);
    }
    for (const [name] of ENV_DOC) expect(set.has(name) || commented.has(name), `${name} is not in deploy/linkgw.env.example`).toBe(true);
    // The lines as given, and each commented default when uncommented, pass the strict schema.
    expect(() => settingsFromEnv(Object.fromEntries(set))).not.toThrow();
    for (const [name, value] of commented) expect(() => settingsFromEnv({ ...Object.fromEntries(set), [name]: value }), name).not.toThrow();
  });
});
