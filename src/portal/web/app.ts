/**
 * The records page: lists the person's records, newest first, and verifies each one here, in the browser
 * (verify.ts), under the verifier keys of the portal's configuration; keeps the latest checkpoint it verified of
 * each log in local storage and checks, on the next visit, that the log still extends it.
 *
 * Test hooks (stable attributes): each record is `li[data-record-id]` with `data-proof` = verified | failed |
 * pending once checked; the log warning is `#log-warning[data-state]` (forked | rolled-back | unverifiable);
 * `#summary[data-done]` once every record shown has been checked.
 */
import { AGENCIES, ITEMS, label, OUTCOMES, PROCEDURES, UI, type Lang } from './labels.js';
import { checkConsistency, fromBase64, openCheckpoint, timestampMs, trustedKeys, verifyRecord, type AccessRecordJson, type FailureCode, type OpenedCheckpoint, type RecordVerdict, type TrustedKeys } from './verify.js';

interface Config {
  selfInformation: { row: string; provider: string; item: string }[];
  verifierKeys: string[];
  agencies: Record<string, string>;
  legalBasis: Record<string, { procedure: string; basis: string; ordinance: boolean }>;
}

const lang: Lang = document.documentElement.lang === 'en' ? 'en' : 'ja';
const ui = UI[lang];
const STORE_KEY = 'linkgw-portal/checkpoints/v1';
const RECHECK_MS = [2000, 4000, 8000, 16000];

const REASONS: Record<FailureCode, { ja: string; en: string }> = {
  'leaf-malformed': { ja: 'ログの記録 (リーフ) が壊れています', en: 'the log entry (leaf) is malformed' },
  'leaf-mismatch': { ja: '表示された内容がログの記録と一致しません', en: 'what is shown differs from the log entry' },
  'leaf-hash': { ja: 'ログの記録のハッシュが一致しません', en: 'the log entry does not hash to its leaf hash' },
  'non-disclosable': { ja: 'ログでは不開示の記録です', en: 'the log marks it non-disclosable' },
  checkpoint: { ja: 'チェックポイントの署名を信頼できる鍵で確認できません', en: 'the checkpoint is not signed by a trusted key' },
  inclusion: { ja: '記録がチェックポイントのログに含まれることを確認できません', en: 'the record is not shown to be in the signed log' },
  'proof-malformed': { ja: '証明が壊れています', en: 'the proof is malformed' },
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const list = $<HTMLOListElement>('records');
const summary = $<HTMLParagraphElement>('summary');
const more = $<HTMLButtonElement>('more');
const states = new Map<string, RecordVerdict['status'] | undefined>();
const opened = new Map<string, Promise<OpenedCheckpoint>>();
let config: Config;
let trust: TrustedKeys;
let lastCursor = '';

class Unauthorized extends Error {}

async function getJson<T>(path: string): Promise<T> {
  const r = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (r.status === 401) {
    location.assign('/');
    throw new Unauthorized();
  }
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return (await r.json()) as T;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, attrs: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

const dateFormat = new Intl.DateTimeFormat(lang === 'ja' ? 'ja-JP' : 'en-GB', { dateStyle: 'long', timeStyle: 'medium', timeZone: 'Asia/Tokyo' });

function when(ts: string | undefined): HTMLElement {
  if (!ts) return el('span', ui.none);
  try {
    return el('time', `${dateFormat.format(new Date(timestampMs(ts)))} JST`, { datetime: ts });
  } catch {
    return el('span', ts);
  }
}

function agency(id: string | undefined): string {
  if (!id) return ui.none;
  return AGENCIES[id]?.[lang] ?? config.agencies[id] ?? id;
}

function updateSummary(): void {
  const all = [...states.values()];
  const n = (s: string) => all.filter((x) => x === s).length;
  summary.textContent = all.length === 0 ? ui.empty : ui.summary(all.length, n('verified'), n('failed'), n('pending'));
  if (all.every((s) => s !== undefined)) summary.setAttribute('data-done', '');
  else summary.removeAttribute('data-done');
}

function showVerdict(li: HTMLElement, id: string, v: RecordVerdict): void {
  states.set(id, v.status);
  li.setAttribute('data-proof', v.status);
  const p = li.querySelector('.proof')!;
  p.replaceChildren();
  if (v.status === 'verified') {
    p.append(el('strong', `✓ ${ui.verified}`));
    const w = v.checkpoint?.witnesses ?? [];
    if (w.length) p.append(el('span', ` — ${ui.cosigned(w.join(', '))}`));
  } else if (v.status === 'failed') {
    p.append(el('strong', `✗ ${ui.failed}`), el('span', ` — ${ui.why}: ${v.code ? REASONS[v.code][lang] : ''}`));
  } else p.append(el('span', `… ${ui.pending}`));
  updateSummary();
}

function recheckLater(li: HTMLElement, id: string, attempt = 0): void {
  const delay = RECHECK_MS[attempt];
  if (delay === undefined) return;
  setTimeout(() => {
    getJson<{ record: AccessRecordJson }>(`/api/proof?record_id=${encodeURIComponent(id)}`)
      .then(async ({ record }) => {
        const v = await verifyRecord(record, trust, opened);
        showVerdict(li, id, v);
        if (v.status === 'pending') recheckLater(li, id, attempt + 1);
      })
      .catch(() => recheckLater(li, id, attempt + 1));
  }, delay);
}

function row(dl: HTMLElement, term: string, value: string | HTMLElement): void {
  dl.append(el('dt', term));
  const dd = el('dd');
  dd.append(value);
  dl.append(dd);
}

function renderRecord(r: AccessRecordJson): HTMLElement {
  const id = r.recordId ?? '';
  const li = el('li', undefined, { 'data-record-id': id, class: 'record' });
  const outcome = typeof r.outcome === 'string' ? r.outcome : 'OUTCOME_UNSPECIFIED';
  const heading = el('h2');
  heading.append(when(r.requestedAt), document.createTextNode(` — ${label(PROCEDURES, r.procedure ?? '', lang)}`));
  li.append(heading);
  const dl = el('dl');
  row(dl, ui.requester, agency(r.requester));
  row(dl, ui.provider, agency(r.provider));
  row(dl, ui.procedure, `${label(PROCEDURES, r.procedure ?? '', lang)} (${r.procedure ?? ''})`);
  const basis = r.legalBasisRow ? config.legalBasis[r.legalBasisRow] : undefined;
  row(dl, ui.basis, r.legalBasisRow ? `${r.legalBasisRow}${basis ? `: ${basis.basis}` : ''}` : ui.none);
  row(dl, ui.item, label(ITEMS, r.item ?? '', lang));
  const out = el('span', label(OUTCOMES, outcome, lang));
  if (outcome === 'OUTCOME_NOT_RELEASED') out.append(el('span', ` — ${ui.notReleased(r.correctsRecordId ?? '')}`));
  if (outcome === 'OUTCOME_BINDING_REPORTED') out.append(el('span', ` — ${ui.bindingReported}`));
  row(dl, ui.outcome, out);
  if (r.providedAt) row(dl, lang === 'ja' ? '提供日時' : 'Provided at', when(r.providedAt));
  row(dl, ui.recordId, el('code', id));
  li.append(dl, el('p', undefined, { class: 'proof' }));
  if (outcome === 'OUTCOME_NOT_RELEASED') li.classList.add('not-released');
  return li;
}

async function loadPage(): Promise<void> {
  more.hidden = true;
  const page = await getJson<{ records: AccessRecordJson[]; more: boolean }>(`/api/records${lastCursor ? `?page_token=${encodeURIComponent(lastCursor)}` : ''}`);
  const checks: Promise<void>[] = [];
  for (const r of page.records) {
    const id = r.recordId ?? '';
    if (states.has(id)) continue;
    const li = renderRecord(r);
    list.append(li);
    states.set(id, undefined);
    checks.push(
      verifyRecord(r, trust, opened).then((v) => {
        showVerdict(li, id, v);
        if (v.status === 'pending') recheckLater(li, id);
      }),
    );
  }
  lastCursor = page.records.at(-1)?.cursor ?? lastCursor;
  updateSummary();
  more.textContent = ui.more;
  more.hidden = !page.more;
  await Promise.all(checks);
}

function renderKeys(): void {
  const ul = $<HTMLUListElement>('keys');
  for (const k of [...trust.logs, ...trust.witnesses]) {
    const li = el('li');
    li.append(el('strong', `${k.type === 1 ? ui.keyLog : ui.keyWitness}: ${k.name}`));
    li.append(el('br'), el('span', `${ui.fingerprint}: `), el('code', k.fingerprint.replace(/(.{8})(?!$)/g, '$1 ')));
    li.append(el('br'), el('code', k.vkey, { class: 'vkey' }));
    ul.append(li);
  }
}

/** Self-information display: one button per (provider, item) of the self-information rows. */
function renderSelfInformation(): void {
  const ul = $<HTMLUListElement>('self-information');
  const out = $<HTMLDivElement>('self-result');
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
  for (const x of config.selfInformation) {
    const li = el('li');
    const b = el('button', ui.show(agency(x.provider), label(ITEMS, x.item, lang)), { type: 'button', 'data-provider': x.provider, 'data-item': x.item });
    b.addEventListener('click', () => {
      out.replaceChildren(el('p', ui.loading));
      out.removeAttribute('data-record-id');
      void fetch('/api/self-information', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ provider: x.provider, item: x.item }),
      })
        .then(async (r) => {
          if (!r.ok) throw new Error(`HTTP ${r.status}`);
          const v = (await r.json()) as { notFound?: boolean; recordId?: string; data?: unknown };
          out.replaceChildren(el('h3', `${agency(x.provider)} — ${label(ITEMS, x.item, lang)}`));
          if (v.notFound) {
            out.append(el('p', ui.selfNotFound(agency(x.provider))));
            return;
          }
          const dl = el('dl');
          if (v.data && typeof v.data === 'object') for (const [k, val] of Object.entries(v.data as Record<string, unknown>)) row(dl, k, typeof val === 'string' ? val : JSON.stringify(val));
          else row(dl, '', String(v.data));
          out.append(dl, el('p', ui.selfRecord(v.recordId ?? '')));
          out.setAttribute('data-record-id', v.recordId ?? '');
        })
        .catch(() => out.replaceChildren(el('p', ui.selfFailed)));
    });
    li.append(b);
    ul.append(li);
  }
}

type Stored = Record<string, string>;

function readStored(): Stored {
  try {
    const v = JSON.parse(localStorage.getItem(STORE_KEY) ?? '{}') as unknown;
    return v && typeof v === 'object' ? (v as Stored) : {};
  } catch {
    return {};
  }
}

function warn(state: string, message: string): void {
  const box = $<HTMLDivElement>('log-warning');
  box.hidden = false;
  const prev = box.getAttribute('data-state');
  box.setAttribute('data-state', prev && prev !== state ? `${prev} ${state}` : state);
  box.append(el('p', message));
}

/**
 * Consistency across visits: every log's checkpoint kept from the last visit must be extended by today's
 * (a consistency proof from the portal, checked here). A log that shrank or forked is flagged, and its old
 * checkpoint is kept so the warning stays until it is resolved; a consistent log's new checkpoint is kept.
 */
async function checkLogs(): Promise<void> {
  const stored = readStored();
  const { checkpoints } = await getJson<{ checkpoints: { origin: string; signedNote: string }[] }>('/api/checkpoints');
  const next: Stored = { ...stored };
  for (const c of checkpoints) {
    let now: OpenedCheckpoint;
    try {
      now = await openCheckpoint(c.signedNote, trust);
    } catch {
      continue; // a log this portal's keys do not cover: nothing to compare, and its records fail anyway
    }
    const oldNote = stored[now.origin];
    if (oldNote === undefined) {
      next[now.origin] = now.note;
      continue;
    }
    let old: OpenedCheckpoint;
    try {
      old = await openCheckpoint(oldNote, trust);
    } catch {
      warn('unverifiable', ui.unverifiable(now.origin));
      continue;
    }
    let hashes: Uint8Array[] = [];
    if (old.size < now.size) {
      const p = await getJson<{ hashes: string[] }>(`/api/consistency?origin=${encodeURIComponent(now.origin)}&old=${old.size}&new=${now.size}`);
      hashes = p.hashes.map(fromBase64);
    }
    const v = await checkConsistency(old.size, now.size, hashes, old.root, now.root);
    if (v.ok) next[now.origin] = now.note;
    else warn(v.kind === 'rolled-back' ? 'rolled-back' : 'forked', v.kind === 'rolled-back' ? ui.rolledBack(now.origin) : ui.forked(now.origin));
  }
  localStorage.setItem(STORE_KEY, JSON.stringify(next));
  document.body.setAttribute('data-logs-checked', '');
}

async function main(): Promise<void> {
  summary.textContent = ui.loading;
  config = await getJson<Config>('/api/config');
  trust = await trustedKeys(config.verifierKeys);
  renderKeys();
  renderSelfInformation();
  more.addEventListener('click', () => {
    void loadPage().catch(failed);
  });
  await Promise.all([
    loadPage(),
    checkLogs().catch((e: unknown) => {
      if (!(e instanceof Unauthorized)) document.body.setAttribute('data-logs-checked', 'error');
    }),
  ]);
}

function failed(e: unknown): void {
  if (e instanceof Unauthorized) return;
  summary.textContent = ui.loadFailed;
  summary.setAttribute('data-error', '');
}

void main().catch(failed);
