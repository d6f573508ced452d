/**
 * The gateway's calls to providing agencies: one grpc-js client per provider address, over mTLS with the
 * gateway's own certificate, with the caller's deadline capped by configuration. The provider's server
 * certificate must carry the common name of its registry entry, not merely come from the same CA: a wrong
 * address never sends a provider's code to another agency. (The registry's fingerprint pins are those of the
 * agency's client certificate, so they are not applied to its server.) The provider's status becomes
 * one of a few outcomes; its message is never relayed (it might name personal data).
 */
import { status, type Client, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { InformationProvider } from '../gen/linkage/v1/provider_pb.js';
import { clientOptionsFor, PROVIDER_CLIENT_OPTIONS } from '../grpc/channel-options.js';
import { callUnary, makeClient } from '../grpc/generic-client.js';
import { credentialsFrom, type TlsFiles } from '../grpc/tls.js';
import type { ExpectedPeer, ProvideCall, Providers, ProvideResult } from '../service/ports.js';
import { traceMetadata } from '../tracing/trace-metadata.js';

export class ProviderClients implements Providers {
  readonly #pem: { ca: Buffer; key: Buffer; cert: Buffer };
  /** One client per address and expected peer (a policy reload can change either). */
  readonly #clients = new Map<string, Client>();

  constructor(files: TlsFiles) {
    this.#pem = { ca: readFileSync(files.ca), key: readFileSync(files.key), cert: readFileSync(files.cert) };
  }

  #client(address: string, peer: ExpectedPeer): Client {
    const key = `${address}\0${peer.commonName}`;
    let c = this.#clients.get(key);
    if (!c) {
      // A restarted provider is reachable again within seconds (capped reconnect backoff), and calls fail fast
      // while it is down.
      c = makeClient(InformationProvider, address, credentialsFrom(this.#pem, peer), clientOptionsFor(address, PROVIDER_CLIENT_OPTIONS));
      this.#clients.set(key, c);
    }
    return c;
  }

  async provide(p: ProvideCall): Promise<ProvideResult> {
    try {
      const res = await callUnary(
        this.#client(p.address, p.peer),
        InformationProvider.method.provide,
        { code: p.code, requester: p.requester, procedure: p.procedure, item: p.item, recordId: p.recordId, legalBasisRow: p.legalBasisRow },
        { deadline: p.deadline, ...(p.signal ? { signal: p.signal } : {}), ...(p.trace?.traceparent ? { metadata: traceMetadata(p.trace) } : {}) },
      );
      return { kind: 'provided', payload: res.payload, contentType: res.contentType };
    } catch (e) {
      const code = (e as ServiceError).code;
      if (code === status.NOT_FOUND) return { kind: 'not-found' };
      if (code === status.DEADLINE_EXCEEDED) return { kind: 'failed', code: 'DEADLINE_EXCEEDED', grpcStatus: code };
      if (code === status.UNAVAILABLE || code === status.CANCELLED) return { kind: 'failed', code: 'UNAVAILABLE', grpcStatus: code };
      return { kind: 'failed', code: 'INTERNAL', grpcStatus: typeof code === 'number' ? code : status.UNKNOWN };
    }
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}
