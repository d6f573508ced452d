/** Access record ids: 120 random bits as 24 Crockford base32 characters (unguessable, no order leaked). */
import { randomBytes } from 'node:crypto';
import { base32Encode } from './base32.js';

export function newRecordId(): string {
  return base32Encode(randomBytes(15));
}
