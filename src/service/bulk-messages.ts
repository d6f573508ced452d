/**
 * IssueCodes messages kept as bytes, so a bulk message of 10,000 numbers costs the event loop no JS object
 * per number on the way in or out (docs/adr/0105-bulk-in-one-task.md):
 *
 *  - `PackedIssueCodesRequest`: a request as received, scanned (it parses, and holds `count` numbers) but not
 *    decoded; the bulk task reads the numbers from its bytes on a worker thread.
 *  - `EncodedIssueCodesResponse`: a response already encoded by the bulk task; the server writes its bytes as
 *    they are.
 *
 * Both are still the protobuf-es messages they stand for: reading a field (`personalNumbers`, `results`…)
 * decodes the bytes with protobuf-es on first use, so code that does not know about them sees the same message.
 */
import { fromBinary } from '@bufbuild/protobuf';
import {
  IssueCodesRequestSchema,
  IssueCodesResponseSchema,
  type IssueCodeResult,
  type IssueCodesRequest,
  type IssueCodesResponse,
} from '../gen/linkage/v1/gateway_pb.js';

/** A message whose wire bytes are already known: a serializer writes `encoded` instead of encoding it again. */
export interface PreEncoded {
  readonly encoded: Uint8Array;
}

export function isPreEncoded(m: unknown): m is PreEncoded {
  return m instanceof EncodedIssueCodesResponse;
}

export class PackedIssueCodesRequest implements IssueCodesRequest {
  readonly $typeName = 'linkage.v1.IssueCodesRequest' as const;
  #decoded: IssueCodesRequest | undefined;

  /** `bytes`: the request as received, which must parse (the deserializer scanned it) with `count` numbers. */
  constructor(
    readonly bytes: Uint8Array,
    readonly count: number,
  ) {}

  get personalNumbers(): string[] {
    return this.#message().personalNumbers;
  }

  set personalNumbers(v: string[]) {
    this.#message().personalNumbers = v;
  }

  #message(): IssueCodesRequest {
    return (this.#decoded ??= fromBinary(IssueCodesRequestSchema, this.bytes));
  }
}

export class EncodedIssueCodesResponse implements IssueCodesResponse, PreEncoded {
  readonly $typeName = 'linkage.v1.IssueCodesResponse' as const;
  #decoded: IssueCodesResponse | undefined;

  constructor(readonly encoded: Uint8Array) {}

  get offset(): bigint {
    return this.#message().offset;
  }

  get results(): IssueCodeResult[] {
    return this.#message().results;
  }

  get recordId(): string {
    return this.#message().recordId;
  }

  #message(): IssueCodesResponse {
    return (this.#decoded ??= fromBinary(IssueCodesResponseSchema, this.encoded));
  }
}

/** The number of personal numbers in a request, without decoding a packed one. */
export function numberCount(req: IssueCodesRequest): number {
  return req instanceof PackedIssueCodesRequest ? req.count : req.personalNumbers.length;
}
