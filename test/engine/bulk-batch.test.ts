/**
 * A whole bulk message in one step (bulk-batch.ts) against the item-by-item construction it replaces: the
 * response's bytes are exactly protobuf-es's `toBinary` of the message built with one `create` per result, and
 * the persons run and its commitment are those of the subject keys the record named before.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { runCommitment, runSubjects } from '../../src/core/persons-run.js';
import { subjectsCommitment } from '../../src/core/record-leaf.js';
import { SubjectKeys } from '../../src/core/subject-key.js';
import { issueBulkBatch, type BulkNumbers, type BulkTask } from '../../src/engine/bulk-batch.js';
import { scanIssueCodesRequest } from '../../src/engine/issue-codes-wire.js';
import { AutoEngine } from '../../src/engine/auto-engine.js';
import { InlineEngine } from '../../src/engine/mapping-engine.js';
import { PooledEngine } from '../../src/engine/pooled-engine.js';
import { IssueCodeResultSchema, IssueCodesRequestSchema, IssueCodesResponseSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { personalNumberProblem } from '../../src/service/personal-number-input.js';
import { population, withBadCheckDigit } from '../helpers/population.js';

const keys = { current: 1, masters: new Map([[1, randomBytes(32)]]), subjectSecret: randomBytes(32) };
const codec = new AgencyCodec(keys);
const subjects = new SubjectKeys(keys.subjectSecret);

/** The response and persons as the per-item path made them. */
function expected(numbers: readonly string[], recordId: string, offset: number) {
  const values: number[] = [];
  const results = numbers.map((s) => {
    const c = checkPersonalNumber(s);
    if (c.ok) {
      values.push(c.value);
      return create(IssueCodeResultSchema, { code: codec.encode('pension', c.value) });
    }
    return create(IssueCodeResultSchema, { status: 3, error: personalNumberProblem(s)! });
  });
  const persons = subjects.ofMany([...new Set(values)]);
  const response = create(IssueCodesResponseSchema, { offset: BigInt(offset), results, recordId: values.length > 0 ? recordId : '' });
  return { bytes: toBinary(IssueCodesResponseSchema, response), persons, issued: values.length };
}

function wire(numbers: readonly string[]): BulkNumbers {
  const bytes = toBinary(IssueCodesRequestSchema, create(IssueCodesRequestSchema, { personalNumbers: [...numbers] }));
  return { bytes, count: scanIssueCodesRequest(bytes) };
}

const odd = (valid: readonly string[]) => [
  withBadCheckDigit(valid[0]!),
  valid[1]!.slice(0, 11),
  '',
  '000000000000',
  '8700110005901', // a corporate number (13 digits, valid check digit)
  '12345678901a',
  '１２３４５６７８９０１２',
  '\uFEFF' + valid[2]!.slice(1),
  'ä'.repeat(12),
  valid[3]! + ' ',
  ' '.repeat(12),
];

describe('issueBulkBatch', () => {
  const valid = population(500, 11);
  const mixed = [...valid.slice(0, 100), ...odd(valid), valid[5]!, valid[5]!, ...valid.slice(100)];

  for (const [name, numbers] of [
    ['valid numbers', valid],
    ['valid, repeated and malformed numbers', mixed],
    ['only malformed numbers', odd(valid)],
    ['no numbers', []],
  ] as const) {
    for (const offset of [0, 1, 12_345, 2 ** 40 + 3]) {
      it(`gives protobuf-es's bytes and the record's persons: ${name}, offset ${offset}`, () => {
        const want = expected(numbers, '6K1GNYMWT14BHNZKMT5A9ZFT', offset);
        for (const input of [wire(numbers), { strings: numbers }]) {
          const task: BulkTask = { agency: 'pension', recordId: '6K1GNYMWT14BHNZKMT5A9ZFT', offset, numbers: input };
          const got = issueBulkBatch(codec, subjects, task);
          expect(Buffer.from(got.response).equals(Buffer.from(want.bytes))).toBe(true);
          expect(got.issued).toBe(want.issued);
          expect(runSubjects(got.run)).toEqual([...want.persons].sort());
          if (want.issued > 0) {
            expect(Buffer.from(got.commitment)).toEqual(subjectsCommitment(task.recordId, want.persons));
            expect(Buffer.from(got.commitment)).toEqual(runCommitment(task.recordId, got.run));
          } else expect(got.commitment).toHaveLength(0);
        }
      });
    }
  }

  it('gives each malformed number the text the per-item path gave, never the number', () => {
    const numbers = odd(valid);
    const got = issueBulkBatch(codec, subjects, { agency: 'pension', recordId: 'R', offset: 0, numbers: wire(numbers) });
    const text = Buffer.from(got.response).toString('latin1');
    for (const n of numbers) {
      expect(text).toContain(personalNumberProblem(n)!);
      if (n.length >= 6) expect(text).not.toContain(n.slice(0, 6));
    }
  });
});

describe('issueBulk on the engines', () => {
  let pool: PooledEngine;
  beforeAll(async () => {
    pool = await PooledEngine.create(keys, { threads: 1 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('is there only with the subject secret', async () => {
    expect(new InlineEngine({ current: 1, masters: keys.masters }).issueBulk).toBeUndefined();
    expect(new InlineEngine(keys).issueBulk).toBeTypeOf('function');
    const without = await PooledEngine.create({ current: 1, masters: keys.masters }, { threads: 1 });
    try {
      expect(without.issueBulk).toBeUndefined();
      expect(new AutoEngine(new InlineEngine(keys), without).issueBulk).toBeUndefined();
    } finally {
      await without.close();
    }
  });

  it('gives the same answer inline, on the pool and through the auto engine, leaving the caller its bytes', async () => {
    const numbers = [...odd(valid()), ...population(10_000, 12)].slice(0, 10_000);
    const input = wire(numbers) as { bytes: Uint8Array; count: number };
    const copy = Uint8Array.from(input.bytes);
    const task: BulkTask = { agency: 'tax', recordId: '6K1GNYMWT14BHNZKMT5A9ZFT', offset: 40_000, numbers: input };
    const inline = await new InlineEngine(keys).issueBulk!(task);
    const pooled = await pool.issueBulk!(task);
    const auto = await new AutoEngine(new InlineEngine(keys), pool).issueBulk!(task);
    for (const r of [pooled, auto]) {
      expect(Buffer.from(r.response).equals(Buffer.from(inline.response))).toBe(true);
      expect(Buffer.from(r.run).equals(Buffer.from(inline.run))).toBe(true);
      expect(Buffer.from(r.commitment)).toEqual(Buffer.from(inline.commitment));
      expect(r.issued).toBe(inline.issued);
    }
    expect(Buffer.from(input.bytes).equals(Buffer.from(copy))).toBe(true);
  });

  it('answers a cancelled call at once with CANCELLED and keeps serving', async () => {
    const ac = new AbortController();
    const task: BulkTask = { agency: 'tax', recordId: 'R', offset: 0, numbers: { strings: population(5000, 13) } };
    const first = pool.issueBulk!(task);
    const second = pool.issueBulk!(task, ac.signal);
    ac.abort();
    await expect(second).rejects.toMatchObject({ code: 'CANCELLED' });
    await expect(first).resolves.toMatchObject({ issued: 5000 });
    await expect(pool.issueBulk!(task, AbortSignal.abort())).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});

function valid(): string[] {
  return population(10, 14);
}
