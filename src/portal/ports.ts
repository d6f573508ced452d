/**
 * What the portal needs of the gateway, as the disclosure agency: a port, so the portal holds no gRPC code
 * (`linkgw portal` wires it to an agency client with the disclosure agency's certificate; tests may fake it).
 */
import type { AccessRecord, Checkpoint, RecordProof } from '../gen/linkage/v1/records_pb.js';

export interface DisclosureGateway {
  /** The disclosure agency's code for a personal number (IssueCode). The number is forgotten after the call. */
  issueCode(personalNumber: string): Promise<string>;
  /** A page of the person's disclosable records, newest first (ListAccessRecords). */
  listRecords(req: { code: string; pageSize: number; pageToken: string }): Promise<AccessRecord[]>;
  /** One record and its proof (GetRecordProof): asked only for records listed to the same person. */
  recordProof(recordId: string): Promise<RecordProof>;
  /** The latest checkpoint of every log (GetCheckpoints). */
  checkpoints(): Promise<Checkpoint[]>;
  /**
   * Self-information display: what `provider` holds about the person (QueryInformation under a
   * disclosure.self-information row, with the disclosure agency's code for the signed-in person only).
   */
  queryInformation(req: { code: string; provider: string; procedure: string; item: string }): Promise<{ payload: Uint8Array; contentType: string; recordId: string }>;
  /** A consistency proof between two signed sizes of a log (GetConsistencyProof). */
  consistencyProof(origin: string, oldSize: number, newSize: number): Promise<Uint8Array[]>;
}

/** A gateway error as the port reports it: the gRPC status code, when there is one. */
export function grpcCodeOf(e: unknown): number | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
}
