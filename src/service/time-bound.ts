/** A time bound from a request: a protobuf Timestamp checked against its own range, as ms since the epoch. */
import { timestampMs, type Timestamp } from '@bufbuild/protobuf/wkt';
import { GatewayError } from '../core/errors.js';

/** The protobuf Timestamp range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

export function timeBound(t: Timestamp, field: string): number {
  if (t.seconds < MIN_SECONDS || t.seconds > MAX_SECONDS || t.nanos < 0 || t.nanos > 999_999_999)
    throw new GatewayError('INVALID_ARGUMENT', `${field}: not a valid timestamp (years 1 to 9999)`);
  return Number(timestampMs(t));
}

