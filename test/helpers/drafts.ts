/** Access-record drafts for store and writer tests, made by the production builders with fresh ids. */
import { createHash, randomBytes } from 'node:crypto';
import { runOfSubjects, type PersonsRun } from '../../src/core/persons-run.js';
import type { AccessRecordDraft } from '../../src/core/access-record.js';
import { base32Encode } from '../../src/core/base32.js';
import { newRecordId } from '../../src/core/record-id.js';
import { bulkIssuanceRecord, issuanceRecord } from '../../src/service/records-drafts.js';

/** A fresh subject key (what SubjectKeys.of would give for some person). */
export const randomSubject = (): string => base32Encode(randomBytes(16));

/** An issuance by the pension service, as IssueCode records it. */
export function issuanceDraft(overrides: Partial<AccessRecordDraft> = {}): AccessRecordDraft {
  return { ...issuanceRecord(newRecordId(), randomSubject(), 'pension', Date.now()), ...overrides };
}

/** A bulk issuance by the pension service naming `persons` fresh subjects, as IssueCodes records it. */
export function bulkIssuanceDraft(persons: number): AccessRecordDraft {
  return bulkIssuanceRecord(newRecordId(), Array.from({ length: persons }, randomSubject), 'pension', Date.now());
}

/** A subject key standing for a person the test names ('P1'): the same key for the same name, every run. */
export const named = (name: string): string => base32Encode(createHash('sha256').update(name).digest().subarray(0, 16));

/** The persons run of the named persons (for a batch record's `persons`). */
export const personsNamed = (...names: string[]): PersonsRun => runOfSubjects(names.map(named));
