/**
 * The gateway's calls to providing agencies: one grpc-js client per provider address, over mTLS with the
 * gateway's own certificate, with the caller's deadline capped by configuration. The provider's status becomes
 * one of a few outcomes; its message is never relayed (it might name personal data).
 */
import { status, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { InformationProvider } from '../gen/linkage/v1/provider_pb.js';
import { clientOptionsFor } from '../grpc/channel-options.js';
import { callUnary, makeClient } from '../grpc/generic-client.js';

export interface ProvideCall {
  readonly address: string;
  readonly code: string;
  readonly requester: string;
  readonly procedure: string;
  readonly item: string;
  readonly recordId: string;
  readonly legalBasisRow: string;
  /** Absolute deadline, ms since the epoch. */
  readonly deadline: number;
}

export type ProvideResult =
  | { kind: 'provided'; payload: Uint8Array; contentType: string }
  | { kind: 'not-found' }
  | { kind: 'failed'; code: 'UNAVAILABLE' | 'DEADLINE_EXCEEDED' | 'INTERNAL'; grpcStatus: number };

export class ProviderClients {
  readonly #creds: ChannelCredentials;
  readonly #clients = new Map<string, Client>();

  constructor(creds: ChannelCredentials) {
    this.#creds = creds;
  }

  #client(address: string): Client {
    let c = this.#clients.get(address);
    if (!c) {
      c = makeClient(InformationProvider, address, this.#creds, clientOptionsFor(address));
      this.#clients.set(address, c);
    }
    return c;
  }

  async provide(p: ProvideCall): Promise<ProvideResult> {
    try {
      const res = await callUnary(
        this.#client(p.address),
        InformationProvider.method.provide,
        { code: p.code, requester: p.requester, procedure: p.procedure, item: p.item, recordId: p.recordId, legalBasisRow: p.legalBasisRow },
        { deadline: p.deadline },
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
