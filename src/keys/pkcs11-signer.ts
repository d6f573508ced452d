/**
 * A Signer whose Ed25519 private key stays inside a PKCS#11 token: the message goes in, the signature comes
 * out (CKM_EDDSA without parameters is pure Ed25519, RFC 8032, so signatures verify with `crypto.verify`).
 * SoftHSM 2.6 implements CKM_EDDSA and CKM_EC_EDWARDS_KEY_PAIR_GEN (PKCS#11 3.0 mechanisms, which pkcs11js
 * 2.1 does not name, so their numbers are here).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Signer } from './signer.js';
import { KeyringError } from './keyring-error.js';
import { errorText, isSessionLost, pkcs11, type Handle, type TokenSession } from './pkcs11-token.js';

/** PKCS#11 3.0 §2.3.6, §6.3 (pkcs11t.h). */
export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
/** CKA_EC_PARAMS for Ed25519: the DER of OID 1.3.101.112 (RFC 8410), and the printable-string form some tokens want. */
export const ED25519_OID = Buffer.from('06032b6570', 'hex');
export const ED25519_NAME = Buffer.concat([Buffer.from([0x13, 12]), Buffer.from('edwards25519', 'ascii')]);

export class Pkcs11Signer implements Signer {
  #privateKey: Handle | undefined;

  /** `tokenKeyId` is the private key's CKA_ID: the key is found (again, after a reconnect) by it. */
  constructor(
    readonly keyId: string,
    readonly publicKey: KeyObject,
    private readonly token: TokenSession,
    private readonly tokenKeyId: string,
  ) {}

  /** Finds the private key; fails unless exactly one private key of the token has this id. */
  async init(): Promise<this> {
    await this.token.run(() => this.#find());
    return this;
  }

  sign(message: Uint8Array): Promise<Buffer> {
    return this.token.run(async () => {
      try {
        try {
          return await this.#signOnce(message);
        } catch (e) {
          // A lost session (HSM restarted, token re-inserted): one new session and login, then one more try.
          if (!isSessionLost(e)) throw e;
          this.token.reconnect();
          this.#find();
          return await this.#signOnce(message);
        }
      } catch (e) {
        if (e instanceof KeyringError) throw e;
        throw new KeyringError('pkcs11', `signing with ${this.keyId} in PKCS#11 token "${this.token.config.token}" failed: ${errorText(e)}`, { cause: e });
      }
    });
  }

  async #signOnce(message: Uint8Array): Promise<Buffer> {
    const { lib, session } = this.token;
    lib.C_SignInit(session, { mechanism: CKM_EDDSA }, this.#privateKey!);
    // Asynchronous: a network HSM may take milliseconds, which the event loop should not spend waiting.
    return Buffer.from(await lib.C_SignAsync(session, Buffer.from(message), Buffer.alloc(64)));
  }

  #find(): void {
    const p = pkcs11();
    const found = this.token.find([
      { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
      { type: p.CKA_ID, value: Buffer.from(this.tokenKeyId, 'hex') },
    ]);
    if (found.length !== 1)
      throw new KeyringError('token-key-missing', `PKCS#11 token "${this.token.config.token}" has ${found.length === 0 ? 'no' : 'more than one'} private key ${this.tokenKeyId} for sealing key ${this.keyId}`);
    this.#privateKey = found[0];
  }
}

/** The Ed25519 public key from a token's CKA_EC_POINT: a DER OCTET STRING of the 32 bytes, or (some tokens) the bytes alone. */
export function ed25519PublicKeyFromEcPoint(point: Buffer): KeyObject {
  const raw = point.length === 34 && point[0] === 0x04 && point[1] === 0x20 ? point.subarray(2) : point;
  if (raw.length !== 32) throw new KeyringError('pkcs11', `the token returned an Ed25519 public key of ${raw.length} bytes`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}
