/**
 * Full exchanges over mTLS with the simulated agencies, against both record stores: granted, denied, unknown
 * person, provider down, record store down; what the provider receives; who may read records.
 */
import { status } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Outcome } from '../../src/core/access-record.js';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { Direction } from '../../src/gen/linkage/v1/gateway_pb.js';
import type { ProvideRequest } from '../../src/gen/linkage/v1/provider_pb.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { PG_URL, startHarness, statusOf, type Harness, type StoreKind } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const value = (s: string) => {
  const c = checkPersonalNumber(s);
  if (!c.ok) throw new Error('bad test number');
  return c.value;
};

describe.each<StoreKind>(['sqlite', 'postgres'])('exchanges with records in %s', (store) => {
  let h: Harness;
  const received: { agency: string; req: ProvideRequest }[] = [];
  const people = population(400, store === 'sqlite' ? 11 : 12);
  let codec: AgencyCodec;
  /** A person the tax office knows, and one it does not. */
  let known: string;
  let unknown: string;

  beforeAll(async () => {
    h = await startHarness({ records: store, simulation: { onRequest: (agency, req) => received.push({ agency, req }) } });
    codec = new AgencyCodec(h.gw.keyring);
    known = people.find((n) => isEnrolled('tax', codec.encode('tax', value(n))))!;
    unknown = people.find((n) => !isEnrolled('tax', codec.encode('tax', value(n))))!;
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** Runs SQL against the gateway's record store from outside the gateway. */
  async function sql(text: string): Promise<unknown[]> {
    if (store === 'sqlite') {
      const db = new Database(join(h.dataDir, 'records.sqlite'));
      db.pragma('busy_timeout = 5000');
      try {
        const st = db.prepare(text);
        return st.reader ? st.all() : (st.run(), []);
      } finally {
        db.close();
      }
    }
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(`SET search_path = ${h.pgSchema}`);
      return (await c.query(text)).rows;
    } finally {
      await c.end();
    }
  }

  it('relays a granted query: the payload comes back with its record id and legal-basis row', async () => {
    const pension = h.client('pension');
    const { code } = await pension.issueCode(known);
    received.length = 0;
    const r = await pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' });
    expect(r.contentType).toBe('application/json');
    expect(JSON.parse(Buffer.from(r.payload).toString())).toMatchObject({ agency: 'tax', item: 'income', fiscalYear: 2025 });
    expect(r.legalBasisRow).toBe('B2-001');
    expect(r.recordId).toMatch(/^[0-9A-Z]{24}$/);
    const rows = (await sql(`SELECT outcome, requester, provider, procedure, item, legal_basis_row, provided_at FROM access_records WHERE record_id = '${r.recordId}'`)) as Record<string, unknown>[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: Outcome.PROVIDED, requester: 'pension', provider: 'tax', procedure: 'pension.eligibility', item: 'income', legal_basis_row: 'B2-001' });
    expect(rows[0]!.provided_at).not.toBeNull();
  });

  it('gives the provider its own code for the person: never the number, never the requester\'s code', async () => {
    const welfare = h.client('welfare');
    const { code } = await welfare.issueCode(known);
    received.length = 0;
    await welfare.queryInformation({ code, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' });
    expect(received).toHaveLength(1);
    const got = received[0]!;
    expect(got.agency).toBe('tax');
    expect(got.req.code).toBe(codec.encode('tax', value(known)));
    expect(got.req.code).not.toBe(code);
    expect(got.req.requester).toBe('welfare');
    const wire = JSON.stringify(got.req, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    expect(wire).not.toContain(known);
    expect(wire).not.toContain(code);
  });

  it('denies and records queries outside the legal-basis table: wrong procedure, item, provider', async () => {
    const pension = h.client('pension');
    const { code } = await pension.issueCode(known);
    received.length = 0;
    const tries = [
      { provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' },
      { provider: 'tax', procedure: 'pension.eligibility', item: 'pension-benefit' },
      { provider: 'employment', procedure: 'pension.eligibility', item: 'income' },
      { provider: 'no-such-agency', procedure: 'pension.eligibility', item: 'income' },
      { provider: 'disclosure', procedure: 'pension.eligibility', item: 'income' },
    ];
    for (const t of tries) {
      const s = await statusOf(pension.queryInformation({ code, ...t }));
      expect(s.code).toBe(status.PERMISSION_DENIED);
      expect(s.details).toMatch(/no legal basis/);
    }
    expect(received).toHaveLength(0);
    const denied = (await sql(`SELECT provider, procedure, item, legal_basis_row FROM access_records WHERE outcome = ${Outcome.DENIED} AND requester = 'pension'`)) as Record<string, string>[];
    expect(denied.length).toBeGreaterThanOrEqual(tries.length);
    expect(denied).toContainEqual({ provider: 'tax', procedure: 'pension.eligibility', item: 'pension-benefit', legal_basis_row: 'B2-001' });
    expect(denied).toContainEqual({ provider: '(unregistered)', procedure: 'pension.eligibility', item: 'income', legal_basis_row: '' });

    // An agency without the requester role, naming a person with its own valid code: refused and recorded.
    const disclosure = h.client('disclosure');
    const dc = (await disclosure.issueCode(known)).code;
    const s = await statusOf(disclosure.queryInformation({ code: dc, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }));
    expect(s.code).toBe(status.PERMISSION_DENIED);
    expect(s.details).toMatch(/may not query information/);
    expect(received).toHaveLength(0);
    const byDisclosure = (await sql(`SELECT provider, outcome FROM access_records WHERE requester = 'disclosure' AND outcome = ${Outcome.DENIED}`)) as Record<string, unknown>[];
    expect(byDisclosure).toHaveLength(1);
    expect(byDisclosure[0]!.provider).toBe('tax');
  });

  it('refuses forged codes, other agencies\' codes and malformed fields with INVALID_ARGUMENT', async () => {
    const pension = h.client('pension');
    const taxCode = (await h.client('tax').issueCode(known)).code;
    const own = (await pension.issueCode(known)).code;
    const forged = own.slice(0, 10) + (own[10] === 'A' ? 'B' : 'A') + own.slice(11);
    for (const code of [taxCode, forged, 'garbage', '']) {
      const s = await statusOf(pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }));
      expect(s.code).toBe(status.INVALID_ARGUMENT);
    }
    for (const bad of [{ provider: '' }, { procedure: 'X'.repeat(100) }, { item: 'in come' }]) {
      const s = await statusOf(pension.queryInformation({ code: own, provider: 'tax', procedure: 'pension.eligibility', item: 'income', ...bad }));
      expect(s.code).toBe(status.INVALID_ARGUMENT);
    }
  });

  it('relays NOT_FOUND for a person the provider does not know, and records it', async () => {
    const pension = h.client('pension');
    const { code } = await pension.issueCode(unknown);
    const s = await statusOf(pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }));
    expect(s.code).toBe(status.NOT_FOUND);
    const recordId = s.metadata?.get('x-record-id')[0];
    expect(recordId).toBeTruthy();
    const rows = (await sql(`SELECT outcome FROM access_records WHERE record_id = '${String(recordId)}'`)) as { outcome: number }[];
    expect(rows).toEqual([{ outcome: Outcome.NOT_FOUND }]);
  });

  it('lets only the disclosure agency read records, only of the person it names, newest first, paged', async () => {
    const person = people[50]!;
    const other = people[51]!;
    const pension = h.client('pension');
    const welfare = h.client('welfare');
    const disclosure = h.client('disclosure');
    const pc = (await pension.issueCode(person)).code;
    await welfare.issueCode(person);
    await pension.issueCode(other);
    await statusOf(pension.queryInformation({ code: pc, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' })).catch(() => undefined);
    const dc = (await disclosure.issueCode(person)).code;

    // Anyone else is refused, even with a valid code of its own.
    expect((await statusOf(pension.listRecords({ code: pc }))).code).toBe(status.PERMISSION_DENIED);
    // The disclosure agency cannot use another agency's code.
    expect((await statusOf(disclosure.listRecords({ code: pc }))).code).toBe(status.INVALID_ARGUMENT);

    const all = await disclosure.listRecords({ code: dc });
    expect(all.map((r) => [r.requester, r.procedure, r.outcome])).toEqual([
      ['disclosure', 'code.issue', Outcome.ISSUED],
      ['pension', 'welfare.public-assistance', Outcome.DENIED],
      ['welfare', 'code.issue', Outcome.ISSUED],
      ['pension', 'code.issue', Outcome.ISSUED],
    ]);
    const times = all.map((r) => Number(r.requestedAt!.seconds) * 1e3 + r.requestedAt!.nanos / 1e6);
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    const page1 = await disclosure.listRecords({ code: dc, pageSize: 2 });
    // The first read is now on the record too, newest.
    expect(page1[0]!.procedure).toBe('records.read');
    const page2 = await disclosure.listRecords({ code: dc, pageSize: 2, pageToken: page1[1]!.cursor });
    const page3 = await disclosure.listRecords({ code: dc, pageSize: 10, pageToken: page2[1]!.cursor });
    const ids = [...page1, ...page2, ...page3].map((r) => r.recordId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(all.map((r) => r.recordId)));

    // A time range that ends before everything returns nothing.
    expect(await disclosure.listRecords({ code: dc, to: { seconds: 1n, nanos: 0 } })).toEqual([]);
    // Times outside the Timestamp range are the caller's mistake, not a store failure.
    for (const bad of [{ seconds: 2n ** 62n, nanos: 0 }, { seconds: -(2n ** 62n), nanos: 0 }, { seconds: 0n, nanos: -1 }]) {
      const s = await statusOf(disclosure.listRecords({ code: dc, from: bad }));
      expect(s.code).toBe(status.INVALID_ARGUMENT);
      expect(s.details).toMatch(/from: not a valid timestamp/);
    }
  });

  it('takes a report of a wrong binding: recorded first, then the exchanges that sent or received data about the person', async () => {
    const t0 = Date.now() - 1;
    const welfare = h.client('welfare');
    const pension = h.client('pension');
    const tax = h.client('tax');
    const wc = (await welfare.issueCode(known)).code;
    const pc = (await pension.issueCode(known)).code;
    const byWelfare = await welfare.queryInformation({ code: wc, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' });
    const byPension = await pension.queryInformation({ code: pc, provider: 'tax', procedure: 'pension.eligibility', item: 'income' });
    // The tax office bound its code for this person to someone else's file: both answers it gave went out.
    const tc = (await tax.issueCode(known)).code;
    const report = await tax.reportWrongBinding(tc, t0);
    expect(report.truncated).toBe(false);
    expect(report.affected.map((a) => [a.recordId, a.requester, a.provider, a.direction])).toEqual([
      [byPension.recordId, 'pension', 'tax', Direction.SENT],
      [byWelfare.recordId, 'welfare', 'tax', Direction.SENT],
    ]);
    // The welfare office's view: what it received about the person.
    const fromWelfare = await welfare.reportWrongBinding(wc, t0);
    expect(fromWelfare.affected.map((a) => [a.recordId, a.provider, a.item, a.direction])).toEqual([[byWelfare.recordId, 'tax', 'income', Direction.RECEIVED]]);
    // Nothing before `since`.
    expect((await tax.reportWrongBinding(tc, Date.now() + 60_000)).affected).toEqual([]);
    // Each report is on record, where the person can see it.
    const reports = (await sql(`SELECT requester, procedure FROM access_records WHERE outcome = ${Outcome.BINDING_REPORTED} AND record_id = '${report.recordId}'`)) as Record<string, string>[];
    expect(reports).toEqual([{ requester: 'tax', procedure: 'binding.report-wrong' }]);
    const dc = (await h.client('disclosure').issueCode(known)).code;
    const seen = await h.client('disclosure').listRecords({ code: dc });
    expect(seen.map((r) => r.recordId)).toContain(report.recordId);
    // Only the caller's own codes, and only agencies that exchange information.
    expect((await statusOf(tax.reportWrongBinding(wc))).code).toBe(status.INVALID_ARGUMENT);
    expect((await statusOf(h.client('disclosure').reportWrongBinding(dc))).code).toBe(status.PERMISSION_DENIED);
  });

  it('keeps non-disclosable records out of disclosure', async () => {
    const person = people[60]!;
    const welfare = h.client('welfare');
    const disclosure = h.client('disclosure');
    const wc = (await welfare.issueCode(person)).code;
    await welfare.queryInformation({ code: wc, provider: 'tax', procedure: 'welfare.dv-shelter-support', item: 'income' }).catch(() => undefined);
    const rows = (await sql(`SELECT count(*) AS n FROM access_records WHERE procedure = 'welfare.dv-shelter-support' AND non_disclosable = 1`)) as { n: number | string }[];
    expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(1);
    const dc = (await disclosure.issueCode(person)).code;
    const seen = await disclosure.listRecords({ code: dc });
    expect(seen.some((r) => r.procedure === 'welfare.dv-shelter-support')).toBe(false);
    expect(seen.some((r) => r.requester === 'welfare' && r.procedure === 'code.issue')).toBe(true);
  });

  it('fails with UNAVAILABLE and releases nothing when the record store cannot commit, then recovers', async () => {
    const pension = h.client('pension');
    const { code } = await pension.issueCode(known);
    await sql('ALTER TABLE access_records RENAME TO access_records_away');
    try {
      const s = await statusOf(pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }));
      expect(s.code).toBe(status.UNAVAILABLE);
      expect(s.details).toMatch(/access record could not be written; nothing was released/);
      const s2 = await statusOf(pension.issueCode(people[70]!));
      expect(s2.code).toBe(status.UNAVAILABLE);
    } finally {
      await sql('ALTER TABLE access_records_away RENAME TO access_records');
    }
    const ok = await pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' });
    expect(ok.payload.length).toBeGreaterThan(0);
  });

  it('fails with UNAVAILABLE well within the deadline when the provider is down, and records the failure', async () => {
    const pension = h.client('pension');
    const { code } = await pension.issueCode(known);
    await h.gw.simulated!.close();
    const started = Date.now();
    const s = await statusOf(pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }, { deadlineMs: 4000 }));
    expect(s.code).toBe(status.UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(4000);
    const recordId = String(s.metadata?.get('x-record-id')[0]);
    const rows = (await sql(`SELECT outcome, provided_at FROM access_records WHERE record_id = '${recordId}'`)) as { outcome: number; provided_at: unknown }[];
    expect(rows).toEqual([{ outcome: Outcome.FAILED, provided_at: null }]);
  });

  it('holds no personal number and no agency code anywhere in the record store', async () => {
    const everything = JSON.stringify(await sql('SELECT * FROM access_records')) + JSON.stringify(await sql('SELECT * FROM log_checkpoints'));
    expect(everything.length).toBeGreaterThan(1000);
    let files = '';
    if (store === 'sqlite') {
      const { readdirSync, readFileSync } = await import('node:fs');
      for (const f of readdirSync(h.dataDir).filter((f) => f.startsWith('records.sqlite'))) files += readFileSync(join(h.dataDir, f)).toString('latin1');
      expect(files.length).toBeGreaterThan(0);
    }
    for (const n of people.slice(0, 80).concat([known, unknown])) {
      expect(everything.includes(n), 'number in the store').toBe(false);
      expect(files.includes(n), 'number in the store files').toBe(false);
      for (const agency of ['pension', 'tax', 'welfare', 'disclosure']) expect(everything.includes(codec.encode(agency, value(n))), 'code in the store').toBe(false);
    }
  });

  it('wrote no personal number to its log, at debug level', () => {
    const logs = h.logs();
    expect(logs).toContain('"level":"debug"');
    for (const n of people.concat([known, unknown])) expect(logs.includes(n), 'number in the log').toBe(false);
  });
});

describe('a provider slower than the provider timeout', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { LINKGW_PROVIDER_TIMEOUT_MS: '300' }, simulation: { delayMs: 3000 } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('gets DEADLINE_EXCEEDED at the cap, recorded as failed', async () => {
    const codec = new AgencyCodec(h.gw.keyring);
    const person = population(50, 3).find((n) => isEnrolled('employment', codec.encode('employment', value(n))))!;
    const welfare = h.client('welfare');
    const { code } = await welfare.issueCode(person);
    const started = Date.now();
    const s = await statusOf(welfare.queryInformation({ code, provider: 'employment', procedure: 'welfare.public-assistance', item: 'unemployment-benefit' }, { deadlineMs: 10_000 }));
    expect(s.code).toBe(status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(3000);
    const recordId = s.metadata?.get('x-record-id')[0];
    expect(typeof recordId).toBe('string');
    const rows = recordsOf(h, `SELECT outcome, provided_at FROM access_records WHERE record_id = '${String(recordId)}'`);
    expect(rows).toEqual([{ outcome: Outcome.FAILED, provided_at: null }]);
  });
});

describe('a requester that gives up while the provider works', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { LINKGW_PROVIDER_TIMEOUT_MS: '5000' }, simulation: { delayMs: 3000 } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('has the provider call cancelled with it, and the exchange recorded as failed at once', async () => {
    const codec = new AgencyCodec(h.gw.keyring);
    const person = population(50, 4).find((n) => isEnrolled('employment', codec.encode('employment', value(n))))!;
    const welfare = h.client('welfare');
    const { code } = await welfare.issueCode(person);
    // A long deadline, so only the cancellation can end the provider call early.
    const s = await statusOf(
      welfare.queryInformation({ code, provider: 'employment', procedure: 'welfare.public-assistance', item: 'unemployment-benefit' }, { deadlineMs: 30_000, signal: AbortSignal.timeout(400) }),
    );
    expect(s.code).toBe(status.CANCELLED);
    // The provider would answer after 3 s; the gateway stops waiting when the requester goes away, so the
    // failed exchange is on record long before that.
    const failed = () => recordsOf(h, `SELECT outcome FROM access_records WHERE requester = 'welfare' AND provider = 'employment'`);
    await until(() => failed().length === 1, 2000);
    expect(failed()).toEqual([{ outcome: Outcome.FAILED }]);
  });
});

function recordsOf(h: Harness, text: string): unknown[] {
  const db = new Database(join(h.dataDir, 'records.sqlite'), { readonly: true });
  db.pragma('busy_timeout = 5000');
  try {
    return db.prepare(text).all();
  } finally {
    db.close();
  }
}
