/**
 * A witness's memory: for each log it cosigns, the latest checkpoint it cosigned (size, root, and the note
 * with its cosignature, served to monitors). One JSON file, replaced atomically and fsynced before the witness
 * answers: a witness that forgot a cosigned size after a crash could be talked into a rollback.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface WitnessedCheckpoint {
  readonly size: number;
  readonly rootHash: Buffer;
  /** The checkpoint with the log's signature and this witness's cosignature. */
  readonly cosigned: string;
  readonly updatedAt: number;
}

interface StateFileV1 {
  format: 'linkgw-witness-state-v1';
  logs: Record<string, { size: number; root: string; cosigned: string; updatedAt: number }>;
}

export class WitnessState {
  readonly #path: string;
  readonly #logs = new Map<string, WitnessedCheckpoint>();

  private constructor(path: string) {
    this.#path = path;
  }

  static load(path: string): WitnessState {
    const s = new WitnessState(path);
    if (existsSync(path)) {
      const doc = JSON.parse(readFileSync(path, 'utf8')) as StateFileV1;
      if (doc.format !== 'linkgw-witness-state-v1') throw new Error(`${path}: not a linkgw witness state (format ${String(doc.format)})`);
      for (const [origin, l] of Object.entries(doc.logs)) s.#logs.set(origin, { size: l.size, rootHash: Buffer.from(l.root, 'base64'), cosigned: l.cosigned, updatedAt: l.updatedAt });
    }
    return s;
  }

  get(origin: string): WitnessedCheckpoint | undefined {
    return this.#logs.get(origin);
  }

  origins(): string[] {
    return [...this.#logs.keys()];
  }

  /** Records a newly cosigned checkpoint, durably, before the witness answers. */
  set(origin: string, c: WitnessedCheckpoint): void {
    const next = new Map(this.#logs).set(origin, c);
    const doc: StateFileV1 = {
      format: 'linkgw-witness-state-v1',
      logs: Object.fromEntries([...next].map(([o, x]) => [o, { size: x.size, root: x.rootHash.toString('base64'), cosigned: x.cosigned, updatedAt: x.updatedAt }])),
    };
    mkdirSync(dirname(this.#path), { recursive: true, mode: 0o700 });
    const tmp = `${this.#path}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(doc, null, 1) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.#path);
    const dir = openSync(dirname(this.#path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    this.#logs.set(origin, c);
  }
}
