/**
 * A Signer whose Ed25519 private key stays inside a PKCS#11 token: the message goes in, the signature comes
 * out (CKM_EDDSA without parameters is pure Ed25519, RFC 8032, so signatures verify with `crypto.verify`).
 * SoftHSM 2.6 implements CKM_EDDSA and CKM_EC_EDWARDS_KEY_PAIR_GEN (PKCS#11 3.0 mechanisms, which pkcs11js
 * 2.1 does not name, so their numbers are here).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Signer } from './signer.js';
import { KeyringError } from './keyring-error.js';
import { errorText, type Handle, type TokenSession } from './pkcs11-token.js';

/** PKCS#11 3.0 §2.3.6, §6.3 (pkcs11t.h). */
export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
/** CKA_EC_PARAMS for Ed25519: the DER of OID 1.3.101.112 (RFC 8410), and the printable-string form some tokens want. */
export const ED25519_OID = Buffer.from('06032b6570', 'hex');
export const ED25519_NAME = Buffer.concat([Buffer.from([0x13, 12]), Buffer.from('edwards25519', 'ascii')]);

export class Pkcs11Signer implements Signer {
  constructor(
    readonly keyId: string,
    readonly publicKey: KeyObject,
    private readonly token: TokenSession,
    private readonly privateKey: Handle,
  ) {}

  sign(message: Uint8Array): Promise<Buffer> {
    return this.token.run(async (lib, session) => {
      try {
        lib.C_SignInit(session, { mechanism: CKM_EDDSA, parameter: null as unknown as undefined }, this.privateKey);
        // Asynchronous: a network HSM may take milliseconds, which the event loop should not spend waiting.
        return Buffer.from(await lib.C_SignAsync(session, Buffer.from(message), Buffer.alloc(64)));
      } catch (e) {
        throw new KeyringError('pkcs11', `signing with ${this.keyId} in PKCS#11 token "${this.token.config.token}" failed: ${errorText(e)}`, { cause: e });
      }
    });
  }
}

/** The Ed25519 public key from a token's CKA_EC_POINT: a DER OCTET STRING of the 32 bytes, or (some tokens) the bytes alone. */
export function ed25519PublicKeyFromEcPoint(point: Buffer): KeyObject {
  const raw = point.length === 34 && point[0] === 0x04 && point[1] === 0x20 ? point.subarray(2) : point;
  if (raw.length !== 32) throw new KeyringError('pkcs11', `the token returned an Ed25519 public key of ${raw.length} bytes`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}
