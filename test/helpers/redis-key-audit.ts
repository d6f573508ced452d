/**
 * The test run's Redis, audited: a TCP proxy in front of the real Redis through which every Redis client of
 * the run connects (tests, in-process gateways and `linkgw serve` children get its URL). It passes bytes
 * through unchanged and reads a copy of what clients send: each command's keys (found from the server's own
 * COMMAND table, plus EVAL-style numkeys), so the run can show that it touched no key outside its prefix,
 * whatever else other runs on the same Redis are doing at the time. An HTTP endpoint reports what it saw.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';

export interface KeyAudit {
  /** Commands seen, and keys named by them. */
  commands: number;
  keys: number;
  /** Keys named outside the prefix: how many, and the first few. */
  outside: number;
  outsideSample: string[];
}

interface KeySpec {
  first: number;
  last: number;
  step: number;
  /** EVAL, EVALSHA, FCALL…: numkeys at index 2 (1-based), the keys after it. */
  numkeys: boolean;
}

/** Parses the client side of RESP: arrays of bulk strings, across chunk boundaries. */
class CommandParser {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onCommand: (args: string[]) => void): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    for (;;) {
      const r = this.#one();
      if (!r) return;
      onCommand(r);
    }
  }

  /** One complete command off the buffer, or null (an incomplete one stays). Inline commands are skipped. */
  #one(): string[] | null {
    const b = this.#buf;
    if (b.length === 0) return null;
    let i = 0;
    const line = (): string | null => {
      const e = b.indexOf('\r\n', i);
      if (e < 0) return null;
      const s = b.toString('latin1', i, e);
      i = e + 2;
      return s;
    };
    const head = line();
    if (head === null) return null;
    if (head[0] !== '*') {
      this.#buf = b.subarray(i);
      return [];
    }
    const n = Number(head.slice(1));
    const args: string[] = [];
    for (let k = 0; k < n; k++) {
      const len = line();
      if (len === null) return null;
      const size = Number(len.slice(1));
      if (b.length < i + size + 2) return null;
      args.push(b.toString('latin1', i, i + size));
      i += size + 2;
    }
    this.#buf = b.subarray(i);
    return args;
  }
}

export class RedisKeyAudit {
  readonly #prefix: string;
  readonly #upstream: { host: string; port: number };
  readonly #specs = new Map<string, KeySpec | null>();
  readonly #server: Server;
  readonly #http: HttpServer;
  readonly #sockets = new Set<Socket>();
  readonly audit: KeyAudit = { commands: 0, keys: 0, outside: 0, outsideSample: [] };
  port = 0;
  httpPort = 0;

  constructor(prefix: string, upstream: { host: string; port: number }) {
    this.#prefix = prefix;
    this.#upstream = upstream;
    this.#server = createServer((client) => {
      const up = tcpConnect(this.#upstream.port, this.#upstream.host);
      this.#sockets.add(client).add(up);
      const parser = new CommandParser();
      client.on('data', (chunk: Buffer) => {
        parser.push(chunk, (args) => this.#see(args));
        if (!up.write(chunk)) client.pause();
      });
      up.on('drain', () => client.resume());
      up.pipe(client);
      const end = () => {
        this.#sockets.delete(client);
        this.#sockets.delete(up);
        client.destroy();
        up.destroy();
      };
      client.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
    this.#http = createHttpServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(this.audit));
    });
  }

  /** Loads the server's command table, then listens (proxy and report) on free loopback ports. */
  async start(): Promise<void> {
    const r = new Redis({ ...this.#upstream, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    try {
      await r.connect().catch((e: Error) => {
        throw new Error(`the tests need Redis at ${this.#upstream.host}:${this.#upstream.port} (or LINKGW_TEST_REDIS_ADDR): ${e.message}`);
      });
      const table = (await r.call('COMMAND')) as [string, number, string[], number, number, number][];
      for (const [name, , flags, first, last, step] of table)
        this.#specs.set(name.toLowerCase(), flags.includes('movablekeys') ? { first: 0, last: 0, step: 0, numkeys: true } : first > 0 ? { first, last, step, numkeys: false } : null);
    } finally {
      r.disconnect();
    }
    await new Promise<void>((ok) => this.#server.listen(0, '127.0.0.1', ok));
    this.port = (this.#server.address() as { port: number }).port;
    await new Promise<void>((ok) => this.#http.listen(0, '127.0.0.1', ok));
    this.httpPort = (this.#http.address() as { port: number }).port;
  }

  #see(args: string[]): void {
    if (args.length === 0) return;
    this.audit.commands++;
    const name = args[0]!.toLowerCase();
    const spec = this.#specs.get(name);
    const keys: string[] = [];
    if (spec?.numkeys) {
      // EVAL script numkeys key… arg…, FCALL function numkeys key…; other movable-key commands are not used here.
      if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(name)) keys.push(...args.slice(3, 3 + Number(args[2])));
    } else if (spec) {
      const last = spec.last < 0 ? args.length + spec.last : spec.last;
      for (let i = spec.first; i <= last && i < args.length; i += spec.step) keys.push(args[i]!);
    }
    for (const k of keys) {
      this.audit.keys++;
      if (k.startsWith(this.#prefix)) continue;
      this.audit.outside++;
      if (this.audit.outsideSample.length < 20) this.audit.outsideSample.push(`${name} ${k}`);
    }
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all([new Promise((r) => this.#server.close(r)), new Promise((r) => this.#http.close(r))]);
  }
}
