/** The access records the gateway's operations write, built in one place so every path fills every field. */
import { runOfSubjects, type PersonsRun } from '../core/persons-run.js';
import { Outcome, type AccessRecordDraft } from '../core/access-record.js';
import type { LegalBasisRow } from '../core/legal-basis.js';

export const ISSUANCE_PROCEDURE = 'code.issue';
export const RECORDS_READ_PROCEDURE = 'records.read';
/** The procedure of a wrong-binding report's record. */
export const BINDING_REPORT_PROCEDURE = 'binding.report-wrong';
export const UNREGISTERED = '(unregistered)';
export const UNLISTED = '(unlisted)';

/** A record of something an agency did about a person by itself (no provider, no legal-basis row). */
function ownAction(recordId: string, subject: string, agency: string, now: number, procedure: string, item: string, outcome: Outcome): AccessRecordDraft {
  return {
    recordId,
    subject,
    requestedAt: now,
    providedAt: now,
    requester: agency,
    provider: '',
    procedure,
    legalBasisRow: '',
    item,
    outcome,
    nonDisclosable: false,
  };
}

export function issuanceRecord(recordId: string, subject: string, agency: string, now: number): AccessRecordDraft {
  return ownAction(recordId, subject, agency, now, ISSUANCE_PROCEDURE, 'code', Outcome.ISSUED);
}

/**
 * One record for the persons of one bulk issuance message: their subject keys as one sorted run (or as text,
 * made into one), with the run's commitment when it was computed already.
 */
export function bulkIssuanceRecord(recordId: string, persons: PersonsRun | readonly string[], agency: string, now: number, personsCommitment?: Buffer): AccessRecordDraft {
  return { ...issuanceRecord(recordId, '', agency, now), persons: persons instanceof Uint8Array ? persons : runOfSubjects(persons), ...(personsCommitment ? { personsCommitment } : {}) };
}

export function recordsReadRecord(recordId: string, subject: string, agency: string, now: number): AccessRecordDraft {
  return ownAction(recordId, subject, agency, now, RECORDS_READ_PROCEDURE, 'access-records', Outcome.RECORDS_READ);
}

/** The record of a wrong-binding report: the reporting agency, about the person its code named. */
export function bindingReportRecord(recordId: string, subject: string, agency: string, now: number): AccessRecordDraft {
  return ownAction(recordId, subject, agency, now, BINDING_REPORT_PROCEDURE, 'code-binding', Outcome.BINDING_REPORTED);
}

/** What is known of a query when it is recorded: who asked which provider about whom, for what. */
export interface QueryFacts {
  readonly recordId: string;
  readonly subject: string;
  readonly requestedAt: number;
  readonly requester: string;
  /** The provider's registry id, or UNREGISTERED. */
  readonly provider: string;
  /** As asked when the table names it, UNLISTED otherwise (a caller's free text is never recorded verbatim). */
  readonly procedure: string;
  readonly item: string;
  /** The procedure or item names a non-disclosable exchange (legal-basis.ts namesNonDisclosable). */
  readonly nonDisclosable: boolean;
}

/**
 * The record of a query that ended with `outcome`; `row` is the legal-basis row that matched, if any. It is
 * non-disclosable when the row is, or when its names are, whatever the outcome.
 */
export function queryRecord(q: QueryFacts, outcome: Outcome, row: Pick<LegalBasisRow, 'id' | 'nonDisclosable'> | undefined, providedAt: number | null = null): AccessRecordDraft {
  return { ...q, providedAt, legalBasisRow: row?.id ?? '', outcome, nonDisclosable: q.nonDisclosable || (row?.nonDisclosable ?? false) };
}
