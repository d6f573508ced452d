/**
 * `linkgw records verify`: every chain in a store, checked against its seals, and against what later chains
 * committed to about it (so a deleted or cut-back older chain is reported too). One chain is in memory at a
 * time, besides the links.
 */
import type { KeyObject } from 'node:crypto';
import { verifyChain, verifyLinksTo, type ChainReport, type LinkTo } from '../core/chain-verify.js';
import type { RecordStore } from './record-store.js';

export async function verifyStore(store: RecordStore, keys: ReadonlyMap<string, KeyObject>): Promise<ChainReport[]> {
  const linksTo = new Map<string, LinkTo[]>();
  for (const [by, links] of await store.allLinks())
    for (const l of links) {
      let to = linksTo.get(l.predecessor);
      if (!to) linksTo.set(l.predecessor, (to = []));
      to.push({ by, lastSeq: l.lastSeq, headHash: l.headHash });
    }
  const out: ChainReport[] = [];
  const ids = await store.chainIds();
  for (const id of ids) {
    const { rows, seals, subjects, links } = await store.readChain(id);
    const report = verifyChain(id, rows, seals, keys, subjects, links);
    const problem = report.problem ?? verifyLinksTo(id, rows, linksTo.get(id) ?? []);
    out.push(problem === report.problem ? report : { ...report, problem });
  }
  const known = new Set(ids);
  for (const [id, links] of linksTo) if (!known.has(id)) out.push({ chainId: id, records: 0, seals: 0, problem: verifyLinksTo(id, [], links) });
  return out;
}
