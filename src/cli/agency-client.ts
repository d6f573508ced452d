/**
 * A small client that acts as one agency, with that agency's certificate from the dev PKI (or given files):
 * used by `linkgw client`, the README's walk-through, tests and benchmarks.
 */
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { credentials, Metadata, type Client, type ClientDuplexStream, type ClientReadableStream } from '@grpc/grpc-js';
import {
  IssueCodesRequestSchema,
  LinkageGateway,
  type IssueCodesRequest,
  type IssueCodesResponse,
  type QueryInformationRequestSchema,
} from '../gen/linkage/v1/gateway_pb.js';
import { AccessRecords, ListAccessRecordsRequestSchema, type AccessRecord, type ListAccessRecordsRequestSchema as ListSchema } from '../gen/linkage/v1/records_pb.js';
import { clientOptionsFor } from '../grpc/channel-options.js';
import { callUnary, makeClient } from '../grpc/generic-client.js';
import { INSECURE_AGENCY_HEADER } from '../grpc/identity.js';
import { channelCredentials } from '../grpc/tls.js';
import { pkiFiles } from '../pki/dev-pki.js';

export interface AgencyClientOptions {
  readonly address: string;
  readonly agency: string;
  /** Directory with ca.crt and <agency>.crt/.key (the dev PKI). */
  readonly pkiDir?: string;
  readonly files?: { ca: string; cert: string; key: string };
  readonly plaintext?: boolean;
}

export class AgencyClient {
  readonly gateway: Client;
  readonly records: Client;
  readonly #md: Record<string, string>;

  constructor(o: AgencyClientOptions) {
    let creds;
    if (o.plaintext) creds = credentials.createInsecure();
    else {
      const f = o.files ?? (() => {
        const p = pkiFiles(o.pkiDir!);
        return { ca: p.caCert, cert: p.agencyCert(o.agency), key: p.agencyKey(o.agency) };
      })();
      creds = channelCredentials(f);
    }
    this.gateway = makeClient(LinkageGateway, o.address, creds, clientOptionsFor(o.address));
    // Both services share one HTTP/2 connection.
    this.records = makeClient(AccessRecords, o.address, creds, { channelOverride: this.gateway.getChannel() });
    this.#md = o.plaintext ? { [INSECURE_AGENCY_HEADER]: o.agency } : {};
  }

  #metadata(extra: Record<string, string> = {}): Metadata {
    const md = new Metadata();
    for (const [k, v] of Object.entries({ ...this.#md, ...extra })) md.set(k, v);
    return md;
  }

  issueCode(personalNumber: string, deadlineMs = 10_000) {
    return callUnary(this.gateway, LinkageGateway.method.issueCode, { personalNumber }, { deadline: Date.now() + deadlineMs, metadata: this.#md });
  }

  queryInformation(req: MessageInitShape<typeof QueryInformationRequestSchema>, opts: { deadlineMs?: number; requestId?: string; signal?: AbortSignal } = {}) {
    return callUnary(this.gateway, LinkageGateway.method.queryInformation, req, {
      deadline: Date.now() + (opts.deadlineMs ?? 10_000),
      metadata: { ...this.#md, ...(opts.requestId ? { 'x-request-id': opts.requestId } : {}) },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  reportWrongBinding(code: string, sinceMs?: number, deadlineMs = 10_000) {
    return callUnary(
      this.gateway,
      LinkageGateway.method.reportWrongBinding,
      { code, ...(sinceMs !== undefined ? { since: timestampFromMs(sinceMs) } : {}) },
      { deadline: Date.now() + deadlineMs, metadata: this.#md },
    );
  }

  /** A record and its inclusion proof (GetRecordProof). */
  recordProof(recordId: string, deadlineMs = 10_000) {
    return callUnary(this.records, AccessRecords.method.getRecordProof, { recordId }, { deadline: Date.now() + deadlineMs, metadata: this.#md });
  }

  /** Opens a bulk issuance stream. */
  issueStream(deadlineMs = 600_000): ClientDuplexStream<IssueCodesRequest, IssueCodesResponse> {
    const fn = (this.gateway as unknown as Record<string, Function>)['issueCodes']!;
    return fn.call(this.gateway, this.#metadata(), { deadline: Date.now() + deadlineMs });
  }

  /** Issues codes for all numbers through one stream, in batches; resolves with one result per number. */
  async issueBulk(numbers: readonly string[], batch = 1000): Promise<IssueCodesResponse['results']> {
    const call = this.issueStream();
    const out: IssueCodesResponse['results'] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: IssueCodesResponse) => {
        for (const x of r.results) out.push(x);
      });
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    for (let i = 0; i < numbers.length; i += batch) {
      const ok = call.write(create(IssueCodesRequestSchema, { personalNumbers: numbers.slice(i, i + batch) }));
      if (!ok) await new Promise((r) => call.once('drain', r));
    }
    call.end();
    await done;
    return out;
  }

  /** Opens a ListAccessRecords stream (the records arrive as 'data' events). */
  recordsStream(req: MessageInitShape<typeof ListSchema>, deadlineMs = 10_000): ClientReadableStream<AccessRecord> {
    const fn = (this.records as unknown as Record<string, Function>)['listAccessRecords']!;
    return fn.call(this.records, create(ListAccessRecordsRequestSchema, req), this.#metadata(), { deadline: Date.now() + deadlineMs });
  }

  listRecords(req: MessageInitShape<typeof ListSchema>, deadlineMs = 10_000): Promise<AccessRecord[]> {
    const call = this.recordsStream(req, deadlineMs);
    const out: AccessRecord[] = [];
    return new Promise((resolve, reject) => {
      call.on('data', (r: AccessRecord) => out.push(r));
      call.on('end', () => resolve(out));
      call.on('error', reject);
    });
  }

  close(): void {
    this.gateway.close();
    this.records.close();
  }
}
