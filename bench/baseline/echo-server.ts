/**
 * Baseline: a bare grpc-js echo server with the gateway's services, message shapes and mTLS. Every call is
 * answered at once with a prebuilt message of the gateway's size (QueryInformation: a synthetic provider
 * payload), so it measures what grpc-js, TLS and serialization alone cost.
 *
 *   LINKGW_DATA_DIR=<dir with pki/> node --import tsx bench/baseline/echo-server.ts
 */
import { create } from '@bufbuild/protobuf';
import { QueryInformationResponseSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { syntheticAnswer } from '../../src/providers/synthetic-data.js';
import { RECORD_ID, recordsPerList, startBaseline } from './common.js';

// A payload as the simulated tax office sends it (any enrolled code gives one of the same shape).
let answer = null;
for (let i = 0; !answer; i++) answer = syntheticAnswer('tax', `ECHO${i}`, 'income');
const response = create(QueryInformationResponseSchema, { payload: answer.payload, contentType: answer.contentType, recordId: RECORD_ID, legalBasisRow: 'B2-002' });

await startBaseline({ name: 'echo', query: async () => response, recordsPerList: recordsPerList() });
