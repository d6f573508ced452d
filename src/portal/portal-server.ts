/**
 * The citizen's disclosure portal: a web application served by the disclosure agency (its own process,
 * `linkgw portal`). It binds a signed-in person to the disclosure agency's code for them and shows the
 * person's records with their proofs; the browser, not the portal, verifies them (web/verify.ts) under the
 * verifier keys of the portal's configuration.
 *
 * HTTP surface (every answer has a deliberate status; no message names a number or a code):
 *   GET  /                 sign-in page, or the records page when signed in
 *   POST /signin/dev       LINKGW_PORTAL_DEV_SIGNIN=1 only: personal_number → IssueCode → session
 *   POST /signout
 *   GET  /api/config       trusted verifier keys, agency names, legal-basis texts of disclosable rows
 *   GET  /api/records      a page of the person's records (proto3 JSON, each with its proof)
 *   GET  /api/proof        one listed record again, for a proof that was pending
 *   GET  /api/checkpoints  the latest checkpoint of every log
 *   GET  /api/consistency  a consistency proof between two sizes of a log
 *   GET  /download         every record with its proof, JSON lines (what `linkgw records check-proof` reads)
 *   GET  /static/…         the page's scripts and style
 *   /enroll, /webauthn/…   passkeys (passkeys.ts), when configured
 *
 * Sessions are HttpOnly, Secure, SameSite=Strict `__Host-` cookies; state-changing requests need the
 * session's (or, before sign-in, the double-submit cookie's) CSRF token and a same-origin Origin header;
 * sign-in attempts are rate-limited per client and in total.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toJson } from '@bufbuild/protobuf';
import { timingSafeEqual } from 'node:crypto';
import { checkPersonalNumber } from '../core/personal-number.js';
import { SELF_INFORMATION_PROCEDURE, type LegalBasisTable } from '../core/legal-basis.js';
import type { AgencyRegistry } from '../core/agency-registry.js';
import { AccessRecordSchema, type AccessRecord } from '../gen/linkage/v1/records_pb.js';
import type { Logger } from '../log/logger.js';
import { errorPage, recordsPage, signInPage, texts, type Lang } from './pages.js';
import { grpcCodeOf, type DisclosureGateway } from './ports.js';
import { newToken, Sessions, type Session } from './sessions.js';
import { SignInLimiter } from './sign-in-limiter.js';

export interface PortalOptions {
  /** host:port to listen on (port 0: a free port). */
  readonly listen: string;
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly gateway: DisclosureGateway;
  /** Note verifier keys the browser trusts: the logs' (and witnesses') keys, from the portal's configuration. */
  readonly verifierKeys: readonly string[];
  /** The registry and legal-basis table in force (names and texts shown to the person). */
  policy(): { readonly registry: AgencyRegistry; readonly table: LegalBasisTable };
  readonly devSignIn: boolean;
  /** The origin browsers see (https://portal.example.jp); default: from the listen address. */
  readonly publicOrigin?: string;
  /** Where the compiled page scripts are (dist/portal/web). */
  readonly webDir?: string;
  readonly log: Logger;
  /** Extra routes (passkeys); tried before the portal's own. */
  readonly extensions?: readonly PortalExtension[];
  readonly signInLimits?: { perClient: number; total: number; windowMs: number };
}

/** A set of routes added to the portal (the passkey module), with the helpers it needs. */
export interface PortalExtension {
  readonly passkeys?: boolean;
  handle(req: IncomingMessage, res: ServerResponse, url: URL, ctx: PortalContext): Promise<boolean>;
}

export interface PortalContext {
  readonly origin: string;
  readonly sessions: Sessions;
  readonly gateway: DisclosureGateway;
  readonly log: Logger;
  lang(req: IncomingMessage, url: URL): Lang;
  /** Checks Origin and the CSRF token of a state-changing request; answers 403 itself when they fail. */
  checkPost(req: IncomingMessage, res: ServerResponse, token: string | undefined): boolean;
  /** Takes a sign-in attempt; answers 429 itself when over the limit. */
  takeAttempt(req: IncomingMessage, res: ServerResponse): boolean;
  /** Starts a session for this code and sets its cookie. */
  signIn(res: ServerResponse, code: string): Session;
  /** The CSRF token a page must send back: the session's, else the pre-session double-submit cookie's. */
  csrfToken(req: IncomingMessage, res: ServerResponse): string;
  json(res: ServerResponse, status: number, body: unknown): void;
  readBody(req: IncomingMessage): Promise<string>;
}

export interface RunningPortal {
  readonly url: string;
  readonly origin: string;
  readonly sessions: Sessions;
  close(): Promise<void>;
}

const SESSION_COOKIE = '__Host-linkgw-session';
const CSRF_COOKIE = '__Host-linkgw-csrf';
const LANG_COOKIE = '__Host-linkgw-lang';
const PAGE_SIZE = 50;
/** The agency the portal acts as (its certificate's). */
const DISCLOSURE = 'disclosure';
const DOWNLOAD_MAX_PAGES = 100;
const BODY_LIMIT = 16 * 1024;

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** The page's files: name → [path under webDir, content type]. Nothing else is served from disk. */
const STATIC: Record<string, [string, string]> = {
  'app.js': ['app.js', 'text/javascript; charset=utf-8'],
  'verify.js': ['verify.js', 'text/javascript; charset=utf-8'],
  'passkey.js': ['passkey.js', 'text/javascript; charset=utf-8'],
  'labels.js': ['labels.js', 'text/javascript; charset=utf-8'],
  'style.css': ['static/style.css', 'text/css; charset=utf-8'],
  'favicon.svg': ['static/favicon.svg', 'image/svg+xml'],
};

export function defaultWebDir(): string {
  return fileURLToPath(new URL('./web/', import.meta.url));
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

function cookie(name: string, value: string, o: { maxAge?: number; httpOnly?: boolean } = {}): string {
  return `${name}=${value}; Path=/; Secure; SameSite=Strict${o.httpOnly === false ? '' : '; HttpOnly'}${o.maxAge !== undefined ? `; Max-Age=${o.maxAge}` : ''}`;
}

function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function securityHeaders(res: ServerResponse, https: boolean): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` on the page's own form posts.
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
  if (https) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A gateway failure as the person's browser sees it: never the gateway's own message. */
function gatewayFailure(e: unknown): HttpError {
  const code = grpcCodeOf(e);
  // INVALID_ARGUMENT on a session's code: the code no longer decodes (keys withdrawn): sign in again.
  if (code === 3) return new HttpError(401, 'sign in again');
  if (code === 8) return new HttpError(503, 'the service is busy; try again shortly');
  return new HttpError(502, 'the record service is unavailable; try again later');
}

export async function startPortal(o: PortalOptions): Promise<RunningPortal> {
  const https = o.tls !== undefined;
  const webDir = o.webDir ?? defaultWebDir();
  const files = new Map<string, [Buffer, string]>();
  for (const [name, [path, type]] of Object.entries(STATIC)) {
    try {
      files.set(name, [readFileSync(join(webDir, path)), type]);
    } catch {
      if (name !== 'passkey.js' || o.extensions?.some((x) => x.passkeys)) throw new Error(`the portal's page file ${join(webDir, path)} is missing: run npm run build`);
    }
  }
  const sessions = new Sessions();
  const limiter = new SignInLimiter(o.signInLimits ?? { perClient: 10, total: 300, windowMs: 60_000 });
  const passkeys = o.extensions?.some((x) => x.passkeys) ?? false;
  let origin = o.publicOrigin ?? '';

  const langOf = (req: IncomingMessage, url: URL): Lang => {
    const q = url.searchParams.get('lang');
    if (q === 'en' || q === 'ja') return q;
    return cookies(req).get(LANG_COOKIE) === 'en' ? 'en' : 'ja';
  };

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(JSON.stringify(body));
  };

  const html = (res: ServerResponse, status: number, body: string) => {
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(body);
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      let n = 0;
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n > BODY_LIMIT) {
          reject(new HttpError(413, 'request too large'));
          req.destroy();
        } else parts.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
      req.on('error', reject);
    });

  const checkPost = (req: IncomingMessage, res: ServerResponse, token: string | undefined): boolean => {
    const s = sessions.get(cookies(req).get(SESSION_COOKIE));
    const expected = s ? s.csrf : cookies(req).get(CSRF_COOKIE);
    const o2 = req.headers.origin;
    const fromHere = o2 === origin || ((o2 === undefined || o2 === 'null') && req.headers['sec-fetch-site'] === 'same-origin');
    if (!fromHere || !sameToken(token, expected)) {
      json(res, 403, { error: 'the request did not come from this portal\u2019s page; reload it and try again' });
      return false;
    }
    return true;
  };

  const takeAttempt = (req: IncomingMessage, res: ServerResponse): boolean => {
    const wait = limiter.take(req.socket.remoteAddress ?? 'unknown');
    if (wait === 0) return true;
    res.setHeader('Retry-After', String(Math.ceil(wait / 1000)));
    json(res, 429, { error: 'too many sign-in attempts; try again later' });
    return false;
  };

  const signIn = (res: ServerResponse, code: string): Session => {
    const s = sessions.create(code);
    res.setHeader('Set-Cookie', [cookie(SESSION_COOKIE, s.id), cookie(CSRF_COOKIE, '', { maxAge: 0 })]);
    return s;
  };

  /** A pre-session CSRF token: the double-submit cookie, made when missing. */
  const preSessionCsrf = (req: IncomingMessage, res: ServerResponse): string => {
    let t = cookies(req).get(CSRF_COOKIE);
    if (!t || !/^[A-Za-z0-9_-]{43}$/.test(t)) {
      t = newToken();
      res.appendHeader('Set-Cookie', cookie(CSRF_COOKIE, t));
    }
    return t;
  };
  const csrfToken = (req: IncomingMessage, res: ServerResponse): string => sessions.get(cookies(req).get(SESSION_COOKIE))?.csrf ?? preSessionCsrf(req, res);

  const ctx: PortalContext = {
    get origin() {
      return origin;
    },
    sessions,
    gateway: o.gateway,
    log: o.log,
    lang: langOf,
    checkPost,
    takeAttempt,
    signIn,
    csrfToken,
    json,
    readBody,
  };

  const signInPageFor = (req: IncomingMessage, res: ServerResponse, lang: Lang, status: number, error?: string) =>
    html(res, status, signInPage({ lang, csrf: preSessionCsrf(req, res), devSignIn: o.devSignIn, passkeys, ...(error ? { error } : {}) }));

  const session = (req: IncomingMessage): Session => {
    const s = sessions.get(cookies(req).get(SESSION_COOKIE));
    if (!s) throw new HttpError(401, 'not signed in');
    return s;
  };

  const recordJson = (r: AccessRecord) => toJson(AccessRecordSchema, r);

  /** The (provider, item) pairs the disclosure agency may ask for the signed-in person. */
  const selfInformation = () =>
    o.policy()
      .table.rows.filter((r) => r.procedure === SELF_INFORMATION_PROCEDURE && r.requester === DISCLOSURE && !r.nonDisclosable)
      .flatMap((r) => [...r.items].map((item) => ({ row: r.id, provider: r.provider, item })));

  const config = () => {
    const { registry, table } = o.policy();
    return {
      selfInformation: selfInformation(),
      verifierKeys: o.verifierKeys,
      agencies: Object.fromEntries([...registry.agencies.values()].map((a) => [a.id, a.name])),
      // Only rows whose records may be shown: a non-disclosable row's very text would tell what it hides.
      legalBasis: Object.fromEntries(table.rows.filter((r) => !r.nonDisclosable).map((r) => [r.id, { procedure: r.procedure, basis: r.basis, ordinance: r.ordinance }])),
    };
  };

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const lang = langOf(req, url);
    if (url.searchParams.get('lang') === 'en' || url.searchParams.get('lang') === 'ja') res.appendHeader('Set-Cookie', cookie(LANG_COOKIE, lang, { maxAge: 365 * 86400 }));
    for (const x of o.extensions ?? []) if (await x.handle(req, res, url, ctx)) return;

    if (path.startsWith('/static/') && method === 'GET') {
      const f = files.get(path.slice('/static/'.length));
      if (!f) throw new HttpError(404, 'not found');
      res.setHeader('Content-Type', f[1]);
      res.setHeader('Cache-Control', 'no-cache');
      res.end(f[0]);
      return;
    }
    if (path === '/' && method === 'GET') {
      const s = sessions.get(cookies(req).get(SESSION_COOKIE));
      if (s) return html(res, 200, recordsPage({ lang, csrf: s.csrf }));
      return signInPageFor(req, res, lang, 200);
    }
    if (path === '/healthz' && method === 'GET') return json(res, 200, { ok: true });
    if (path === '/signin/dev' && method === 'POST') {
      if (!o.devSignIn) throw new HttpError(404, 'not found');
      const form = new URLSearchParams(await readBody(req));
      if (!checkPost(req, res, form.get('csrf') ?? undefined)) return;
      if (!takeAttempt(req, res)) return;
      const n = checkPersonalNumber((form.get('personal_number') ?? '').replace(/[\s-]/g, ''));
      if (!n.ok) return signInPageFor(req, res, lang, 400, lang === 'ja' ? '個人番号が正しくありません。12桁の数字を確かめてください。' : 'That is not a valid personal number. Check the 12 digits.');
      let code: string;
      try {
        code = await o.gateway.issueCode(form.get('personal_number')!.replace(/[\s-]/g, ''));
      } catch (e) {
        o.log.warn('sign-in: the gateway did not issue a code', { status: grpcCodeOf(e) });
        return html(res, 502, errorPage(lang, lang === 'ja' ? '記録のサービスに接続できません。しばらくしてからもう一度お試しください。' : 'The record service is unavailable. Try again later.'));
      }
      signIn(res, code);
      res.statusCode = 303;
      res.setHeader('Location', '/');
      res.end();
      return;
    }
    if (path === '/signout' && method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      if (!checkPost(req, res, form.get('csrf') ?? undefined)) return;
      sessions.end(cookies(req).get(SESSION_COOKIE));
      res.setHeader('Set-Cookie', cookie(SESSION_COOKIE, '', { maxAge: 0 }));
      res.statusCode = 303;
      res.setHeader('Location', '/');
      res.end();
      return;
    }
    if (path === '/api/self-information' && method === 'POST') {
      const s = session(req);
      const token = req.headers['x-csrf-token'];
      if (!checkPost(req, res, typeof token === 'string' ? token : undefined)) return;
      let b: { provider?: unknown; item?: unknown };
      try {
        b = JSON.parse(await readBody(req)) as typeof b;
      } catch {
        throw new HttpError(400, 'a JSON object is expected');
      }
      // Only the signed-in person (the session's code), only under the self-information rows.
      if (!selfInformation().some((x) => x.provider === b.provider && x.item === b.item)) throw new HttpError(400, 'not an item of self-information display');
      try {
        const r = await o.gateway.queryInformation({ code: s.code, provider: b.provider as string, procedure: SELF_INFORMATION_PROCEDURE, item: b.item as string });
        s.listed.add(r.recordId);
        const text = Buffer.from(r.payload).toString('utf8');
        let data: unknown = text;
        if (r.contentType === 'application/json')
          try {
            data = JSON.parse(text);
          } catch {
            data = text;
          }
        return json(res, 200, { recordId: r.recordId, contentType: r.contentType, data });
      } catch (e) {
        if (grpcCodeOf(e) === 5) return json(res, 200, { notFound: true });
        throw gatewayFailure(e);
      }
    }
    if (method !== 'GET') throw new HttpError(405, 'method not allowed');
    if (path === '/api/config') {
      session(req);
      return json(res, 200, config());
    }
    if (path === '/api/records') {
      const s = session(req);
      const token = url.searchParams.get('page_token') ?? '';
      if (token.length > 200 || !/^[A-Za-z0-9_=+/.-]*$/.test(token)) throw new HttpError(400, 'page_token: not a cursor of this list');
      let page: AccessRecord[];
      try {
        page = await o.gateway.listRecords({ code: s.code, pageSize: PAGE_SIZE, pageToken: token });
      } catch (e) {
        // With a cursor, INVALID_ARGUMENT is the cursor's (the code decoded on the first page).
        if (token && grpcCodeOf(e) === 3) throw new HttpError(400, 'page_token: not a cursor of this list');
        throw gatewayFailure(e);
      }
      if (s.listed.size < 1_000_000) for (const r of page) s.listed.add(r.recordId);
      return json(res, 200, { records: page.map(recordJson), more: page.length === PAGE_SIZE });
    }
    if (path === '/api/proof') {
      const s = session(req);
      const id = url.searchParams.get('record_id') ?? '';
      // Only a record listed to this person: GetRecordProof answers the disclosure agency for anyone's.
      if (!s.listed.has(id)) throw new HttpError(404, 'no such record');
      let p;
      try {
        p = await o.gateway.recordProof(id);
      } catch (e) {
        if (grpcCodeOf(e) === 5) throw new HttpError(404, 'no such record');
        throw gatewayFailure(e);
      }
      if (!p.record) throw new HttpError(404, 'no such record');
      return json(res, 200, { record: recordJson({ ...p.record, ...(p.proof ? { proof: p.proof } : {}) }) });
    }
    if (path === '/api/checkpoints') {
      session(req);
      try {
        const cps = await o.gateway.checkpoints();
        return json(res, 200, { checkpoints: cps.map((c) => ({ origin: c.origin, signedNote: c.signedNote })) });
      } catch (e) {
        throw gatewayFailure(e);
      }
    }
    if (path === '/api/consistency') {
      session(req);
      const origin = url.searchParams.get('origin') ?? '';
      const oldSize = Number(url.searchParams.get('old'));
      const newSize = Number(url.searchParams.get('new'));
      if (!origin || origin.length > 200 || !Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || newSize < oldSize)
        throw new HttpError(400, 'origin, old and new: a log and two sizes, old ≤ new');
      try {
        const hashes = await o.gateway.consistencyProof(origin, oldSize, newSize);
        return json(res, 200, { hashes: hashes.map((h) => Buffer.from(h).toString('base64')) });
      } catch (e) {
        if (grpcCodeOf(e) === 3 || grpcCodeOf(e) === 5) throw new HttpError(404, 'no proof between these sizes of that log');
        throw gatewayFailure(e);
      }
    }
    if (path === '/download') {
      const s = session(req);
      const lines: string[] = [];
      let token = '';
      try {
        for (let i = 0; i < DOWNLOAD_MAX_PAGES; i++) {
          const page = await o.gateway.listRecords({ code: s.code, pageSize: 1000, pageToken: token });
          for (const r of page) lines.push(JSON.stringify(recordJson(r)));
          if (page.length < 1000) break;
          token = page.at(-1)!.cursor;
        }
      } catch (e) {
        throw gatewayFailure(e);
      }
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/jsonl; charset=utf-8');
      res.setHeader('Content-Disposition', 'attachment; filename="access-records.jsonl"');
      res.setHeader('Cache-Control', 'no-store');
      res.end(lines.map((l) => `${l}\n`).join(''));
      return;
    }
    throw new HttpError(404, 'not found');
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    securityHeaders(res, https);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', origin || 'http://localhost');
    } catch {
      res.statusCode = 400;
      res.end();
      return;
    }
    route(req, res, url)
      .catch((e: unknown) => {
        const status = e instanceof HttpError ? e.status : 500;
        if (!(e instanceof HttpError)) o.log.error('portal request failed', { path: url.pathname, err: e });
        if (res.headersSent) return void res.destroy();
        const message = e instanceof HttpError ? e.message : 'internal error';
        if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/webauthn/') || req.method !== 'GET') json(res, status, { error: message });
        else html(res, status, errorPage(langOf(req, url), status === 401 ? texts(langOf(req, url)).signInTitle : message));
      })
      .finally(() => {
        // The path only: queries and bodies never reach the log.
        o.log.info('portal request', { method: req.method, path: url.pathname.startsWith('/static/') ? url.pathname : url.pathname.slice(0, 64), status: res.statusCode, ms: Date.now() - started });
      });
  };

  const server: Server = o.tls ? createHttpsServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, handler) : createHttpServer(handler);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const i = o.listen.lastIndexOf(':');
  const host = o.listen.slice(0, i).replace(/^\[|\]$/g, '');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(o.listen.slice(i + 1)), host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  if (!origin) origin = `${https ? 'https' : 'http'}://${shownHost}:${port}`;
  return {
    url: `${https ? 'https' : 'http'}://${shownHost}:${port}/`,
    origin,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
