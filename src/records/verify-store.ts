/**
 * `linkgw records verify`: every chain in a store, checked against its seals, and every chain's links to the
 * chains that were there when it started (so a deleted or cut-back older chain is reported too).
 */
import type { KeyObject } from 'node:crypto';
import type { ChainedRecord, ChainLink } from '../core/access-record.js';
import { verifyChain, verifyLinks, type ChainReport } from '../core/chain-verify.js';
import type { RecordStore } from './record-store.js';

export async function verifyStore(store: RecordStore, keys: ReadonlyMap<string, KeyObject>): Promise<ChainReport[]> {
  const out: ChainReport[] = [];
  const rowsOf = new Map<string, readonly ChainedRecord[]>();
  const linksOf = new Map<string, readonly ChainLink[]>();
  for (const id of await store.chainIds()) {
    const { rows, seals, subjects, links } = await store.readChain(id);
    rowsOf.set(id, rows);
    if (links.length > 0) linksOf.set(id, links);
    out.push(verifyChain(id, rows, seals, keys, subjects, links));
  }
  for (const [predecessor, problem] of verifyLinks(linksOf, (id) => rowsOf.get(id))) {
    const i = out.findIndex((r) => r.chainId === predecessor);
    if (i < 0) out.push({ chainId: predecessor, records: 0, seals: 0, problem });
    else if (!out[i]!.problem) out[i] = { ...out[i]!, problem };
  }
  return out;
}
