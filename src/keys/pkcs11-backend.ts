/**
 * The PKCS#11 backend: the keyring's secrets are wrapped under an AES-256 key that lives in the token
 * (sensitive, never extractable, usable only to wrap and unwrap), and its sealing keys are Ed25519 key pairs
 * generated in the token, whose private halves are sensitive and never extractable: they sign there and
 * nowhere else.
 *
 * Why the code secrets are unwrapped into memory rather than used inside the token: a code costs one AES block
 * under a key derived per (version, agency) with HKDF, about 2 µs in process; a PKCS#11 round trip per code
 * (and HKDF inside a token, which few support) would cost more than the whole request. So the token guards the
 * secrets at rest and at start (only a process holding the PIN can unwrap them), and the running gateway's
 * memory holds them, as it must to compute codes. What the data directory and a database dump then give an
 * attacker: wrapped blobs, public keys and records, and no key (docs/threat-model.md).
 *
 * Wrapping is CKM_AES_KEY_WRAP (RFC 3394 / NIST SP 800-38F KW, with its 64-bit integrity check): every secret
 * is 32 bytes, and KW is the wrapping mechanism HSMs most widely implement. To wrap a secret the backend puts
 * it in the token as a short-lived session object (or has the token generate it), wraps it and destroys the
 * object; to unwrap, the reverse. KW binds no slot name, but every working key is derived with HKDF under a
 * label of its one purpose (`key-derivation.ts`), so a secret moved to another slot yields unrelated keys,
 * never a key of the other purpose.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import type { PKCS11 } from 'pkcs11js';
import type { KeyringSettings } from '../config/settings.js';
import { readSecretSource, type HeldSealKey, type KeyBackend } from './key-backend.js';
import { KeyringError } from './keyring-error.js';
import type { Protection, SealKeyEntry } from './keyring-document.js';
import { CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, ED25519_NAME, ED25519_OID, Pkcs11Signer, ed25519PublicKeyFromEcPoint } from './pkcs11-signer.js';
import { codeOf, errorText, pkcs11, TokenSession, type Handle, type Template } from './pkcs11-token.js';
import type { Signer } from './signer.js';

type Pkcs11Protection = Extract<Protection, { kind: 'pkcs11' }>;
type Pkcs11Settings = Extract<KeyringSettings, { backend: 'pkcs11' }>;

const WRAPPING_KEY_LABEL = 'linkgw keyring wrapping key';

function tokenConfig(s: Pkcs11Settings): { module: string; token: string; pin: string } {
  return { module: s.module, token: s.token, pin: readSecretSource(s.pin, 'PKCS#11 user PIN', 'LINKGW_PKCS11_PIN') };
}

export class Pkcs11Backend implements KeyBackend {
  private constructor(
    readonly protection: Pkcs11Protection,
    private readonly token: TokenSession,
    private readonly kek: Handle,
  ) {}

  /** Opens the token and finds the wrapping key this keyring was made with. */
  static async open(s: Pkcs11Settings, protection: Pkcs11Protection): Promise<Pkcs11Backend> {
    if (protection.mechanism !== 'CKM_AES_KEY_WRAP') throw new KeyringError('format', `the keyring is wrapped with ${String(protection.mechanism)}, which this version does not use`);
    const token = TokenSession.open(tokenConfig(s));
    try {
      const p = pkcs11();
      const kek = await token.run(() =>
        token.find([
          { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
          { type: p.CKA_ID, value: Buffer.from(protection.wrappingKeyId, 'hex') },
        ]),
      );
      if (kek.length !== 1)
        throw new KeyringError(
          'token-key-missing',
          `PKCS#11 token "${s.token}" has ${kek.length === 0 ? 'no' : 'more than one'} wrapping key with id ${protection.wrappingKeyId}: this keyring was wrapped in another token (it names "${protection.token}")`,
        );
      return new Pkcs11Backend({ ...protection, token: s.token }, token, kek[0]!);
    } catch (e) {
      await token.close();
      throw e;
    }
  }

  /** Creates a new wrapping key in the token: the start of an HSM keyring (`initHsm`). */
  static async create(s: Pkcs11Settings): Promise<Pkcs11Backend> {
    const token = TokenSession.open(tokenConfig(s));
    try {
      const p = pkcs11();
      const id = randomBytes(16);
      const kek = await token.run((lib, session) =>
        lib.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, [
          { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
          { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
          { type: p.CKA_VALUE_LEN, value: 32 },
          { type: p.CKA_TOKEN, value: true },
          { type: p.CKA_PRIVATE, value: true },
          { type: p.CKA_SENSITIVE, value: true },
          { type: p.CKA_EXTRACTABLE, value: false },
          { type: p.CKA_MODIFIABLE, value: false },
          { type: p.CKA_WRAP, value: true },
          { type: p.CKA_UNWRAP, value: true },
          { type: p.CKA_ENCRYPT, value: false },
          { type: p.CKA_DECRYPT, value: false },
          { type: p.CKA_SIGN, value: false },
          { type: p.CKA_LABEL, value: WRAPPING_KEY_LABEL },
          { type: p.CKA_ID, value: id },
        ]),
      );
      return new Pkcs11Backend({ kind: 'pkcs11', token: s.token, wrappingKeyId: id.toString('hex'), mechanism: 'CKM_AES_KEY_WRAP' }, token, kek);
    } catch (e) {
      await token.close();
      throw e instanceof KeyringError ? e : new KeyringError('pkcs11', `cannot create the wrapping key in PKCS#11 token "${s.token}": ${errorText(e)}`, { cause: e });
    }
  }

  async protect(slot: string, secret: Uint8Array): Promise<string> {
    const p = pkcs11();
    return this.#op(`wrapping ${slot}`, (lib, session) => {
      const obj = lib.C_CreateObject(session, [...sessionSecretTemplate(), { type: p.CKA_VALUE, value: Buffer.from(secret) }]);
      try {
        return this.#wrap(obj);
      } finally {
        lib.C_DestroyObject(session, obj);
      }
    });
  }

  async reveal(slot: string, stored: string): Promise<Buffer> {
    const p = pkcs11();
    return this.#op(`unwrapping ${slot}`, (lib, session) => {
      const obj = lib.C_UnwrapKey(session, { mechanism: p.CKM_AES_KEY_WRAP }, this.kek, Buffer.from(stored, 'base64'), sessionSecretTemplate());
      try {
        const [value] = lib.C_GetAttributeValue(session, obj, [{ type: p.CKA_VALUE }]);
        return Buffer.from(value!.value as Buffer);
      } finally {
        lib.C_DestroyObject(session, obj);
      }
    });
  }

  async newSecret(slot: string): Promise<string> {
    const p = pkcs11();
    return this.#op(`generating ${slot}`, (lib, session) => {
      const obj = lib.C_GenerateKey(session, { mechanism: p.CKM_GENERIC_SECRET_KEY_GEN }, [...sessionSecretTemplate(), { type: p.CKA_VALUE_LEN, value: 32 }]);
      try {
        return this.#wrap(obj);
      } finally {
        lib.C_DestroyObject(session, obj);
      }
    });
  }

  async newSealKey(id: string): Promise<HeldSealKey> {
    const p = pkcs11();
    const ckaId = randomBytes(16);
    const label = `linkgw ${id}`;
    return this.#op(`generating sealing key ${id}`, (lib, session) => {
      const generate = (params: Buffer) =>
        lib.C_GenerateKeyPair(
          session,
          { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN },
          [
            { type: p.CKA_TOKEN, value: true },
            { type: p.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
            { type: p.CKA_EC_PARAMS, value: params },
            { type: p.CKA_VERIFY, value: true },
            { type: p.CKA_LABEL, value: label },
            { type: p.CKA_ID, value: ckaId },
          ],
          [
            { type: p.CKA_TOKEN, value: true },
            { type: p.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
            { type: p.CKA_PRIVATE, value: true },
            { type: p.CKA_SENSITIVE, value: true },
            { type: p.CKA_EXTRACTABLE, value: false },
            { type: p.CKA_SIGN, value: true },
            { type: p.CKA_DECRYPT, value: false },
            { type: p.CKA_UNWRAP, value: false },
            { type: p.CKA_DERIVE, value: false },
            { type: p.CKA_LABEL, value: label },
            { type: p.CKA_ID, value: ckaId },
          ],
        );
      let pair: { publicKey: Handle; privateKey: Handle };
      try {
        pair = generate(ED25519_OID);
      } catch (e) {
        // PKCS#11 3.0 allows the curve as an OID or as the printable string "edwards25519"; tokens differ.
        const c = codeOf(e);
        if (c !== p.CKR_ATTRIBUTE_VALUE_INVALID && c !== p.CKR_DOMAIN_PARAMS_INVALID && c !== p.CKR_TEMPLATE_INCONSISTENT) throw e;
        pair = generate(ED25519_NAME);
      }
      const [point] = lib.C_GetAttributeValue(session, pair.publicKey, [{ type: p.CKA_EC_POINT }]);
      const publicKey = ed25519PublicKeyFromEcPoint(point!.value as Buffer);
      return { publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(), tokenKeyId: ckaId.toString('hex') };
    });
  }

  async sealSigner(id: string, entry: SealKeyEntry): Promise<Signer> {
    if (!entry.tokenKeyId) {
      // A key from the file before the move into the token. The HSM backend does not sign with file keys.
      throw new KeyringError('format', `sealing key ${id} is not in the token; an HSM keyring seals only with token keys (rotate-seal)`);
    }
    return new Pkcs11Signer(id, createPublicKey(entry.publicKey), this.token, entry.tokenKeyId).init();
  }

  async destroySealKey(id: string, entry: SealKeyEntry): Promise<void> {
    if (!entry.tokenKeyId) return;
    const p = pkcs11();
    await this.#op(`destroying sealing key ${id}`, (lib, session) => {
      for (const h of this.token.find([{ type: p.CKA_ID, value: Buffer.from(entry.tokenKeyId!, 'hex') }])) lib.C_DestroyObject(session, h);
    });
  }

  async close(): Promise<void> {
    await this.token.close();
  }

  #wrap(obj: Handle): string {
    const p = pkcs11();
    return this.token.lib.C_WrapKey(this.token.session, { mechanism: p.CKM_AES_KEY_WRAP }, this.kek, obj, Buffer.alloc(64)).toString('base64');
  }

  #op<T>(what: string, fn: (lib: PKCS11, session: Handle) => T | Promise<T>): Promise<T> {
    return this.token.run(fn).catch((e: unknown) => {
      if (e instanceof KeyringError) throw e;
      throw new KeyringError('pkcs11', `${what} in PKCS#11 token "${this.token.config.token}" failed: ${errorText(e)}`, { cause: e });
    });
  }
}

/** A short-lived, readable session object: how a secret passes through the token to be wrapped or unwrapped. */
function sessionSecretTemplate(): Template {
  const p = pkcs11();
  return [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_GENERIC_SECRET },
    { type: p.CKA_TOKEN, value: false },
    { type: p.CKA_SENSITIVE, value: false },
    { type: p.CKA_EXTRACTABLE, value: true },
  ];
}
