/**
 * The person a caller names by its own code. Every service that takes a code does the same three things: refuse
 * an empty code, decode it as a code of the *calling* agency (a forged, altered or other agency's code is
 * INVALID_ARGUMENT, never another person), and derive the subject key that indexes the person's records.
 */
import { GatewayError } from '../core/errors.js';
import type { SubjectKeys } from '../core/subject-key.js';
import type { MappingEngine } from '../engine/mapping-engine.js';
import { throwIfDone, type CallContext } from './call-context.js';

export interface NamedPerson {
  /** The personal number, as an integer: never leaves the gateway. */
  readonly number: number;
  /** The subject key of the person's access records. */
  readonly subject: string;
}

export interface PersonDeps {
  readonly engine: MappingEngine;
  readonly subjects: SubjectKeys;
}

export async function personNamedBy(d: PersonDeps, ctx: CallContext, code: string): Promise<NamedPerson> {
  if (!code) throw new GatewayError('INVALID_ARGUMENT', "code: the caller's code for the person is required");
  throwIfDone(ctx);
  const [decoded] = await d.engine.decode(ctx.agency.id, [code], ctx.signal);
  if (!decoded?.ok) throw new GatewayError('INVALID_ARGUMENT', 'code: not a valid code of the calling agency');
  return { number: decoded.number, subject: d.subjects.of(decoded.number) };
}
