/**
 * The record tables, shared by both stores (the SQL here is the common subset of SQLite and PostgreSQL).
 * Times are milliseconds since the epoch. No column holds a personal number or an agency code: `subject` is
 * the subject key (AES under the keyring's subject secret: reversible only with that secret; see
 * docs/threat-model.md).
 */
export const RECORD_COLUMNS = [
  'chain_id',
  'seq',
  'record_id',
  'subject',
  'requested_at',
  'provided_at',
  'requester',
  'provider',
  'procedure',
  'legal_basis_row',
  'item',
  'outcome',
  'non_disclosable',
  'subjects_digest',
  'prev_hash',
  'hash',
] as const;

/** The DDL for a store; SQLite keeps the narrow subjects table clustered on its key (WITHOUT ROWID). */
export function schemaFor(kind: 'sqlite' | 'postgres'): string[] {
  return SCHEMA.map((s) => (kind === 'sqlite' && s.includes('TABLE IF NOT EXISTS record_subjects') ? `${s} WITHOUT ROWID` : s));
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS access_records (
    chain_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    record_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    provided_at BIGINT,
    requester TEXT NOT NULL,
    provider TEXT NOT NULL,
    procedure TEXT NOT NULL,
    legal_basis_row TEXT NOT NULL,
    item TEXT NOT NULL,
    outcome INTEGER NOT NULL,
    non_disclosable INTEGER NOT NULL,
    subjects_digest TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq)
  )`,
  `CREATE INDEX IF NOT EXISTS access_records_by_subject
    ON access_records (subject, requested_at DESC, chain_id DESC, seq DESC)`,
  // The persons of batch records (bulk issuance): one narrow row each instead of one chained record each.
  `CREATE TABLE IF NOT EXISTS record_subjects (
    subject TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (subject, record_id)
  )`,
  `CREATE TABLE IF NOT EXISTS record_seals (
    chain_id TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    signature TEXT NOT NULL,
    key_id TEXT NOT NULL,
    sealed_at BIGINT NOT NULL,
    PRIMARY KEY (chain_id, last_seq)
  )`,
  // What each chain committed to, in its genesis hash, about the chains already stored when it started.
  `CREATE TABLE IF NOT EXISTS record_chain_links (
    chain_id TEXT NOT NULL,
    predecessor TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    PRIMARY KEY (chain_id, predecessor)
  )`,
  `CREATE INDEX IF NOT EXISTS record_chain_links_by_predecessor ON record_chain_links (predecessor, last_seq)`,
];

export interface LinkRow {
  predecessor: string;
  last_seq: number | string;
  head_hash: string;
}

export function rowToLink(r: LinkRow): ChainLink {
  return { predecessor: r.predecessor, lastSeq: Number(r.last_seq), headHash: r.head_hash };
}

/** Link rows of many chains, grouped by the chain that holds them. */
export function groupLinks(rows: readonly (LinkRow & { chain_id: string })[]): Map<string, ChainLink[]> {
  const out = new Map<string, ChainLink[]>();
  for (const r of rows) {
    let l = out.get(r.chain_id);
    if (!l) out.set(r.chain_id, (l = []));
    l.push(rowToLink(r));
  }
  return out;
}

export interface RecordRow {
  chain_id: string;
  seq: number | string;
  record_id: string;
  subject: string;
  requested_at: number | string;
  provided_at: number | string | null;
  requester: string;
  provider: string;
  procedure: string;
  legal_basis_row: string;
  item: string;
  outcome: number;
  non_disclosable: number | boolean;
  subjects_digest: string | null;
  prev_hash: string;
  hash: string;
}

export interface SealRow {
  chain_id: string;
  last_seq: number | string;
  head_hash: string;
  signature: string;
  key_id: string;
  sealed_at: number | string;
}

import type { ChainedRecord, ChainLink, Outcome, Seal } from '../core/access-record.js';

export function rowToRecord(r: RecordRow): ChainedRecord {
  return {
    chainId: r.chain_id,
    seq: Number(r.seq),
    recordId: r.record_id,
    subject: r.subject,
    requestedAt: Number(r.requested_at),
    providedAt: r.provided_at === null ? null : Number(r.provided_at),
    requester: r.requester,
    provider: r.provider,
    procedure: r.procedure,
    legalBasisRow: r.legal_basis_row,
    item: r.item,
    outcome: r.outcome as Outcome,
    nonDisclosable: r.non_disclosable === true || r.non_disclosable === 1,
    subjectsDigest: r.subjects_digest,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export function recordToValues(r: ChainedRecord): (string | number | null)[] {
  return [
    r.chainId,
    r.seq,
    r.recordId,
    r.subject,
    r.requestedAt,
    r.providedAt,
    r.requester,
    r.provider,
    r.procedure,
    r.legalBasisRow,
    r.item,
    r.outcome,
    r.nonDisclosable ? 1 : 0,
    r.subjectsDigest,
    r.prevHash,
    r.hash,
  ];
}

export function rowToSeal(s: SealRow): Seal {
  return {
    chainId: s.chain_id,
    lastSeq: Number(s.last_seq),
    headHash: s.head_hash,
    signature: s.signature,
    keyId: s.key_id,
    sealedAt: Number(s.sealed_at),
  };
}
