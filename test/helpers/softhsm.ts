/**
 * SoftHSM2 for tests: a token directory and configuration of this test file's own, tokens made with
 * `softhsm2-util`, and the LINKGW_PKCS11_* settings for each. (Debian package `softhsm2`; `.ci/run` installs it.)
 *
 * SoftHSM reads SOFTHSM2_CONF and its token directory when the module is initialised, which happens once per
 * process while any keyring holds a session. So: make every token a test needs first, then open keyrings,
 * and close them all (stop every gateway) before making the next token.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './gateway-harness.js';

const MODULE_CANDIDATES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so'];

export function softHsmModule(): string {
  const found = MODULE_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw new Error('libsofthsm2.so not found: install the Debian package softhsm2 (.ci/run does)');
  return found;
}

export interface SoftHsmToken {
  readonly label: string;
  readonly pin: string;
  /** LINKGW_* settings that open this token (PIN from the environment). */
  readonly env: Record<string, string>;
}

export interface SoftHsm {
  readonly dir: string;
  readonly module: string;
  token(label: string, pin?: string): SoftHsmToken;
  /** Removes the token directory. */
  remove(): void;
}

/** A SoftHSM2 of this process's own; sets SOFTHSM2_CONF for the process (SoftHSM reads it at initialisation). */
export function softHsm(): SoftHsm {
  const dir = tempDir('linkgw-softhsm-');
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  const module = softHsmModule();
  return {
    dir,
    module,
    token(label, pin = '4711-0815') {
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', 'so-pin-1234', '--pin', pin], {
        env: { ...process.env, SOFTHSM2_CONF: conf },
        stdio: 'pipe',
      });
      return { label, pin, env: { LINKGW_PKCS11_MODULE: module, LINKGW_PKCS11_TOKEN: label, LINKGW_PKCS11_PIN: pin } };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
