/** Small helpers for the keyring tests: settings for a data directory, and whether a gateway accepts a code. */
import { status } from '@grpc/grpc-js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { settingsFromEnv } from '../../src/config/settings.js';
import { ed25519NoteVerifier, openNote } from '../../src/core/signed-note.js';
import { keyringLocation, type KeyringLocation } from '../../src/keys/keyring-file.js';
import type { RecordStore } from '../../src/records/record-store.js';
import type { Harness } from './gateway-harness.js';

export function locationFor(dataDir: string, env: Record<string, string> = {}): KeyringLocation {
  return keyringLocation(settingsFromEnv({ LINKGW_DATA_DIR: dataDir, ...env }));
}

/**
 * Whether the gateway decodes this disclosure-agency code: ListAccessRecords decodes it before anything else,
 * and answers INVALID_ARGUMENT for a code it cannot decode (unknown key version, or not authentic).
 */
export async function acceptsDisclosureCode(h: Harness, code: string): Promise<boolean> {
  try {
    await h.client('disclosure').listRecords({ code });
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === status.INVALID_ARGUMENT) return false;
    throw e;
  }
}

/** Every file under `dir`, recursively, with its bytes. */
export function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push({ path: p, bytes: readFileSync(p) });
  }
  return out;
}

/** The ways a key's bytes could be written down: raw, hex (both cases), base64 and base64url. */
export function encodings(key: Uint8Array): Buffer[] {
  const b = Buffer.from(key);
  return [b, Buffer.from(b.toString('hex')), Buffer.from(b.toString('hex').toUpperCase()), Buffer.from(b.toString('base64')), Buffer.from(b.toString('base64url'))];
}

/** The ids of the sealing keys that signed the stored checkpoints of every log of a store. */
export async function checkpointSigners(store: RecordStore, keys: ReadonlyMap<string, KeyObject>): Promise<Set<string>> {
  const out = new Set<string>();
  for (const info of await store.logs())
    for (const c of await store.checkpoints(info.logId))
      for (const [id, key] of keys) {
        try {
          openNote(c.signedNote, [ed25519NoteVerifier(c.origin, key)]);
          out.add(id);
        } catch {
          // not this key
        }
      }
  return out;
}
