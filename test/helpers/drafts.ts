/** Access-record drafts for store and writer tests: an issuance by the pension service, with fresh ids. */
import { randomBytes } from 'node:crypto';
import { Outcome, type AccessRecordDraft } from '../../src/core/access-record.js';
import { base32Encode } from '../../src/core/base32.js';

export function issuanceDraft(overrides: Partial<AccessRecordDraft> = {}): AccessRecordDraft {
  return {
    recordId: base32Encode(randomBytes(15)),
    subject: base32Encode(randomBytes(16)),
    requestedAt: Date.now(),
    providedAt: null,
    requester: 'pension',
    provider: '',
    procedure: '',
    legalBasisRow: '',
    item: '',
    outcome: Outcome.ISSUED,
    nonDisclosable: false,
    ...overrides,
  };
}
