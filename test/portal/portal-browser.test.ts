/**
 * The citizen's portal end to end, in a real browser: Debian's Chromium driven by playwright-core, against a
 * real gateway (in-process, mTLS, SQLite) and real portals (`linkgw portal` child processes). The page must
 * verify every record itself: a proof altered on its way to the browser, or a portal configured with another
 * log's key, shows failed; a stored checkpoint of a forked log shows the warning; a DV record never appears.
 *
 * One browser for the file; waits are for conditions on the page (stable attributes), never for time.
 * Artifacts (the records page screenshot) go to test-artifacts/portal/ (git-ignored).
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signCheckpoint } from '../../src/core/checkpoint.js';
import { ed25519NoteSigner } from '../../src/core/signed-note.js';
import { AccessRecords } from '../../src/gen/linkage/v1/records_pb.js';
import { callUnary } from '../../src/grpc/generic-client.js';
import { loadOrCreateKeyring } from '../../src/keys/keyring-file.js';
import { fleetWitnessEntry, logVerifierKeys } from '../../src/keys/note-keys.js';
import { trustedKeys, verifyRecord, type AccessRecordJson } from '../../src/portal/web/verify.js';
import { startHarness, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { killChildren, startChild, type GatewayChild } from '../helpers/gateway-child.js';
import { b64, goVerify } from '../interop/go-verifier.js';

// Functions passed to page.evaluate run in the page: its globals, declared for this file only (no DOM lib here).
declare const document: { querySelectorAll(s: string): ArrayLike<{ getAttribute(n: string): string | null }> };
declare const localStorage: { getItem(k: string): string | null; setItem(k: string, v: string): void; removeItem(k: string): void };

const CHROMIUM = process.env.LINKGW_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'portal');
const PERSON = '621498320257';
const OTHER = '123456789018';

let h: Harness;
let browser: Browser;
let origin: string;
let keysFile: string;
const portals: GatewayChild[] = [];
const expected = new Set<string>();
let dvRecord: string;
let otherRecord: string;
let bindingReport: string;

async function startPortal(env: Record<string, string>): Promise<{ url: string; child: GatewayChild }> {
  const child = startChild({ LINKGW_DATA_DIR: h.dataDir, LINKGW_PORTAL_LISTEN: 'localhost:0', LINKGW_LOG_LEVEL: 'info', ...env }, ['portal', '--address', h.gw.address]);
  portals.push(child);
  const m = await child.waitFor(/^\{"url":"([^"]+)"/m);
  return { url: m[1]!, child };
}

async function signIn(page: Page, url: string, number = PERSON): Promise<void> {
  await page.goto(url);
  await page.getByLabel(/個人番号/).fill(number);
  await page.getByRole('button', { name: 'サインイン', exact: true }).click();
  await page.waitForLoadState();
  if (!page.url().endsWith('/') || (await page.locator('#summary').count()) === 0) throw new Error(`sign-in failed at ${page.url()}: ${await page.locator('body').textContent()}`);
  await page.locator('#summary[data-done]').waitFor();
}

/** Waits until no record shown is still pending (a pending record is checked again a few seconds later). */
async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const li = Array.from(document.querySelectorAll('li[data-record-id]'));
    return li.length > 0 && li.every((e) => e.getAttribute('data-proof') === 'verified' || e.getAttribute('data-proof') === 'failed');
  }, undefined, { timeout: 40_000 });
}

const proofs = (page: Page) => page.locator('li[data-record-id]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-record-id')!, e.getAttribute('data-proof')!] as const));

beforeAll(async () => {
  h = await startHarness({ env: { LINKGW_CHECKPOINT_INTERVAL_MS: '100' } });
  const welfare = h.client('welfare');
  const w = await welfare.issueCode(PERSON);
  expected.add(w.recordId);
  expected.add((await welfare.queryInformation({ code: w.code, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' }).catch((e) => ({ recordId: e.metadata?.get('x-record-id')?.[0] as string }))).recordId);
  // A query without legal basis is refused and recorded: the person sees it.
  await welfare.queryInformation({ code: w.code, provider: 'pension', procedure: 'pension.eligibility', item: 'pension-benefit' }).catch(() => undefined);
  // The DV row: recorded, never disclosed.
  dvRecord = (await welfare.queryInformation({ code: w.code, provider: 'tax', procedure: 'welfare.dv-shelter-support', item: 'income' }).catch((e) => ({ recordId: e.metadata?.get('x-record-id')?.[0] as string }))).recordId;
  otherRecord = (await welfare.issueCode(OTHER)).recordId;
  // The welfare office reports that it had bound its code to the wrong file: the person sees the report.
  bindingReport = (await welfare.reportWrongBinding(w.code)).recordId;
  expected.add(bindingReport);
  const cps = await callUnary(h.client('disclosure').records, AccessRecords.method.getCheckpoints, {});
  origin = cps.checkpoints[0]?.origin ?? '';
  expect(origin).toMatch(/^linkgw\/records\//);
  keysFile = join(h.dataDir, 'portal-keys.txt');
  writeFileSync(keysFile, `# the gateway's log key\n${Object.values(logVerifierKeys(h.gw.keyring.sealPublicKeys, origin)).join('\n')}\n`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  mkdirSync(ARTIFACTS, { recursive: true });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  killChildren();
  await h?.stop();
});

describe('the portal in a browser', () => {
  let context: BrowserContext;
  let page: Page;
  let url: string;
  let portal: GatewayChild;

  beforeAll(async () => {
    ({ url, child: portal } = await startPortal({ LINKGW_PORTAL_DEV_SIGNIN: '1', LINKGW_PORTAL_VERIFIER_KEYS: keysFile }));
    context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    page = await context.newPage();
  }, 60_000);

  afterAll(() => context?.close());

  it('signs in with the development form and lists every record about the person, each verified in the browser', async () => {
    const failures: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') failures.push(m.text());
    });
    await signIn(page, url);
    expect(await page.locator('html').getAttribute('lang')).toBe('ja');
    await settled(page);
    const shown = new Map(await proofs(page));
    for (const id of expected) expect(shown.get(id), `record ${id}`).toBe('verified');
    expect([...shown.values()].every((p) => p === 'verified')).toBe(true);
    // Not this person's, and not disclosable.
    expect(shown.has(otherRecord)).toBe(false);
    expect(shown.has(dvRecord)).toBe(false);
    expect(await page.content()).not.toMatch(/dv-shelter|B2-006|domestic violence/);
    // A correction report reads as what it is.
    await expect(page.locator(`li[data-record-id="${bindingReport}"]`).textContent()).resolves.toMatch(/誤って別の人の記録に紐付けていた/);
    // The keys the browser trusts are shown with their fingerprints.
    await expect(page.locator('#keys li').first().textContent()).resolves.toContain(origin);
    // No warning on a first visit; the checkpoint is kept for the next.
    await page.locator('body[data-logs-checked]').waitFor();
    expect(await page.locator('#log-warning').isHidden()).toBe(true);
    expect(failures).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'records.png'), fullPage: true });
  });

  it('passes the automated accessibility check (axe-core, WCAG 2 A/AA) on the records and sign-in pages', async () => {
    const axe = readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
    const check = async () => {
      // Evaluated through the DevTools protocol: the page's CSP (no inline script) still holds for the page.
      await page.evaluate(axe);
      return page.evaluate(async () => {
        const r = await (globalThis as unknown as { axe: { run(o: object): Promise<{ violations: { id: string; nodes: unknown[] }[] }> } }).axe.run({ runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] });
        return r.violations.map((v) => `${v.id} (${v.nodes.length})`);
      });
    };
    expect(await check()).toEqual([]);
    const anonymous = await context.browser()!.newContext();
    const p2 = await anonymous.newPage();
    await p2.goto(url);
    await p2.evaluate(axe);
    const v = await p2.evaluate(async () => (await (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string }[] }> } }).axe.run()).violations.map((x) => x.id));
    expect(v).toEqual([]);
    await anonymous.close();
  });

  it('signs in with the keyboard alone, and the enrollment page passes the accessibility check too', async () => {
    const kb = await browser.newContext();
    const p = await kb.newPage();
    await p.goto(url);
    // Tab from the top of the page until the number field has the focus; type; Enter submits the form.
    for (let i = 0; i < 12 && (await p.evaluate(() => (globalThis as unknown as { document: { activeElement: { id?: string } | null } }).document.activeElement?.id)) !== 'personal_number'; i++) await p.keyboard.press('Tab');
    await p.keyboard.type(PERSON);
    await p.keyboard.press('Enter');
    await p.locator('#summary[data-done]').waitFor();
    await p.goto(new URL('/enroll', url).href);
    await p.evaluate(readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8'));
    const v = await p.evaluate(async () => (await (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string }[] }> } }).axe.run()).violations.map((x) => x.id));
    expect(v).toEqual([]);
    await kb.close();
  });

  it('switches to English and back', async () => {
    // A fresh exchange, so that the newest record of the README's screenshot is one between two agencies.
    const welfare = h.client('welfare');
    const w = await welfare.issueCode(PERSON);
    expected.add(w.recordId);
    await welfare.queryInformation({ code: w.code, provider: 'employment', procedure: 'welfare.public-assistance', item: 'unemployment-benefit' }).catch(() => undefined);
    await page.getByRole('link', { name: 'English' }).click();
    await page.locator('#summary[data-done]').waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await expect(page.locator('h1').textContent()).resolves.toBe('Records of your information');
    // A desktop-sized view in English, for the README (docs/img/portal-records.png is made from it).
    await page.setViewportSize({ width: 900, height: 1000 });
    await settled(page);
    await page.screenshot({ path: join(ARTIFACTS, 'records-en.png'), clip: { x: 0, y: 0, width: 900, height: 910 } });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('link', { name: '日本語' }).click();
    await page.locator('#summary[data-done]').waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe('ja');
  });

  it('shows failed for a record whose proof or fields are altered on the way to the browser', async () => {
    let altered: string[] = [];
    await page.route('**/api/records*', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { records: AccessRecordJson[] };
      const withPath = body.records.filter((r) => r.proof && (r.proof.hashes?.length ?? 0) > 0);
      const [a, b] = withPath;
      a!.proof!.hashes![0] = randomBytes(32).toString('base64');
      b!.item = 'pension-benefit';
      altered = [a!.recordId!, b!.recordId!];
      await route.fulfill({ response, json: body });
    });
    await page.reload();
    await page.locator('#summary[data-done]').waitFor();
    await settled(page);
    const shown = new Map(await proofs(page));
    for (const id of altered) expect(shown.get(id), id).toBe('failed');
    expect([...shown].filter(([id, p]) => !altered.includes(id) && p !== 'verified')).toEqual([]);
    await expect(page.locator(`li[data-record-id="${altered[1]}"] .proof`).textContent()).resolves.toMatch(/一致しません/);
    await page.unroute('**/api/records*');
  });

  it('shows pending for a record without a proof yet, and verifies it when asked again', async () => {
    let hold: (id: string) => void;
    const holding = new Promise<string>((r) => (hold = r));
    await page.route('**/api/records*', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { records: AccessRecordJson[] };
      const r = body.records.find((x) => x.proof)!;
      delete r.proof;
      hold(r.recordId!);
      await route.fulfill({ response, json: body });
    });
    await page.reload();
    const held = await holding;
    await page.locator(`li[data-record-id="${held}"][data-proof="pending"]`).waitFor();
    await page.unroute('**/api/records*');
    // The page asks /api/proof for it a moment later, and verifies what comes back.
    await page.locator(`li[data-record-id="${held}"][data-proof="verified"]`).waitFor({ timeout: 20_000 });
  });

  it('warns when the checkpoint kept from the last visit belongs to a forked log', async () => {
    const latest = (await callUnary(h.client('disclosure').records, AccessRecords.method.getCheckpoints, {})).checkpoints.find((c) => c.origin === origin)!;
    const size = Number(latest.signedNote.split('\n')[1]);
    // The same log key signs another tree of a smaller size: a fork the gateway's key made.
    const forked = await signCheckpoint({ origin, size: size - 1, rootHash: randomBytes(32), extensions: [] }, ed25519NoteSigner(origin, h.gw.keyring.sealSigner));
    await page.evaluate(([k, v]) => localStorage.setItem(k!, v!), ['linkgw-portal/checkpoints/v1', JSON.stringify({ [origin]: forked })]);
    await page.reload();
    const warning = page.locator('#log-warning');
    await page.locator('#log-warning[data-state~="forked"]').waitFor();
    expect(await warning.isVisible()).toBe(true);
    await expect(warning.textContent()).resolves.toContain(origin);
    // The old checkpoint is kept, so the warning stays until the matter is resolved.
    expect(await page.evaluate(() => localStorage.getItem('linkgw-portal/checkpoints/v1'))).toContain(forked.split('\n')[2]!);
  });

  it('warns when the log is shorter than at the last visit', async () => {
    const bigger = await signCheckpoint({ origin, size: 1_000_000, rootHash: randomBytes(32), extensions: [] }, ed25519NoteSigner(origin, h.gw.keyring.sealSigner));
    await page.evaluate(([k, v]) => localStorage.setItem(k!, v!), ['linkgw-portal/checkpoints/v1', JSON.stringify({ [origin]: bigger })]);
    await page.reload();
    await page.locator('#log-warning[data-state~="rolled-back"]').waitFor();
  });

  it('shows no warning when the log extends the kept checkpoint', async () => {
    await page.evaluate(() => localStorage.removeItem('linkgw-portal/checkpoints/v1'));
    await page.reload();
    await page.locator('body[data-logs-checked]').waitFor();
    await welfareExchange();
    await page.reload();
    await page.locator('body[data-logs-checked]').waitFor();
    await page.locator('#summary[data-done]').waitFor();
    expect(await page.locator('#log-warning').isHidden()).toBe(true);
  });

  it('downloads the records with their proofs as JSON lines that the verifier and the Go reference accept', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
    const text = readFileSync((await download.path())!, 'utf8');
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as AccessRecordJson);
    expect(lines.length).toBeGreaterThanOrEqual(expected.size);
    for (const id of expected) expect(lines.some((r) => r.recordId === id)).toBe(true);
    expect(lines.some((r) => r.recordId === dvRecord)).toBe(false);
    const trust = await trustedKeys(readFileSync(keysFile, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')));
    const withProof = lines.filter((r) => r.proof);
    expect(withProof.length).toBeGreaterThanOrEqual(expected.size);
    for (const r of withProof) expect((await verifyRecord(r, trust)).status).toBe('verified');
    // The Go reference: checkpoint, inclusion path and the leaf re-encoded from the record's JSON fields.
    const out = await goVerify({
      logs: trust.logs.map((k) => k.vkey),
      inclusion: withProof.map((r) => {
        const p = r.proof!;
        const leaf = Buffer.from(p.leaf!, 'base64');
        return {
          checkpoint: p.checkpoint!,
          leafIndex: Number(p.leafIndex ?? 0),
          treeSize: Number(p.treeSize),
          hashes: p.hashes ?? [],
          leafHash: p.leafHash!,
          record: {
            recordId: r.recordId!,
            requestedAt: Date.parse(r.requestedAt!),
            providedAt: r.providedAt ? Date.parse(r.providedAt) : null,
            requester: r.requester ?? '',
            provider: r.provider ?? '',
            procedure: r.procedure ?? '',
            legalBasisRow: r.legalBasisRow ?? '',
            item: r.item ?? '',
            outcome: ['OUTCOME_UNSPECIFIED', 'OUTCOME_ISSUED', 'OUTCOME_PROVIDED', 'OUTCOME_DENIED', 'OUTCOME_NOT_FOUND', 'OUTCOME_FAILED', 'OUTCOME_RECORDS_READ', 'OUTCOME_BINDING_REPORTED', 'OUTCOME_NOT_RELEASED'].indexOf(r.outcome as string),
            nonDisclosable: false,
            // The person is in the leaf only as a commitment: the last 32 bytes before any corrected id.
            persons: leaf[leafPersonsAt(leaf)]!,
            subjectsCommitment: b64(leaf.subarray(leafPersonsAt(leaf) + 1, leafPersonsAt(leaf) + 33)),
            ...(r.correctsRecordId ? { correctsRecordId: r.correctsRecordId } : {}),
          },
        };
      }),
    });
    expect(out.inclusion.filter((x) => !x.ok)).toEqual([]);
    // And the project's own offline check, what a person would run on the file (issue 21: records check-proof).
    const saved = join(h.dataDir, 'my-records.jsonl');
    writeFileSync(saved, withProof.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const checked = await new Promise<{ code: number | null; out: string }>((resolve) =>
      execFile(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js'), 'records', 'check-proof', saved], { env: { ...process.env, LINKGW_DATA_DIR: h.dataDir } }, (e, stdout, stderr) =>
        resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(checked.code, checked.out).toBe(0);
  }, 180_000);

  it('shows what an agency holds about the person (自己情報表示), and the query is a verified record', async () => {
    await page.reload();
    await page.locator('#summary[data-done]').waitFor();
    const buttons = page.locator('#self-information button');
    expect(await buttons.count()).toBe(4);
    await page.locator('#self-information button[data-provider="tax"][data-item="income"]').click();
    await page.locator('#self-result h3').waitFor();
    const result = (await page.locator('#self-result').textContent())!;
    expect(result).toMatch(/所得情報/);
    if ((await page.locator('#self-result[data-record-id]').count()) > 0) expect(result).toMatch(/taxableIncomeJpy/);
    await page.reload();
    await settled(page);
    const self = page.locator('li[data-record-id]', { hasText: 'disclosure.self-information' });
    expect(await self.count()).toBeGreaterThanOrEqual(1);
    expect(await self.first().getAttribute('data-proof')).toBe('verified');
    expect(await page.content()).not.toMatch(/dv-shelter|B2-006/);
  });

  it('pages: fifty records a page, the next with the "more" button', async () => {
    const tax = h.client('tax');
    for (let i = 0; i < 55; i++) expected.add((await tax.issueCode(PERSON)).recordId);
    await page.reload();
    await page.locator('#summary[data-done]').waitFor();
    expect(await page.locator('li[data-record-id]').count()).toBe(50);
    await page.getByRole('button', { name: 'さらに表示' }).click();
    await page.waitForFunction(() => Array.from(document.querySelectorAll('li[data-record-id]')).length > 50);
    await settled(page);
    const shown = new Map(await proofs(page));
    for (const id of expected) expect(shown.get(id), id).toBe('verified');
  });

  it('keeps personal numbers and codes out of the portal log and its URLs', () => {
    expect(portal.log()).not.toContain(PERSON);
    expect(portal.log()).toMatch(/"path":"\/signin\/dev"/);
    expect(portal.log()).not.toMatch(/personal_number|[0-9A-HJKMNP-TV-Z]{28}/);
    expect(page.url()).not.toContain(PERSON);
  });

  async function welfareExchange(): Promise<void> {
    const welfare = h.client('welfare');
    const w = await welfare.issueCode(PERSON);
    expected.add(w.recordId);
  }
});

describe('passkeys', () => {
  it('enrolls with a code from the counter and the number once, then signs in with the passkey (virtual authenticator)', async () => {
    const { url } = await startPortal({ LINKGW_PORTAL_VERIFIER_KEYS: keysFile });
    const enroll = startChild({ LINKGW_DATA_DIR: h.dataDir }, ['portal', 'enroll', '--valid-hours', '1']);
    const enrollmentCode = (await enroll.waitFor(/"enrollmentCode":"([0-9A-Z-]+)"/))[1]!;
    const context = await browser.newContext();
    const page = await context.newPage();
    // Chromium's virtual authenticator (CDP WebAuthn domain): a platform passkey that verifies the user.
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    await page.goto(url);
    // Without LINKGW_PORTAL_DEV_SIGNIN the number form does not exist.
    expect(await page.locator('input[name="personal_number"]').count()).toBe(0);
    await page.getByRole('link', { name: /登録コード/ }).click();
    await page.getByLabel('登録コード').fill(enrollmentCode);
    await page.getByLabel(/個人番号/).fill(PERSON);
    await page.getByRole('button', { name: 'パスキーを登録する' }).click();
    await page.locator('#summary[data-done]').waitFor();
    await settled(page);
    const shown = await proofs(page);
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.filter(([, p]) => p !== 'verified')).toEqual([]);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    // Sign out, then in again with the passkey alone.
    await page.getByRole('button', { name: 'サインアウト' }).click();
    await page.getByRole('button', { name: 'パスキーでサインイン' }).click();
    await page.locator('#summary[data-done]').waitFor();
    expect((await proofs(page)).length).toBeGreaterThan(0);
    // The code works once; the portal's state holds no personal number.
    await page.getByRole('button', { name: 'サインアウト' }).click();
    await page.goto(new URL('/enroll', url).href);
    await page.getByLabel('登録コード').fill(enrollmentCode);
    await page.getByLabel(/個人番号/).fill(PERSON);
    await page.getByRole('button', { name: 'パスキーを登録する' }).click();
    await page.locator('#passkey-status.error').waitFor();
    expect(readFileSync(join(h.dataDir, 'portal', 'passkeys.json'), 'utf8')).not.toContain(PERSON);
    await context.close();
  }, 90_000);
});

describe('a portal configured with another log\u2019s verifier key', () => {
  it('shows every record failed', async () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const file = join(h.dataDir, 'wrong-keys.txt');
    writeFileSync(file, `${Object.values(logVerifierKeys(new Map([['k', publicKey]]), origin)).join('\n')}\n`);
    const { url } = await startPortal({ LINKGW_PORTAL_DEV_SIGNIN: '1', LINKGW_PORTAL_VERIFIER_KEYS: file });
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, url);
    await settled(page);
    const shown = await proofs(page);
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.filter(([, p]) => p !== 'failed')).toEqual([]);
    await expect(page.locator('li[data-record-id] .proof').first().textContent()).resolves.toMatch(/信頼できる鍵/);
    await context.close();
  }, 60_000);
});

/** The offset of the leaf's `persons` byte (docs/transparency.md): after the label and the variable fields. */
function leafPersonsAt(leaf: Buffer): number {
  let at = 'linkgw/access-record/v1\n'.length;
  const skipStr = () => (at += 2 + leaf.readUInt16BE(at));
  skipStr(); // origin
  at += 8; // leaf index
  skipStr(); // record id
  at += 8 + 1 + 8; // requested at, has provided at, provided at
  for (let i = 0; i < 5; i++) skipStr(); // requester, provider, procedure, row, item
  return at + 2; // outcome, non-disclosable, then persons
}

describe('a log whose checkpoints a witness cosigns', () => {
  it('shows the witness that cosigned each verified record, under the witness key the portal trusts', async () => {
    // A second gateway, pushing its checkpoints to a `linkgw witness` that knows the gateway's log key.
    const dataDir = tempDir('linkgw-portal-witness-');
    const { keyring } = loadOrCreateKeyring(join(dataDir, 'keyring.json'));
    const witness = startChild({ LINKGW_DATA_DIR: dataDir, LINKGW_WITNESS_LISTEN: '127.0.0.1:0', LINKGW_WITNESS_NAME: 'witness.example/portal-test', LINKGW_WITNESS_LOGS: fleetWitnessEntry('linkgw/records', keyring.sealSigner.publicKey) }, ['witness']);
    const w = JSON.parse((await witness.waitFor(/^\{"url".*$/m))[0]) as { verifierKey: string; gatewayEntry: string };
    const g = await startHarness({ dataDir, env: { LINKGW_CHECKPOINT_INTERVAL_MS: '100', LINKGW_WITNESSES: w.gatewayEntry } });
    try {
      const welfare = g.client('welfare');
      const { code } = await welfare.issueCode(PERSON);
      await welfare.queryInformation({ code, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' }).catch(() => undefined);
      const cps = await callUnary(g.client('disclosure').records, AccessRecords.method.getCheckpoints, {});
      const logOrigin = cps.checkpoints[0]!.origin;
      const file = join(dataDir, 'portal-keys.txt');
      writeFileSync(file, `${Object.values(logVerifierKeys(g.gw.keyring.sealPublicKeys, logOrigin)).join('\n')}\n${w.verifierKey}\n`);
      const child = startChild({ LINKGW_DATA_DIR: dataDir, LINKGW_PORTAL_LISTEN: 'localhost:0', LINKGW_PORTAL_DEV_SIGNIN: '1', LINKGW_PORTAL_VERIFIER_KEYS: file }, ['portal', '--address', g.gw.address]);
      const url = (await child.waitFor(/^\{"url":"([^"]+)"/m))[1]!;
      const context = await browser.newContext();
      const page = await context.newPage();
      await signIn(page, url);
      await settled(page);
      expect((await proofs(page)).filter(([, p]) => p !== 'verified')).toEqual([]);
      // The cosignature arrives a moment after the checkpoint: the page is asked again until it shows.
      await expect
        .poll(async () => {
          await page.reload();
          await settled(page);
          return page.locator('li[data-record-id] .proof', { hasText: 'witness.example/portal-test' }).count();
        }, { timeout: 30_000 })
        .toBeGreaterThan(0);
      await expect(page.locator('#keys').textContent()).resolves.toContain('witness.example/portal-test');
      await context.close();
    } finally {
      await g.stop();
      witness.child.kill();
      await witness.exited;
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(`${dataDir}-dev-ca`, { recursive: true, force: true });
    }
  }, 120_000);
});
