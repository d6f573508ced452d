/**
 * The witness's own Ed25519 key: a PKCS#8 PEM file (mode 0600) in the witness's directory, created on first
 * start. Like the keyring, this module is the only one that reads or writes these key bytes; everything else
 * gets a Signer, so an HSM-backed Signer can take its place.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { KeyObjectSigner } from './signer.js';

export function loadOrCreateWitnessKey(path: string): { signer: KeyObjectSigner; created: boolean } {
  let created = false;
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
    created = true;
  }
  const privateKey = createPrivateKey(readFileSync(path));
  return { signer: new KeyObjectSigner('witness', privateKey, createPublicKey(privateKey)), created };
}
