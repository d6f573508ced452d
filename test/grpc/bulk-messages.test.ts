/**
 * The server's IssueCodes messages in bytes (service-definition.ts, service/bulk-messages.ts): a request is
 * scanned, not decoded, yet reads as the protobuf-es message; garbage is Malformed under the same type name; a
 * pre-encoded response is written as its bytes and reads as the message they encode.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { Malformed, messageBytes, serverDefinition, clientDefinition } from '../../src/grpc/service-definition.js';
import { IssueCodeResultSchema, IssueCodesRequestSchema, IssueCodesResponseSchema, LinkageGateway } from '../../src/gen/linkage/v1/gateway_pb.js';
import { EncodedIssueCodesResponse, numberCount, PackedIssueCodesRequest } from '../../src/service/bulk-messages.js';
import { population } from '../helpers/population.js';

const server = serverDefinition(LinkageGateway).issueCodes!;
const client = clientDefinition(LinkageGateway).issueCodes!;

describe('IssueCodes messages on the server', () => {
  it('hands a request on scanned, counting its numbers, and decodes it only when read', () => {
    const numbers = [...population(50, 21), '', 'x'];
    const bytes = Buffer.from(toBinary(IssueCodesRequestSchema, create(IssueCodesRequestSchema, { personalNumbers: numbers })));
    const req = server.requestDeserialize(bytes);
    expect(req).toBeInstanceOf(PackedIssueCodesRequest);
    expect(numberCount(req as PackedIssueCodesRequest)).toBe(52);
    expect(messageBytes(req)).toBe(bytes.length);
    expect((req as PackedIssueCodesRequest).personalNumbers).toEqual(numbers);
    // What a client sends is what the server scans.
    expect(Buffer.from(client.requestSerialize(create(IssueCodesRequestSchema, { personalNumbers: numbers }))).equals(bytes)).toBe(true);
  });

  it('makes garbage Malformed with the request type name, like every other method', () => {
    const bad = server.requestDeserialize(Buffer.from([0x0a, 0x05, 0x31]));
    expect(bad).toBeInstanceOf(Malformed);
    expect((bad as Malformed).typeName).toBe('linkage.v1.IssueCodesRequest');
    expect(messageBytes(bad)).toBe(3);
  });

  it('writes a pre-encoded response as its bytes, which read back as the message', () => {
    const message = create(IssueCodesResponseSchema, {
      offset: 10_000n,
      results: [create(IssueCodeResultSchema, { code: '01ABCDEFGHJKMNPQRSTVWXYZ0123' }), create(IssueCodeResultSchema, { status: 3, error: 'a personal number has exactly 12 digits' })],
      recordId: '6K1GNYMWT14BHNZKMT5A9ZFT',
    });
    const bytes = toBinary(IssueCodesResponseSchema, message);
    const encoded = new EncodedIssueCodesResponse(bytes);
    const wire = server.responseSerialize(encoded);
    expect(wire.equals(Buffer.from(bytes))).toBe(true);
    expect(wire.buffer).toBe(bytes.buffer); // not copied
    expect(client.responseDeserialize(wire)).toEqual(message);
    expect(encoded.offset).toBe(10_000n);
    expect(encoded.recordId).toBe(message.recordId);
    expect(encoded.results).toEqual(message.results);
    // A response built the usual way is still encoded by protobuf-es.
    expect(server.responseSerialize(message).equals(Buffer.from(bytes))).toBe(true);
  });
});
