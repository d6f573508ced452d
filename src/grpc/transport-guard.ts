/**
 * The transport guard: the first grpc-js server interceptor, for what only the transport level can do
 * (docs/adr/0009-transport-guard.md has the measurements behind each part):
 *
 *  - per-method receive limits, applied when a message's 5-byte length prefix arrives, before its body is
 *    buffered or decoded (grpc-js has one server-wide limit; IssueCodes' largest valid message is ~140 kB);
 *  - a read gate for request streams: unanswered request bytes are budgeted per stream and per agency, and
 *    while a budget is spent grpc-js is not asked to read, so HTTP/2 flow control stops the sender
 *    (`call.pause()` does not: grpc-js keeps decoding up to 16 messages into the paused stream's buffer);
 *  - a first-message timeout, so a stream that sends headers and nothing else (which no handler ever sees)
 *    ends after the idle timeout;
 *  - INVALID_ARGUMENT instead of grpc-js's INTERNAL for a request that cannot be decompressed or carries a
 *    malformed grpc-timeout (a caller's mistake, not the gateway's), with fixed details that echo nothing;
 *  - a budget of streams reset by the client (RST_STREAM before the call's status), per connection and per
 *    agency: HTTP/2 Rapid Reset (HEADERS, DATA, RST_STREAM at once, on connection after connection) makes the
 *    gateway start calls nobody waits for; a connection that spends its budget, or any connection of an agency
 *    that has spent its own, is closed (GOAWAY ENHANCE_YOUR_CALM), so an abuser pays a TLS handshake for every
 *    few resets; answered calls earn resets back, so a client whose calls sometimes time out is left alone.
 *    Only a stream's close looks at it: one number compared when the call ends;
 *  - the peer's identity parsed once per connection (a certificate cannot change on a TLS session) instead
 *    of getPeerCertificate on every call (~20 µs each, more in GC).
 *
 * It relies on grpc-js 1.14 internals of the base call (the first interceptor receives it): `stream`,
 * `decoder.maxReadMessageLength`, `maxReceiveMessageSize`. `transportGuardWorks` checks them on a real call;
 * tests pin each behaviour, so an upgrade that changes them fails loudly. An interceptor must never throw (it
 * runs inside the HTTP/2 'stream' event: an exception would leave the call hanging), so every part is guarded.
 */
import { Metadata, ServerInterceptingCall, status, type ServerInterceptingCallInterface, type ServerInterceptor, type StatusObject } from '@grpc/grpc-js';
import { constants, type Http2Session } from 'node:http2';
import { notify } from '../core/observer.js';
import type { RefusalObserver } from '../limits/refusals.js';
import type { Logger } from '../log/logger.js';
import { INSECURE_AGENCY_HEADER } from './identity.js';
import { peerOfSession, rememberPeer } from './peer.js';
import { messageBytes } from './service-definition.js';

/**
 * Resets a connection or an agency may make: `burst` at once, refilled at `burst / 10` per second and by one for
 * every stream that ends with its status. So the budget follows the share of calls reset, as Envoy's premature
 * reset check does: a client whose few calls time out among many answered ones never runs out, while one that
 * resets nearly everything (Rapid Reset) does within `burst` resets.
 */
class ResetBudget {
  #tokens: number;
  #at: number;
  constructor(private readonly burst: number) {
    this.#tokens = burst;
    this.#at = Date.now();
  }
  /** Takes one reset; false when the budget is spent. */
  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.burst) / 10_000);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
  /** A stream that ended with its status. */
  credit(): void {
    if (this.#tokens < this.burst) this.#tokens += 1;
  }
}

/** Unanswered request bytes of one agency across its streams; wakes waiting streams as bytes come back. */
class AgencyBudget {
  held = 0;
  readonly waiting = new Set<StreamBudget>();
  constructor(readonly limit: number) {}
  get open(): boolean {
    return this.held < this.limit;
  }
  release(n: number): void {
    this.held -= n;
    for (const s of this.waiting) {
      if (!this.open) break;
      s.wake();
    }
  }
}

/** One stream's unanswered request bytes; `startRead` is forwarded only while it and its agency are under budget. */
class StreamBudget {
  #held = 0;
  #pending: (() => void) | undefined;
  /** Sizes of requests not answered yet, oldest first (IssueCodes and reflection answer one for one, in order). */
  readonly #unanswered: number[] = [];
  #closed = false;

  constructor(
    private readonly agency: AgencyBudget,
    private readonly limit: number,
  ) {}

  gate(read: () => void): void {
    if (this.#closed) return;
    if (this.#held < this.limit && this.agency.open) return read();
    this.#pending = read;
    this.agency.waiting.add(this);
  }

  received(n: number): void {
    this.#held += n;
    this.agency.held += n;
    this.#unanswered.push(n);
  }

  answered(): void {
    const n = this.#unanswered.shift();
    if (n === undefined) return;
    this.#held -= n;
    this.agency.release(n);
    this.wake();
  }

  wake(): void {
    const read = this.#pending;
    if (!read || this.#held >= this.limit || !this.agency.open) return;
    this.#pending = undefined;
    this.agency.waiting.delete(this);
    read();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = undefined;
    this.agency.waiting.delete(this);
    const held = this.#held;
    this.#held = 0;
    this.#unanswered.length = 0;
    this.agency.release(held);
  }
}

export interface TransportGuardOptions {
  /** Largest request message per method path; methods not listed keep the server-wide limit. */
  readonly receiveLimits: ReadonlyMap<string, number>;
  /** Unanswered request bytes one stream may hold. */
  readonly streamBudgetBytes: number;
  /** Unanswered request bytes one agency may hold across its streams. */
  readonly agencyBudgetBytes: number;
  /** A call whose first message has not arrived after this long is ended (DEADLINE_EXCEEDED). */
  readonly firstMessageTimeoutMs: number;
  /** Streams one connection may reset (burst; refilled at a tenth of it per second). */
  readonly resetsPerConnection: number;
  /** Streams one agency may reset across its connections (burst; refilled at a tenth of it per second). */
  readonly resetsPerAgency: number;
  readonly log: Logger;
  readonly observer?: RefusalObserver;
}

/** grpc-js's own statuses that describe a caller's mistake: sent as INVALID_ARGUMENT with fixed details. */
const CALLER_MISTAKES: readonly { prefix: string; details: string }[] = [
  { prefix: 'Invalid grpc-timeout value', details: 'the grpc-timeout header is malformed' },
  { prefix: 'Failed to decompress message', details: 'the request message could not be decompressed' },
  { prefix: 'Error deserializing request', details: 'the request message is malformed' },
];

interface BaseCall {
  readonly stream?: { session?: Http2Session; rstCode?: number; once(ev: 'close', l: () => void): unknown };
  decoder?: { maxReadMessageLength?: number };
  maxReceiveMessageSize?: number;
  sendStatus(s: Pick<StatusObject, 'code' | 'details'> & { metadata?: Metadata | null }): void;
  startRead(): void;
}

function isBaseCall(c: unknown): c is BaseCall {
  const b = c as BaseCall;
  return typeof b.startRead === 'function' && typeof b.sendStatus === 'function' && b.stream !== undefined && typeof b.decoder?.maxReadMessageLength === 'number';
}

export interface TransportGuard {
  readonly interceptor: ServerInterceptor;
  /** Whether the guard has seen grpc-js's internals as it expects, on at least one call (false: degraded). */
  works(): boolean | undefined;
}

export function transportGuard(o: TransportGuardOptions): TransportGuard {
  const agencies = new Map<string, AgencyBudget>();
  const connectionResets = new WeakMap<Http2Session, ResetBudget>();
  const agencyResets = new Map<string, ResetBudget>();
  let resetLogged = 0;
  let works: boolean | undefined;
  /** A stream the client reset (not one ended by its status, nor one of a connection that went away). */
  const onReset = (session: Http2Session | undefined, agencyKey: string) => {
    if (!session || session.destroyed || session.closed) return;
    const now = Date.now();
    let c = connectionResets.get(session);
    if (!c) connectionResets.set(session, (c = new ResetBudget(o.resetsPerConnection)));
    let a = agencyResets.get(agencyKey);
    if (!a) agencyResets.set(agencyKey, (a = new ResetBudget(o.resetsPerAgency)));
    const connectionOk = c.take(now);
    const agencyOk = a.take(now);
    if (connectionOk && agencyOk) return;
    notify(o.observer, (x) => x.refused('stream_resets'));
    if (now - resetLogged > 10_000) {
      resetLogged = now;
      o.log.warn('connection closed: streams reset over budget (HTTP/2 rapid reset)', { agency: agencyKey, budget: connectionOk ? 'agency' : 'connection', peer: session.socket?.remoteAddress });
    }
    // Not inside the stream's close (an nghttp2 callback): on the next turn, GOAWAY then close.
    setImmediate(() => {
      if (session.destroyed) return;
      try {
        session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      } catch {
        // already going away
      }
      session.destroy();
    });
  };
  /** Credits the budgets that exist (made by a first reset): two lookups per call once any stream was reset. */
  const onAnswered = (session: Http2Session, agencyKey: string) => {
    connectionResets.get(session)?.credit();
    agencyResets.get(agencyKey)?.credit();
  };
  const agencyBudget = (key: string) => {
    let a = agencies.get(key);
    if (!a) agencies.set(key, (a = new AgencyBudget(o.agencyBudgetBytes)));
    return a;
  };
  const degrade = (why: string, err?: unknown) => {
    if (works === false) return;
    works = false;
    o.log.error('transport guard disabled: grpc-js internals are not as expected; limits below the handlers do not apply', { why, err });
  };

  const interceptor: ServerInterceptor = (method, next) => {
    try {
      if (!isBaseCall(next)) {
        degrade('the first interceptor did not receive the base call');
        return new ServerInterceptingCall(next);
      }
      works ??= true;
      const base = next as unknown as BaseCall;
      // Per-method receive limit: refused when the length prefix arrives (RESOURCE_EXHAUSTED).
      const limit = o.receiveLimits.get(method.path);
      if (limit !== undefined) {
        base.decoder!.maxReadMessageLength = limit;
        base.maxReceiveMessageSize = limit;
      }
      // grpc-js's INTERNAL for a caller's mistake becomes INVALID_ARGUMENT; a limit refusal is counted.
      const send = base.sendStatus.bind(base);
      base.sendStatus = (s) => {
        try {
          if (s.code === status.INTERNAL && typeof s.details === 'string') {
            const fix = CALLER_MISTAKES.find((f) => s.details.startsWith(f.prefix));
            if (fix) return send({ ...s, code: status.INVALID_ARGUMENT, details: fix.details });
          }
          if (s.code === status.RESOURCE_EXHAUSTED && typeof s.details === 'string' && s.details.startsWith('Received message larger than max'))
            notify(o.observer, (x) => x.refused('message_too_large'));
        } catch {
          // fall through to the status as it was
        }
        send(s);
      };
      const peer = peerOfSession(base.stream!.session);
      let budget: StreamBudget | undefined;
      let firstMessage: NodeJS.Timeout | undefined = setTimeout(() => {
        firstMessage = undefined;
        notify(o.observer, (x) => x.refused('stream_idle'));
        call.sendStatus({ code: status.DEADLINE_EXCEEDED, details: `no request message within ${o.firstMessageTimeoutMs} ms: the gateway ended this idle stream` });
      }, o.firstMessageTimeoutMs);
      firstMessage.unref();
      const stream = base.stream!;
      // Node detaches a stream from its session when it closes: keep the session for the reset budget.
      const session = stream.session;
      const cleanup = () => {
        clearTimeout(firstMessage);
        firstMessage = undefined;
        budget?.close();
        // Non-zero: the stream ended by RST_STREAM, not by its status (grpc-js always sends one).
        if (stream.rstCode) onReset(session, peer?.commonName ?? '(unidentified)');
        else if (session && agencyResets.size !== 0) onAnswered(session, peer?.commonName ?? '(unidentified)');
      };
      base.stream!.once('close', cleanup);
      const call = new ServerInterceptingCall(base as unknown as ServerInterceptingCallInterface, {
        start: (start) =>
          start({
            onReceiveMetadata: (md, pass) => {
              try {
                rememberPeer(md, peer);
                if (method.requestStream) {
                  const insecure = md.get(INSECURE_AGENCY_HEADER)[0];
                  const key = peer?.commonName ?? (typeof insecure === 'string' ? `insecure:${insecure}` : '(unidentified)');
                  budget = new StreamBudget(agencyBudget(key), o.streamBudgetBytes);
                }
              } catch (err) {
                o.log.error('transport guard: metadata step failed', { err });
              }
              pass(md);
            },
            onReceiveMessage: (msg, pass) => {
              if (firstMessage) {
                clearTimeout(firstMessage);
                firstMessage = undefined;
              }
              budget?.received(messageBytes(msg));
              pass(msg);
            },
            onReceiveHalfClose: (pass) => {
              // A stream may end without a message (an empty bulk file): nothing is idle then.
              clearTimeout(firstMessage);
              firstMessage = undefined;
              pass();
            },
          }),
      });
      if (method.requestStream) {
        const read = call.startRead.bind(call);
        call.startRead = () => (budget ? budget.gate(read) : read());
        // A request counts as answered once its answer has been written to the HTTP/2 stream (the write's
        // callback), not when the handler hands it over: answers that the client does not read hold their
        // request's budget, so a stream that is not read stops being read.
        const sendMessage = call.sendMessage.bind(call);
        call.sendMessage = (msg: unknown, done: () => void) =>
          sendMessage(msg, () => {
            budget?.answered();
            done();
          });
      }
      return call;
    } catch (err) {
      degrade('the guard failed to wrap a call', err);
      return new ServerInterceptingCall(next);
    }
  };
  return { interceptor, works: () => works };
}
