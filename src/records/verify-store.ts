/** `linkgw records verify`: every chain in a store, checked against its seals. */
import type { KeyObject } from 'node:crypto';
import { verifyChain, type ChainReport } from '../core/chain-verify.js';
import type { RecordStore } from './record-store.js';

export async function verifyStore(store: RecordStore, keys: ReadonlyMap<string, KeyObject>): Promise<ChainReport[]> {
  const out: ChainReport[] = [];
  for (const id of await store.chainIds()) {
    const { rows, seals, subjects } = await store.readChain(id);
    out.push(verifyChain(id, rows, seals, keys, subjects));
  }
  return out;
}
