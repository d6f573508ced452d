/**
 * The signing seam: everything the gateway signs (record seals; transparency-log checkpoints) goes through a
 * `Signer`, so the private key can live in a file keyring or stay inside an HSM (PKCS#11) without the writer
 * knowing which. Signatures are Ed25519 (RFC 8032) over the exact message bytes; the public key is what
 * verifiers are given.
 *
 * `sign` is asynchronous because an HSM call may be; a file key answers at once.
 */
import { sign as edSign, type KeyObject } from 'node:crypto';

export interface Signer {
  /** The key's id as recorded next to each signature (for example `seal-1`). */
  readonly keyId: string;
  /** The Ed25519 public key. */
  readonly publicKey: KeyObject;
  /** A 64-byte Ed25519 signature over `message`. */
  sign(message: Uint8Array): Promise<Buffer>;
}

/** A Signer over a private key held in memory (the file keyring). */
export class KeyObjectSigner implements Signer {
  constructor(
    readonly keyId: string,
    private readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
  ) {
    if (privateKey.asymmetricKeyType !== 'ed25519' || publicKey.asymmetricKeyType !== 'ed25519') throw new TypeError('an Ed25519 key pair is required');
  }

  async sign(message: Uint8Array): Promise<Buffer> {
    return edSign(null, message, this.privateKey);
  }
}

/** The raw 32 bytes of an Ed25519 public key (what signed notes and key ids are built from). */
export function rawEd25519PublicKey(k: KeyObject): Buffer {
  const jwk = k.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}
