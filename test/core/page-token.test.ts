/**
 * ListAccessRecords page tokens (src/core/page-token.ts): a token opens only for the listing it was issued for,
 * and no edit of it opens.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PageTokens } from '../../src/core/page-token.js';

const secret = randomBytes(32);
const tokens = new PageTokens(secret);
const mine = { agency: 'disclosure', subject: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' };
const position = { requestedAt: 1_765_000_000_123, leafIndex: 2 ** 40 + 7, logId: 'gw-0.prod_a' };

describe('page tokens', () => {
  it('give back the position they were issued for, to the same listing', () => {
    const t = tokens.issue(position, mine);
    expect(t).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(tokens.open(t, mine)).toEqual(position);
    // Another replica with the same keyring opens it too.
    expect(new PageTokens(secret).open(t, mine)).toEqual(position);
    expect(tokens.open(tokens.issue({ requestedAt: 0, leafIndex: 0, logId: 'x' }, mine), mine)).toEqual({ requestedAt: 0, leafIndex: 0, logId: 'x' });
  });

  it('refuse every edit: each byte changed, cut short, made longer', () => {
    const raw = Buffer.from(tokens.issue(position, mine), 'base64url');
    for (let i = 0; i < raw.length; i++) {
      const edited = Buffer.from(raw);
      edited[i]! ^= 0x01;
      expect(tokens.open(edited.toString('base64url'), mine), `byte ${i}`).toBeNull();
    }
    expect(tokens.open(raw.subarray(0, raw.length - 1).toString('base64url'), mine)).toBeNull();
    expect(tokens.open(Buffer.concat([raw, Buffer.of(0)]).toString('base64url'), mine)).toBeNull();
  });

  it("refuse another person's or another agency's listing, and another keyring's tokens", () => {
    const t = tokens.issue(position, mine);
    expect(tokens.open(t, { ...mine, subject: 'ZYXWVUTSRQPONMLKJIHGFEDCBA' })).toBeNull();
    expect(tokens.open(t, { ...mine, agency: 'welfare' })).toBeNull();
    // The parts are length-prefixed: moving a character from agency to subject is another listing.
    expect(tokens.open(t, { agency: 'disclosur', subject: `e${mine.subject}` })).toBeNull();
    expect(new PageTokens(randomBytes(32)).open(t, mine)).toBeNull();
  });

  it('refuse the old plain cursors and anything else that is not a token', () => {
    const plain = Buffer.from(`${position.requestedAt}:${position.leafIndex}:${position.logId}`).toString('base64url');
    for (const bad of [plain, '', '!!!!', 'A'.repeat(10_000), Buffer.alloc(200).toString('base64url')]) expect(tokens.open(bad, mine)).toBeNull();
  });
});
