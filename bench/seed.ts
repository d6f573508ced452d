/**
 * The seeded population and the load tool's data: a keyring and dev PKI shared by every target of a run (so
 * codes computed here are the codes every gateway issues), at least 100,000 synthetic persons with valid
 * check digits, and ghz data files (JSON arrays, sent round-robin) under bench/results/tmp/data/:
 *
 *   issue.json     IssueCode requests (personal numbers)
 *   query.json     granted QueryInformation requests, each naming a person the provider knows (so every
 *                  call is answered OK: the simulated agencies do not know about 1 person in 16)
 *   records.json   ListAccessRecords requests of the disclosure agency
 *   denied.json    QueryInformation requests with no legal-basis row (expected PERMISSION_DENIED)
 *   bulk.json      one IssueCodes stream: batchesPerStream messages of `batch` numbers
 *   numbers.txt, codes-<agency>.txt   for the Node clients (seeding, bulk), one a line, in the same order
 *   linkage.protoset   the gateway's own descriptors (protobuf-es), for ghz --protoset
 *
 * Codes are issued through each gateway at its start (seedGateway in bulk-client.ts), checked against these.
 */
import { create, toBinary, type DescFile } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgencyCodec } from '../src/core/agency-code.js';
import { checkPersonalNumber, withCheckDigit } from '../src/core/personal-number.js';
import { file_linkage_v1_gateway } from '../src/gen/linkage/v1/gateway_pb.js';
import { file_linkage_v1_records } from '../src/gen/linkage/v1/records_pb.js';
import { loadOrCreateKeyring } from '../src/keys/keyring-file.js';
import { ensureDevPki } from '../src/pki/dev-pki.js';
import { isEnrolled } from '../src/providers/synthetic-data.js';
import { ROOT, type Budget } from './budget.js';

export interface Dataset {
  readonly dir: string;
  readonly templateDir: string;
  readonly persons: number;
  readonly protoset: string;
  readonly files: { issue: string; query: string; records: string; denied: string; bulk: string; numbers: string; codes: (agency: string) => string };
  /** Agencies whose codes are issued through each gateway at its start. */
  readonly seededAgencies: string[];
  /** Persons per grant that the provider knows. */
  readonly enrolled: Record<string, number>;
  readonly bulkNumbersPerStream: number;
}

/** 11 digits walked multiplicatively from a seed, completed with their check digit. */
export function syntheticNumber(i: number, seed: number): string {
  const base = (BigInt(i) * 7_919_000_003n + BigInt(seed) * 1_000_003n + 12_345_678_901n) % 100_000_000_000n;
  return withCheckDigit(base.toString().padStart(11, '0'));
}

/** A deterministic shuffle (mulberry32). */
function shuffled<T>(xs: T[], seed: number): T[] {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function agencyCommonNames(): Map<string, string> {
  const doc = JSON.parse(readFileSync(join(ROOT, 'config', 'agencies.json'), 'utf8')) as { agencies: { id: string; certificate: { commonName: string } }[] };
  return new Map(doc.agencies.map((a) => [a.id, a.certificate.commonName]));
}

/** Keyring and dev PKI in `dir`, created once and copied into every target's fresh data directory. */
export async function prepareTemplate(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  loadOrCreateKeyring(join(dir, 'keyring.json'));
  await ensureDevPki(join(dir, 'pki'), agencyCommonNames());
}

/** A fresh data directory for one target, holding the shared keyring and PKI (records start empty). */
export function freshDataDir(templateDir: string, dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  cpSync(join(templateDir, 'keyring.json'), join(dir, 'keyring.json'));
  cpSync(join(templateDir, 'pki'), join(dir, 'pki'), { recursive: true });
  return dir;
}

function protoset(): Uint8Array {
  const files = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (files.has(f.proto.name)) return;
    for (const d of f.dependencies) visit(d);
    files.set(f.proto.name, f);
  };
  visit(file_linkage_v1_gateway);
  visit(file_linkage_v1_records);
  return toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [...files.values()].map((f) => f.proto) }));
}

export async function buildDataset(b: Budget, dir: string, persons: number): Promise<Dataset> {
  if (persons < 1000) throw new RangeError('at least 1,000 persons');
  const templateDir = join(dir, 'template');
  await prepareTemplate(templateDir);
  const keyring = loadOrCreateKeyring(join(templateDir, 'keyring.json')).keyring;
  const codec = new AgencyCodec(keyring);
  const seed = b.population.seed;

  const numbers: string[] = [];
  const values: number[] = [];
  for (let i = 0; i < persons; i++) {
    const s = syntheticNumber(i, seed);
    const c = checkPersonalNumber(s);
    if (!c.ok) throw new Error('synthetic number with a bad check digit');
    numbers.push(s);
    values.push(c.value);
  }
  const p = b.profiles;
  const requester = p.query.agency;
  const agencies = [...new Set([requester, p.records.agency, p.issue.agency, p.bulk.agency, ...p.query.grants.map((g) => g.provider)])];
  const codes = new Map(agencies.map((a) => [a, codec.encodeMany(a, values)]));

  mkdirSync(dir, { recursive: true });
  const write = (name: string, v: unknown) => {
    const f = join(dir, name);
    writeFileSync(f, JSON.stringify(v));
    return f;
  };
  const order = shuffled(Array.from({ length: persons }, (_, i) => i), seed);

  // Granted queries: round-robin over the grants, each with a person the provider knows.
  const enrolledBy = p.query.grants.map((g) => order.filter((i) => isEnrolled(g.provider, codes.get(g.provider)![i]!)));
  const query: object[] = [];
  const rCodes = codes.get(requester)!;
  for (let k = 0; k < persons; k++) {
    const gi = k % p.query.grants.length;
    const list = enrolledBy[gi]!;
    const g = p.query.grants[gi]!;
    query.push({ code: rCodes[list[Math.floor(k / p.query.grants.length) % list.length]!], provider: g.provider, procedure: g.procedure, item: g.item });
  }
  const dCodes = codes.get(p.records.agency)!;
  const d = p.mixed.denied;
  const files = {
    issue: write('issue.json', order.map((i) => ({ personal_number: numbers[i] }))),
    query: write('query.json', query),
    records: write('records.json', order.map((i) => ({ code: dCodes[i], page_size: p.records.pageSize }))),
    denied: write('denied.json', order.map((i) => ({ code: rCodes[i], provider: d.provider, procedure: d.procedure, item: d.item }))),
    bulk: write(
      'bulk.json',
      Array.from({ length: p.bulk.batchesPerStream }, (_, m) => ({
        personal_numbers: Array.from({ length: p.bulk.batch }, (_, j) => numbers[order[(m * p.bulk.batch + j) % persons]!]),
      })),
    ),
    numbers: join(dir, 'numbers.txt'),
    codes: (agency: string) => join(dir, `codes-${agency}.txt`),
  };
  writeFileSync(files.numbers, numbers.join('\n') + '\n');
  for (const [a, cs] of codes) writeFileSync(files.codes(a), cs.join('\n') + '\n');
  const ps = join(dir, 'linkage.protoset');
  writeFileSync(ps, protoset());
  const enrolled = Object.fromEntries(p.query.grants.map((g, i) => [`${g.provider}/${g.item}`, enrolledBy[i]!.length]));
  return {
    dir,
    templateDir,
    persons,
    protoset: ps,
    files,
    seededAgencies: [...new Set([requester, p.records.agency])],
    enrolled,
    bulkNumbersPerStream: p.bulk.batch * p.bulk.batchesPerStream,
  };
}

export function readLines(file: string): string[] {
  if (!existsSync(file)) throw new Error(`missing ${file}`);
  const s = readFileSync(file, 'utf8');
  return s.split('\n').filter((l) => l.length > 0);
}
