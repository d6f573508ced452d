/**
 * The gateway sends a provider's code only to that provider: the server at the provider's address must present
 * a certificate with the provider's common name, not just any certificate of the same CA that is valid for the
 * host name (in the dev PKI every agency's certificate is valid for localhost).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ensureDevPki, pkiFiles } from '../../src/pki/dev-pki.js';
import { ProviderClients } from '../../src/providers/provider-client.js';
import type { ProvideCall } from '../../src/service/ports.js';
import { startSimulatedProviders, type SimulatedProviders } from '../../src/providers/simulated-provider.js';
import { tempDir } from '../helpers/gateway-harness.js';

let sim: SimulatedProviders;
let clients: ProviderClients;
const received: string[] = [];

beforeAll(async () => {
  const dir = join(tempDir(), 'pki');
  await ensureDevPki(dir, new Map([['tax', 'tax'], ['employment', 'employment']]));
  const f = pkiFiles(dir);
  sim = await startSimulatedProviders(
    ['tax', 'employment'].map((id) => ({ id, cert: f.agencyCert(id), key: f.agencyKey(id), listen: '127.0.0.1:0' })),
    { caCert: f.caCert, onRequest: (agency) => void received.push(agency) },
  );
  clients = new ProviderClients({ ca: f.caCert, cert: f.gatewayCert, key: f.gatewayKey });
});
afterAll(async () => {
  clients?.close();
  await sim?.close();
});

const call = (address: string, commonName: string): ProvideCall => ({
  provider: commonName,
  address,
  peer: { commonName },
  code: '0'.repeat(28),
  requester: 'welfare',
  procedure: 'welfare.public-assistance',
  item: 'income',
  recordId: 'R1',
  legalBasisRow: 'B2-002',
  deadline: Date.now() + 5000,
});

describe('provider identity', () => {
  it('calls the provider whose certificate names it', async () => {
    const r = await clients.provide(call(sim.addresses.get('tax')!, 'tax'));
    expect(['provided', 'not-found']).toContain(r.kind);
    expect(received).toEqual(['tax']);
  });

  it('refuses a server with another agency\'s certificate, before sending anything', async () => {
    received.length = 0;
    // The registry says "tax at this address", but employment's server answers there.
    const r = await clients.provide(call(sim.addresses.get('employment')!, 'tax'));
    expect(r).toMatchObject({ kind: 'failed', code: 'UNAVAILABLE' });
    expect(received).toEqual([]);
  });
});
