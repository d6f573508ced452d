/**
 * Why a keyring could not be opened or changed. These stop a start (or an operator command) with a message
 * that names the cause and the setting to look at; they never leave the server as a gRPC status. The
 * `problem` is stable for tests and for the command line's exit decisions, the message is for people.
 */
export type KeyringProblem =
  /** No keyring file where one is required (a wrapped or HSM keyring is never created implicitly). */
  | 'missing'
  /** The file is not a keyring this version reads, or breaks an invariant. */
  | 'format'
  /** The settings do not match how the file is protected (passphrase settings on an HSM keyring, …). */
  | 'settings'
  | 'wrong-passphrase'
  /** The PKCS#11 module could not be loaded or initialised. */
  | 'pkcs11-module'
  | 'token-missing'
  | 'wrong-pin'
  | 'pin-locked'
  /** The token is there and the PIN is right, but the key this keyring was wrapped under is not in it. */
  | 'token-key-missing'
  /** Any other PKCS#11 failure (the message carries the CKR_ code). */
  | 'pkcs11';

export class KeyringError extends Error {
  override readonly name = 'KeyringError';
  constructor(
    readonly problem: KeyringProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
