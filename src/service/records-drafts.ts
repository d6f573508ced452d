/** The access records the gateway's operations write, built in one place so every path fills every field. */
import { Outcome, type AccessRecordDraft } from '../core/access-record.js';

export const ISSUANCE_PROCEDURE = 'code.issue';
export const RECORDS_READ_PROCEDURE = 'records.read';
export const UNREGISTERED = '(unregistered)';
export const UNLISTED = '(unlisted)';

export function issuanceRecord(recordId: string, subject: string, agency: string, now: number): AccessRecordDraft {
  return {
    recordId,
    subject,
    requestedAt: now,
    providedAt: now,
    requester: agency,
    provider: '',
    procedure: ISSUANCE_PROCEDURE,
    legalBasisRow: '',
    item: 'code',
    outcome: Outcome.ISSUED,
    nonDisclosable: false,
  };
}

/** One record for the persons of one bulk issuance message: their subject keys go to the side table. */
export function bulkIssuanceRecord(recordId: string, subjects: readonly string[], agency: string, now: number): AccessRecordDraft {
  return { ...issuanceRecord(recordId, '', agency, now), subjects };
}

export function recordsReadRecord(recordId: string, subject: string, agency: string, now: number): AccessRecordDraft {
  return {
    recordId,
    subject,
    requestedAt: now,
    providedAt: now,
    requester: agency,
    provider: '',
    procedure: RECORDS_READ_PROCEDURE,
    legalBasisRow: '',
    item: 'access-records',
    outcome: Outcome.RECORDS_READ,
    nonDisclosable: false,
  };
}

/** The procedure of a wrong-binding report's record. */
export const BINDING_REPORT_PROCEDURE = 'binding.report-wrong';

/** The record of a wrong-binding report: the reporting agency, about the person its code named. */
export function bindingReportRecord(recordId: string, subject: string, agency: string, now: number): AccessRecordDraft {
  return {
    recordId,
    subject,
    requestedAt: now,
    providedAt: now,
    requester: agency,
    provider: '',
    procedure: BINDING_REPORT_PROCEDURE,
    legalBasisRow: '',
    item: 'code-binding',
    outcome: Outcome.BINDING_REPORTED,
    nonDisclosable: false,
  };
}
