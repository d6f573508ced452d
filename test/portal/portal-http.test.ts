/**
 * The portal's HTTP surface without a browser: headers (CSP, cookies), the development sign-in form existing
 * only when configured, CSRF and Origin checks, the sign-in rate limit, and answers that name no personal data.
 * The gateway is a fake of the portal's port (the browser test runs the real one).
 */
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgencyRegistry } from '../../src/core/agency-registry.js';
import { parseLegalBasisTable } from '../../src/core/legal-basis.js';
import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT, portalSettingsFromEnv, settingsFromEnv } from '../../src/config/settings.js';
import { AccessRecordSchema, Outcome } from '../../src/gen/linkage/v1/records_pb.js';
import { createLogger } from '../../src/log/logger.js';
import { startPortal, type RunningPortal } from '../../src/portal/portal-server.js';
import type { DisclosureGateway } from '../../src/portal/ports.js';
import { Writable } from 'node:stream';

const WEB = join(PACKAGE_ROOT, 'dist', 'portal', 'web');
const NUMBER = '621498320257';
const CODE = '06257JHHSFGT5MGN89MX2Z1DCWMG';
const registry = parseAgencyRegistry(JSON.parse(readFileSync(join(PACKAGE_ROOT, 'config', 'agencies.json'), 'utf8')));
const table = parseLegalBasisTable(JSON.parse(readFileSync(join(PACKAGE_ROOT, 'config', 'legal-basis.json'), 'utf8')));

let logText = '';
const log = createLogger({ level: 'debug', stream: new Writable({ write: (c, _e, cb) => ((logText += String(c)), cb()) }) });
const issued: string[] = [];
const gateway: DisclosureGateway = {
  issueCode: async (n) => {
    issued.push(n);
    return CODE;
  },
  listRecords: async (req) => {
    if (req.code !== CODE || req.pageToken === 'bad') throw Object.assign(new Error('bad code or cursor'), { code: 3 });
    return [create(AccessRecordSchema, { recordId: 'R'.repeat(24), requester: 'welfare', outcome: Outcome.RECORDS_READ, cursor: 'c1' })];
  },
  recordProof: async () => {
    throw Object.assign(new Error('no'), { code: 5 });
  },
  checkpoints: async () => [],
  queryInformation: async () => {
    throw Object.assign(new Error('no'), { code: 5 });
  },
  consistencyProof: async () => [],
};

const portals: RunningPortal[] = [];
async function portal(devSignIn: boolean, limits = { perClient: 3, total: 100, windowMs: 60_000 }): Promise<RunningPortal> {
  const p = await startPortal({ listen: '127.0.0.1:0', gateway, verifierKeys: [], policy: () => ({ registry, table }), devSignIn, webDir: WEB, log, signInLimits: limits });
  portals.push(p);
  return p;
}

/** Cookies of a response, as a Cookie header. */
const jar = (r: Response) => r.headers.getSetCookie().map((c) => c.split(";")[0]!).filter((c) => !c.endsWith("=")).join('; ');

async function signInForm(p: RunningPortal): Promise<{ cookie: string; csrf: string }> {
  const r = await fetch(p.url);
  const html = await r.text();
  return { cookie: jar(r), csrf: /name="csrf-token" content="([^"]+)"/.exec(html)![1]! };
}

function post(p: RunningPortal, path: string, body: Record<string, string>, headers: Record<string, string>) {
  return fetch(new URL(path, p.url), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: p.origin, ...headers }, body: new URLSearchParams(body) });
}

let dev: RunningPortal;
let prod: RunningPortal;
beforeAll(async () => {
  dev = await portal(true);
  prod = await portal(false);
});
afterAll(async () => {
  for (const p of portals) await p.close();
});

describe('the portal over HTTP', () => {
  it('sends a strict CSP and safe headers, and Secure HttpOnly SameSite cookies', async () => {
    const r = await fetch(dev.url);
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.getSetCookie().join('\n')).toMatch(/^__Host-linkgw-csrf=[\w-]+; Path=\/; Secure; SameSite=Strict; HttpOnly/m);
    const html = await r.text();
    expect(html).toMatch(/<html lang="ja">/);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/);
  });

  it('has the development sign-in form only when LINKGW_PORTAL_DEV_SIGNIN is set', async () => {
    expect(await (await fetch(dev.url)).text()).toContain('name="personal_number"');
    expect(await (await fetch(prod.url)).text()).not.toContain('personal_number');
    const { cookie, csrf } = await signInForm(prod);
    expect((await post(prod, '/signin/dev', { csrf, personal_number: NUMBER }, { cookie })).status).toBe(404);
  });

  it('refuses a sign-in without the CSRF token or from another origin', async () => {
    const { cookie, csrf } = await signInForm(dev);
    expect((await post(dev, '/signin/dev', { personal_number: NUMBER }, { cookie })).status).toBe(403);
    expect((await post(dev, '/signin/dev', { csrf, personal_number: NUMBER }, { cookie, origin: 'https://evil.example' })).status).toBe(403);
    expect((await post(dev, '/signin/dev', { csrf: 'x'.repeat(43), personal_number: NUMBER }, { cookie })).status).toBe(403);
    expect(issued).toEqual([]);
  });

  it('signs in, serves the person\u2019s records, and never puts the number or the code in an answer, a URL or the log', async () => {
    const { cookie, csrf } = await signInForm(dev);
    const r = await post(dev, '/signin/dev', { csrf, personal_number: NUMBER }, { cookie });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/');
    const session = jar(r);
    expect(session).toMatch(/^__Host-linkgw-session=/);
    const page = await (await fetch(dev.url, { headers: { cookie: session } })).text();
    expect(page).toContain('id="records"');
    const api = await fetch(new URL('/api/records', dev.url), { headers: { cookie: session } });
    expect(api.status).toBe(200);
    const body = await api.text();
    expect(JSON.parse(body).records[0].recordId).toBe('R'.repeat(24));
    for (const text of [page, body, logText]) {
      expect(text).not.toContain(NUMBER);
      expect(text).not.toContain(CODE);
    }
    // A cursor the gateway refuses is the request's fault (400), not the session's.
    expect((await fetch(new URL('/api/records?page_token=bad', dev.url), { headers: { cookie: session } })).status).toBe(400);
    expect((await fetch(new URL('/api/records?page_token=%3Cscript%3E', dev.url), { headers: { cookie: session } })).status).toBe(400);
    // Another record's proof is not asked for: only records listed to this session.
    expect((await fetch(new URL('/api/proof?record_id=AAAAAAAAAAAAAAAAAAAAAAAA', dev.url), { headers: { cookie: session } })).status).toBe(404);
    const out = await post(dev, '/signout', { csrf: /name="csrf-token" content="([^"]+)"/.exec(page)![1]! }, { cookie: session });
    expect(out.status).toBe(303);
    expect((await fetch(new URL('/api/records', dev.url), { headers: { cookie: session } })).status).toBe(401);
  });

  it('answers an invalid number with 400 and a message that does not repeat it', async () => {
    const { cookie, csrf } = await signInForm(dev);
    const r = await post(dev, '/signin/dev', { csrf, personal_number: '621498320258' }, { cookie });
    expect(r.status).toBe(400);
    expect(await r.text()).not.toContain('621498320258');
  });

  it('rate-limits sign-in attempts per client (429 with Retry-After)', async () => {
    const p = await portal(true, { perClient: 2, total: 100, windowMs: 60_000 });
    const { cookie, csrf } = await signInForm(p);
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const r = await post(p, '/signin/dev', { csrf, personal_number: '000000000001' }, { cookie });
      statuses.push(r.status);
      if (r.status === 429) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(statuses).toEqual([400, 400, 429]);
  });

  it('answers the API without a session with 401, and unknown paths with 404', async () => {
    expect((await fetch(new URL('/api/records', dev.url))).status).toBe(401);
    expect((await fetch(new URL('/download', dev.url))).status).toBe(401);
    expect((await fetch(new URL('/static/../../package.json', dev.url))).status).toBe(404);
    expect((await fetch(new URL('/nothing', dev.url))).status).toBe(404);
  });
});

describe('portal settings', () => {
  it('serves plain HTTP and the development sign-in on loopback only, and wants both TLS files or neither', () => {
    expect(portalSettingsFromEnv({}).portal).toMatchObject({ listen: 'localhost:8080', devSignIn: false });
    expect(() => portalSettingsFromEnv({ LINKGW_PORTAL_LISTEN: '0.0.0.0:8080' })).toThrow(/plain HTTP only on a loopback address/);
    expect(() => portalSettingsFromEnv({ LINKGW_PORTAL_LISTEN: 'portal.example.jp:8443', LINKGW_PORTAL_TLS_CERT: 'c.pem' })).toThrow(/set both, or neither/);
    const tls = { LINKGW_PORTAL_LISTEN: 'portal.example.jp:8443', LINKGW_PORTAL_TLS_CERT: 'c.pem', LINKGW_PORTAL_TLS_KEY: 'k.pem' };
    expect(portalSettingsFromEnv(tls).portal.listen).toBe('portal.example.jp:8443');
    expect(() => portalSettingsFromEnv({ ...tls, LINKGW_PORTAL_DEV_SIGNIN: '1' })).toThrow(/LINKGW_PORTAL_DEV_SIGNIN=1 only with LINKGW_PORTAL_LISTEN on a loopback address/);
    expect(portalSettingsFromEnv({ LINKGW_PORTAL_ORIGIN: 'https://portal.example.jp/' }).portal.origin).toBe('https://portal.example.jp');
    // The gateway itself never refuses to start over the portal's settings.
    expect(() => settingsFromEnv({ LINKGW_PORTAL_LISTEN: '0.0.0.0:8080' })).not.toThrow();
  });
});
