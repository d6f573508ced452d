/**
 * Issue 8, finding 1: an agency that opens IssueCodes streams, writes large messages and never reads its
 * answers must not make the gateway hold them without bound. The gateway runs as its own process with a
 * small heap (as a crash would show); its resident memory is sampled from /proc while the flood runs, and
 * another agency's calls must succeed meanwhile.
 *
 * The bound asserted: the gateway's RSS grows by less than 120 MiB over its idle size, with 8 flooding
 * streams (the agency's stream cap) on their own connections pushing 190 kB or 4 MB messages for 6 s.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { IssueCodesRequestSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { grpcFrame, grpcRequest, rawSession } from '../helpers/raw-h2.js';
import { killServed, serve } from '../helpers/serve-process.js';

afterAll(killServed);

const BOUND_MIB = 120;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

describe('unread bulk streams', () => {
  it(`cost the gateway less than ${BOUND_MIB} MiB and no other agency's calls`, async () => {
    const dataDir = tempDir('linkgw-flood-');
    const gw = await serve({ LINKGW_DATA_DIR: dataDir, NODE_OPTIONS: '--max-old-space-size=192' });
    const pid = gw.child.pid!;
    const tax = new AgencyClient({ address: gw.address, agency: 'tax', pkiDir: `${dataDir}/pki` });
    try {
      // Warm up (the connections and their TLS sessions, a few calls), then take the idle size.
      const sessions = await Promise.all(Array.from({ length: 8 }, () => rawSession(gw.address, dataDir, 'pension')));
      for (let i = 0; i < 20; i++) await tax.issueCode(population(1, 70 + i)[0]!);
      await sleep(500);
      const idle = rssMiB(pid);
      // Half the streams send 10,000 strings of 17 characters (about 190 kB, under IssueCodes' receive limit,
      // every item invalid); the other half 10,000 strings of 400 (4 MB, the server-wide message limit).
      const invalid = (len: number) => grpcFrame(toBinary(IssueCodesRequestSchema, create(IssueCodesRequestSchema, { personalNumbers: Array.from({ length: 10_000 }, (_, i) => String(i).padStart(len, '7')) })));
      const messages = [invalid(17), invalid(400)];
      let peak = idle;
      let written = 0;
      const until = Date.now() + 6000;
      const floods = sessions.map(async (s, i) => {
        const message = messages[i % 2]!;
        const req = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCodes');
        req.pause(); // never read the answers
        while (Date.now() < until && !req.destroyed) {
          if (req.write(message)) written++;
          else await Promise.race([new Promise((r) => req.once('drain', r)), sleep(200)]);
        }
      });
      const sampler = (async () => {
        while (Date.now() < until) {
          peak = Math.max(peak, rssMiB(pid));
          await sleep(100);
        }
      })();
      // Another agency is served all along.
      const others = Promise.allSettled(Array.from({ length: 20 }, (_, i) => sleep(i * 200).then(() => tax.issueCode(population(1, 80 + i)[0]!))));
      await Promise.all([...floods, sampler]);
      const results = await others;
      expect(results.map((r) => r.status)).toEqual(Array(20).fill('fulfilled'));
      expect(gw.child.exitCode, gw.log()).toBeNull();
      console.log(`flood: idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, ${written} messages`);
      expect(peak - idle, `idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, ${written} messages accepted by the client`).toBeLessThan(BOUND_MIB);
      for (const s of sessions) s.destroy();
    } finally {
      tax.close();
    }
  }, 60_000);
});
