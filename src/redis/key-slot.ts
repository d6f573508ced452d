/**
 * The Redis Cluster hash slot of a key, as the server computes it (CLUSTER KEYSLOT): CRC16-XMODEM of the key,
 * or of its hash tag (the bytes between the first `{` and the next `}`, when not empty), modulo 16384.
 *
 * The connection needs it to know which node, and so which circuit breaker, a key belongs to before it sends
 * anything (ioredis' own copy, the cluster-key-slot package, ships no types).
 */

const CRC16 = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    t[i] = c & 0xffff;
  }
  return t;
})();

export const SLOTS = 16384;

export function keySlot(key: string): number {
  const b = Buffer.from(key, 'utf8');
  let start = 0;
  let end = b.length;
  const open = b.indexOf(0x7b); // {
  if (open >= 0) {
    const close = b.indexOf(0x7d, open + 1); // }
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ b[i]!) & 0xff]!;
  return crc % SLOTS;
}
