/**
 * What the two baselines share: a bare grpc-js server of LinkageGateway and AccessRecords with the gateway's
 * own service definitions (protobuf-es serializers), server options and mTLS certificates, that answers with
 * messages of the gateway's shapes and sizes, without codes, checks or records. It logs one JSON line
 * `{"msg":"baseline serving","address":…}` on stderr when bound, like the gateway's "gateway serving".
 *
 * Settings: LINKGW_DATA_DIR (the dev PKI in <dir>/pki) and LINKGW_LISTEN (default 127.0.0.1:0).
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  Server,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import { join } from 'node:path';
import {
  IssueCodeResponseSchema,
  IssueCodeResultSchema,
  IssueCodesResponseSchema,
  LinkageGateway,
  type IssueCodeRequest,
  type IssueCodeResponse,
  type IssueCodesRequest,
  type IssueCodesResponse,
  type QueryInformationRequest,
  type QueryInformationResponse,
} from '../../src/gen/linkage/v1/gateway_pb.js';
import { AccessRecords, AccessRecordSchema, Outcome, type AccessRecord, type ListAccessRecordsRequest } from '../../src/gen/linkage/v1/records_pb.js';
import { SERVER_OPTIONS } from '../../src/grpc/channel-options.js';
import { serverDefinition } from '../../src/grpc/service-definition.js';
import { serverCredentials } from '../../src/grpc/tls.js';
import { EncodedIssueCodesResponse, numberCount } from '../../src/service/bulk-messages.js';
import { pkiFiles, type PkiFiles } from '../../src/pki/dev-pki.js';

/** Same lengths as the gateway's: a 28-character code, a 24-character record id. */
export const CODE = '01ABCDEFGHJKMNPQRSTVWXYZ0123';
export const RECORD_ID = '6K1GNYMWT14BHNZKMT5A9ZFT';

export const ISSUE_RESPONSE: IssueCodeResponse = create(IssueCodeResponseSchema, { code: CODE, recordId: RECORD_ID });

/**
 * IssueCodes answers of the gateway's shape (a code per number, a record id), encoded once per message size:
 * only the offset differs between two answers of one size, so each answer is its offset field followed by the
 * cached rest, written as bytes (the server's serializer passes pre-encoded messages through). The request is
 * only scanned, as the gateway's is. The fastest echo of these messages grpc-js can serve.
 */
const bulkBodies = new Map<number, Buffer>();
export function bulkAnswer(count: number, offset: number): EncodedIssueCodesResponse {
  let body = bulkBodies.get(count);
  if (!body) {
    const full = create(IssueCodesResponseSchema, { results: Array.from({ length: count }, () => create(IssueCodeResultSchema, { code: CODE })), recordId: RECORD_ID });
    body = Buffer.from(toBinary(IssueCodesResponseSchema, full));
    if (bulkBodies.size > 64) bulkBodies.clear();
    bulkBodies.set(count, body);
  }
  if (offset === 0) return new EncodedIssueCodesResponse(body);
  const head = toBinary(IssueCodesResponseSchema, create(IssueCodesResponseSchema, { offset: BigInt(offset) }));
  const out = Buffer.allocUnsafe(head.length + body.length);
  out.set(head, 0);
  body.copy(out, head.length);
  return new EncodedIssueCodesResponse(out);
}

/** Records of the gateway's shape, as many as `n`. */
export function sampleRecords(n: number): AccessRecord[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) =>
    create(AccessRecordSchema, {
      recordId: RECORD_ID,
      requestedAt: timestampFromMs(now - i * 1000),
      providedAt: timestampFromMs(now - i * 1000 + 3),
      requester: 'welfare',
      provider: 'tax',
      procedure: 'welfare.public-assistance',
      legalBasisRow: 'B2-002',
      item: 'income',
      outcome: Outcome.PROVIDED,
      cursor: Buffer.from(`${now - i * 1000}.c3dx6jsmd135xacgq.${1000 + i}`).toString('base64url'),
    }),
  );
}

export type QueryHandler = (req: QueryInformationRequest) => Promise<QueryInformationResponse>;

export interface BaselineOptions {
  readonly name: string;
  readonly query: QueryHandler;
  readonly recordsPerList: number;
}

export function baselineSettings(): { pki: PkiFiles; listen: string } {
  const dataDir = process.env.LINKGW_DATA_DIR || './data';
  return { pki: pkiFiles(join(dataDir, 'pki')), listen: process.env.LINKGW_LISTEN || '127.0.0.1:0' };
}

export async function startBaseline(o: BaselineOptions): Promise<{ server: Server; address: string }> {
  const { pki, listen } = baselineSettings();
  const server = new Server(SERVER_OPTIONS);
  const records = sampleRecords(o.recordsPerList);
  server.addService(serverDefinition(LinkageGateway), {
    issueCode: (_call: ServerUnaryCall<IssueCodeRequest, IssueCodeResponse>, cb: sendUnaryData<IssueCodeResponse>) => cb(null, ISSUE_RESPONSE),
    issueCodes: (call: ServerDuplexStream<IssueCodesRequest, IssueCodesResponse>) => {
      let offset = 0;
      call.on('data', (req: IssueCodesRequest) => {
        const count = numberCount(req);
        call.write(bulkAnswer(count, offset));
        offset += count;
      });
      call.on('end', () => call.end());
    },
    queryInformation: (call: ServerUnaryCall<QueryInformationRequest, QueryInformationResponse>, cb: sendUnaryData<QueryInformationResponse>) => {
      o.query(call.request).then(
        (r) => cb(null, r),
        (e: { code?: number; details?: string }) => cb({ code: e.code ?? 13, details: e.details ?? 'relay failed' }),
      );
    },
  });
  server.addService(serverDefinition(AccessRecords), {
    listAccessRecords: (call: ServerWritableStream<ListAccessRecordsRequest, AccessRecord>) => {
      for (const r of records) call.write(r);
      call.end();
    },
  });
  const creds = serverCredentials({ ca: pki.caCert, cert: pki.gatewayCert, key: pki.gatewayKey });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(listen, creds, (e, p) => (e ? reject(e) : resolve(p))));
  const address = `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;
  const stop = () => {
    const t = setTimeout(() => process.exit(0), 2000);
    server.tryShutdown(() => {
      clearTimeout(t);
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stderr.write(JSON.stringify({ level: 'info', msg: 'baseline serving', baseline: o.name, address }) + '\n');
  return { server, address };
}

export function recordsPerList(): number {
  const n = Number(process.env.BENCH_RECORDS_PER_LIST ?? 4);
  return Number.isInteger(n) && n >= 0 ? n : 4;
}
