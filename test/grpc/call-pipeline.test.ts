/**
 * The call pipeline: steps run in order, a refusal ends the call with its status and undoes only the steps
 * before it, end hooks run once in reverse order, and the in-flight budget is per instance.
 */
import { Metadata, status } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/core/errors.js';
import { CallPipeline, type CallStep, type ServerCallLike } from '../../src/grpc/call-pipeline.js';
import { InFlight } from '../../src/limits/in-flight.js';
import { Lifetime } from '../../src/lifetime.js';
import { silentLogger } from '../../src/log/logger.js';

const rpc = { service: 'linkage.v1.LinkageGateway', method: 'IssueCode', type: 'unary' as const };

function fakeCall(): ServerCallLike {
  const e = new EventEmitter();
  return Object.assign(e, { metadata: new Metadata(), getDeadline: () => Infinity, getAuthContext: () => null }) as unknown as ServerCallLike;
}

describe('CallPipeline', () => {
  it('runs steps in order and their end hooks once, in reverse', async () => {
    const log: string[] = [];
    const step = (name: string): CallStep => (scope) => {
      log.push(`open ${name}`);
      scope.onEnd((end) => log.push(`end ${name} ${end.code}`));
    };
    const asyncStep: CallStep = async (scope) => {
      await new Promise((r) => setTimeout(r, 1));
      log.push('open async');
      scope.onEnd(() => log.push('end async'));
    };
    const scope = await new CallPipeline([step('a'), asyncStep, step('b')]).open(rpc, fakeCall());
    scope.end({ code: status.OK });
    scope.end({ code: status.INTERNAL });
    expect(log).toEqual(['open a', 'open async', 'open b', 'end b 0', 'end async', 'end a 0']);
  });

  it('ends a refused call with the mapped status, undoing only the steps before the refusal', async () => {
    const log: string[] = [];
    const pipeline = new CallPipeline([
      (s) => s.onEnd((end) => log.push(`observed ${end.code}`)),
      () => {
        throw new GatewayError('RESOURCE_EXHAUSTED', 'full');
      },
      (s) => s.onEnd(() => log.push('never opened')),
    ]);
    const se = await pipeline.open(rpc, fakeCall()).then(
      () => null,
      (e: { code: number; details: string }) => e,
    );
    expect(se).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: 'full' });
    expect(log).toEqual([`observed ${status.RESOURCE_EXHAUSTED}`]);
  });

  it('maps an error that is not a GatewayError to INTERNAL with a fixed message', async () => {
    const se = await new CallPipeline([
      () => {
        throw new Error('secret detail 621498320257');
      },
    ])
      .open(rpc, fakeCall())
      .catch((e: { code: number; details: string }) => e);
    expect(se).toMatchObject({ code: status.INTERNAL, details: 'internal error' });
  });

  it('keeps ending the call when an end hook throws', async () => {
    const log: string[] = [];
    const scope = await new CallPipeline([
      (s) => s.onEnd(() => log.push('first registered, last run')),
      (s) =>
        s.onEnd(() => {
          throw new Error('broken metrics');
        }),
    ]).open(rpc, fakeCall());
    scope.end({ code: status.OK });
    expect(log).toEqual(['first registered, last run']);
  });
});

describe('InFlight', () => {
  it('bounds the total and each agency, gives a slot back once, and is per instance', () => {
    const a = new InFlight({ max: 3, perAgency: 2 });
    const b = new InFlight({ max: 3, perAgency: 2 });
    const l1 = a.enter('tax');
    a.enter('tax');
    expect(() => a.enter('tax')).toThrow(/this agency has too many calls/);
    const l3 = a.enter('pension');
    expect(() => a.enter('welfare')).toThrow(/at capacity/);
    expect(b.total).toBe(0);
    l1();
    l1();
    expect(a.total).toBe(2);
    expect(a.of('tax')).toBe(1);
    l3();
    expect(a.of('pension')).toBe(0);
  });
});

describe('Lifetime', () => {
  it('closes in reverse order, runs every step when one fails, and throws the first failure', async () => {
    const log: string[] = [];
    const life = new Lifetime(silentLogger);
    life.own('store', 'S', (v) => void log.push(`close ${v}`));
    life.defer('writer', () => {
      log.push('close writer');
      throw new Error('writer failed');
    });
    life.own('server', 'X', async (v) => void log.push(`close ${v}`));
    await expect(life.close()).rejects.toThrow('writer failed');
    expect(log).toEqual(['close X', 'close writer', 'close S']);
    await life.close(); // nothing left to close
  });
});
