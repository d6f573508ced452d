/**
 * Passkeys (WebAuthn) for the portal: enrollment with a one-time code from the counter plus the personal
 * number once (turned into the disclosure agency's code with IssueCode, then forgotten), and sign-in with the
 * passkey. Verification of the authenticator's answers is @simplewebauthn/server's (attestation "none": the
 * portal trusts the enrollment code, not the authenticator's make).
 *
 *   GET  /enroll                   the enrollment page
 *   POST /webauthn/register/options {enrollmentCode, personalNumber} → creation options (+ a ceremony id)
 *   POST /webauthn/register/verify  {ceremony, response}              → the passkey stored, signed in
 *   POST /webauthn/login/options    {}                                → request options (+ a ceremony id)
 *   POST /webauthn/login/verify     {ceremony, response}              → signed in
 *
 * Every POST needs the page's CSRF token (x-csrf-token) and a same-origin Origin; options calls count as
 * sign-in attempts (rate-limited). Ceremonies live in memory for two minutes and are used once.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { checkPersonalNumber } from '../core/personal-number.js';
import { grpcCodeOf } from './ports.js';
import { EnrollmentStore } from './enrollment-store.js';
import { enrollPage } from './pages.js';
import type { PortalContext, PortalExtension } from './portal-server.js';

const CEREMONY_MS = 120_000;

interface Ceremony {
  readonly challenge: string;
  readonly expires: number;
  /** Registration: the code it binds and the enrollment code it consumes. */
  readonly code?: string;
  readonly enrollmentCode?: string;
}

class BadRequest extends Error {}

export function passkeys(store: EnrollmentStore): PortalExtension {
  const ceremonies = new Map<string, Ceremony>();

  const begin = (c: Omit<Ceremony, 'expires'>): string => {
    const now = Date.now();
    for (const [k, v] of ceremonies) if (v.expires < now) ceremonies.delete(k);
    if (ceremonies.size > 10_000) throw new BadRequest('busy');
    const id = randomBytes(24).toString('base64url');
    ceremonies.set(id, { ...c, expires: now + CEREMONY_MS });
    return id;
  };

  const take = (id: unknown): Ceremony => {
    const c = typeof id === 'string' ? ceremonies.get(id) : undefined;
    if (typeof id === 'string') ceremonies.delete(id);
    if (!c || c.expires < Date.now()) throw new BadRequest('the passkey ceremony expired; start again');
    return c;
  };

  const body = async (req: IncomingMessage, ctx: PortalContext): Promise<Record<string, unknown>> => {
    try {
      const v = JSON.parse(await ctx.readBody(req)) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // below
    }
    throw new BadRequest('a JSON object is expected');
  };

  const rp = (ctx: PortalContext) => ({ origin: ctx.origin, id: new URL(ctx.origin).hostname });

  async function route(req: IncomingMessage, res: ServerResponse, url: URL, ctx: PortalContext): Promise<boolean> {
    const path = url.pathname;
    if (path === '/enroll' && req.method === 'GET') {
      const page = enrollPage({ lang: ctx.lang(req, url), csrf: ctx.csrfToken(req, res) });
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.end(page);
      return true;
    }
    if (!path.startsWith('/webauthn/')) return false;
    if (req.method !== 'POST') {
      ctx.json(res, 405, { error: 'method not allowed' });
      return true;
    }
    const token = req.headers['x-csrf-token'];
    if (!ctx.checkPost(req, res, typeof token === 'string' ? token : undefined)) return true;
    const { origin, id: rpID } = rp(ctx);
    switch (path) {
      case '/webauthn/register/options': {
        if (!ctx.takeAttempt(req, res)) return true;
        const b = await body(req, ctx);
        const enrollmentCode = typeof b.enrollmentCode === 'string' ? b.enrollmentCode : '';
        const number = typeof b.personalNumber === 'string' ? b.personalNumber.replace(/[\s-]/g, '') : '';
        // One answer for a wrong, used or expired code and a wrong number: nothing to tell them apart.
        if (!store.isValidEnrollmentCode(enrollmentCode) || !checkPersonalNumber(number).ok) {
          ctx.json(res, 400, { error: 'the enrollment code or the personal number is not right' });
          return true;
        }
        let code: string;
        try {
          code = await ctx.gateway.issueCode(number);
        } catch (e) {
          ctx.log.warn('enrollment: the gateway did not issue a code', { status: grpcCodeOf(e) });
          ctx.json(res, 502, { error: 'the record service is unavailable; try again later' });
          return true;
        }
        const options = await generateRegistrationOptions({
          rpName: 'linkgw disclosure portal',
          rpID,
          // Nothing about the person: the passkey's name in the authenticator is the service's.
          userName: 'linkgw-portal',
          userDisplayName: 'linkgw portal',
          attestationType: 'none',
          authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
        });
        const ceremony = begin({ challenge: options.challenge, code, enrollmentCode });
        ctx.json(res, 200, { ceremony, options });
        return true;
      }
      case '/webauthn/register/verify': {
        const b = await body(req, ctx);
        const c = take(b.ceremony);
        if (!c.code || !c.enrollmentCode) throw new BadRequest('not a registration');
        let v;
        try {
          v = await verifyRegistrationResponse({ response: b.response as RegistrationResponseJSON, expectedChallenge: c.challenge, expectedOrigin: origin, expectedRPID: rpID });
        } catch {
          v = { verified: false as const };
        }
        if (!v.verified) {
          ctx.json(res, 400, { error: 'the passkey could not be verified' });
          return true;
        }
        const cred = v.registrationInfo.credential;
        const ok = store.register(c.enrollmentCode, {
          id: cred.id,
          publicKey: Buffer.from(cred.publicKey).toString('base64url'),
          counter: cred.counter,
          ...(cred.transports ? { transports: cred.transports } : {}),
          code: c.code,
          created: Date.now(),
        });
        if (!ok) {
          ctx.json(res, 400, { error: 'the enrollment code or the personal number is not right' });
          return true;
        }
        ctx.signIn(res, c.code);
        ctx.json(res, 200, { ok: true });
        return true;
      }
      case '/webauthn/login/options': {
        if (!ctx.takeAttempt(req, res)) return true;
        const options = await generateAuthenticationOptions({ rpID, userVerification: 'preferred' });
        ctx.json(res, 200, { ceremony: begin({ challenge: options.challenge }), options });
        return true;
      }
      case '/webauthn/login/verify': {
        const b = await body(req, ctx);
        const c = take(b.ceremony);
        const response = b.response as AuthenticationResponseJSON;
        const stored = typeof response?.id === 'string' ? store.passkey(response.id) : undefined;
        let v;
        try {
          v = stored
            ? await verifyAuthenticationResponse({
                response,
                expectedChallenge: c.challenge,
                expectedOrigin: origin,
                expectedRPID: rpID,
                credential: { id: stored.id, publicKey: Buffer.from(stored.publicKey, 'base64url'), counter: stored.counter },
              })
            : undefined;
        } catch {
          v = undefined;
        }
        if (!stored || !v?.verified) {
          ctx.json(res, 401, { error: 'this passkey is not registered here, or it could not be verified' });
          return true;
        }
        store.updateCounter(stored.id, v.authenticationInfo.newCounter);
        ctx.signIn(res, stored.code);
        ctx.json(res, 200, { ok: true });
        return true;
      }
      default:
        ctx.json(res, 404, { error: 'not found' });
        return true;
    }
  }

  return {
    passkeys: true,
    handle: async (req, res, url, ctx) => {
      try {
        return await route(req, res, url, ctx);
      } catch (e) {
        if (!(e instanceof BadRequest)) throw e;
        ctx.json(res, 400, { error: e.message });
        return true;
      }
    },
  };
}

