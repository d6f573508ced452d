/**
 * One logged-in session on a PKCS#11 token, through `pkcs11js` (PeculiarVentures' binding, the one
 * graphene-pk11 builds on; compiled at install, Node ≥ 18).
 *
 * PKCS#11 state is per process: a module is initialised once however many keyrings use it, and login is per
 * token, not per session. So modules are shared and counted here and finalised when the last session closes
 * (which also ends the login; `C_Logout` would log out every other session of the process on that token).
 * A consequence to know: a second session on a token this process is already logged in to is not asked for
 * the PIN again (`CKR_USER_ALREADY_LOGGED_IN`).
 *
 * A session runs one operation at a time, and the asynchronous calls (`C_SignAsync`) run on libuv's thread
 * pool, so every use of the session goes through `run`, which queues them.
 *
 * A session can be lost while the gateway runs (a network HSM restarts, the token is re-inserted, another
 * part of the process calls C_CloseAllSessions). `reconnect` opens and logs in a new one with the PIN it kept
 * (the secrets it unlocks are in memory anyway); the signer calls it once on such an error, then retries.
 */
import { createRequire } from 'node:module';
import type * as Pkcs11Types from 'pkcs11js';
import { KeyringError } from './keyring-error.js';

const require = createRequire(import.meta.url);
type Pkcs11Module = typeof Pkcs11Types;
let binding: Pkcs11Module | undefined;

/** The binding, loaded on first use (the plain keyring never loads the native module). */
export function pkcs11(): Pkcs11Module {
  return (binding ??= require('pkcs11js') as Pkcs11Module);
}

export type Handle = Buffer;
export type Template = Pkcs11Types.Template;

interface LoadedModule {
  readonly lib: Pkcs11Types.PKCS11;
  users: number;
  /** False when something else in the process had initialised the module: then it is not ours to finalise. */
  readonly owned: boolean;
}

const modules = new Map<string, LoadedModule>();

function acquire(path: string): LoadedModule {
  let m = modules.get(path);
  if (!m) {
    const p = pkcs11();
    const lib = new p.PKCS11();
    try {
      lib.load(path);
    } catch (e) {
      throw new KeyringError('pkcs11-module', `cannot load the PKCS#11 module ${path} (LINKGW_PKCS11_MODULE): ${errorText(e)}`, { cause: e });
    }
    let owned = true;
    try {
      lib.C_Initialize({ flags: p.CKF_OS_LOCKING_OK });
    } catch (e) {
      if (codeOf(e) !== p.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        lib.close();
        throw new KeyringError('pkcs11-module', `the PKCS#11 module ${path} failed to initialise: ${errorText(e)}`, { cause: e });
      }
      owned = false;
    }
    m = { lib, users: 0, owned };
    modules.set(path, m);
  }
  m.users++;
  return m;
}

function release(path: string): void {
  const m = modules.get(path);
  if (!m || --m.users > 0) return;
  modules.delete(path);
  try {
    if (m.owned) m.lib.C_Finalize();
  } finally {
    m.lib.close();
  }
}

export interface TokenConfig {
  readonly module: string;
  readonly token: string;
  readonly pin: string;
}

export class TokenSession {
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #session: Handle;
  readonly #pin: string;
  readonly config: Omit<TokenConfig, 'pin'>;

  private constructor(
    readonly lib: Pkcs11Types.PKCS11,
    session: Handle,
    cfg: TokenConfig,
  ) {
    this.#session = session;
    this.#pin = cfg.pin;
    this.config = { module: cfg.module, token: cfg.token };
  }

  get session(): Handle {
    return this.#session;
  }

  /** Finds the token by label, opens a read-write session and logs in as the user; every failure names its cause. */
  static open(cfg: TokenConfig): TokenSession {
    const { lib } = acquire(cfg.module);
    try {
      return new TokenSession(lib, login(lib, cfg), cfg);
    } catch (e) {
      release(cfg.module);
      throw e;
    }
  }

  /**
   * Replaces a lost session with a new, logged-in one. Call it only inside `run` (the session is then idle).
   * Object handles may change with the session: find objects again afterwards.
   */
  reconnect(): void {
    try {
      this.lib.C_CloseSession(this.#session);
    } catch {
      // Already gone: that is why we are here.
    }
    this.#session = login(this.lib, { ...this.config, pin: this.#pin });
  }

  /** Runs `fn` when the session is free: one operation at a time, in call order. */
  run<T>(fn: (lib: Pkcs11Types.PKCS11, session: Handle) => T | Promise<T>): Promise<T> {
    const next = this.#queue.then(() => {
      if (this.#closed) throw new KeyringError('pkcs11', `the PKCS#11 session on token "${this.config.token}" is closed`);
      return fn(this.lib, this.#session);
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Objects matching `template` (at most `max`). */
  find(template: Template, max = 16): Handle[] {
    this.lib.C_FindObjectsInit(this.#session, template);
    try {
      return this.lib.C_FindObjects(this.#session, max);
    } finally {
      this.lib.C_FindObjectsFinal(this.#session);
    }
  }

  /** Waits for queued operations, then closes the session (and the module if this was its last user). */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    try {
      this.lib.C_CloseSession(this.#session);
    } catch (e) {
      // A session the token already dropped needs no closing.
      if (!isSessionLost(e)) throw e;
    } finally {
      release(this.config.module);
    }
  }
}

/** Errors after which a new session (and login) may succeed. */
export function isSessionLost(e: unknown): boolean {
  const p = pkcs11();
  const c = codeOf(e);
  return (
    c !== undefined &&
    [p.CKR_SESSION_HANDLE_INVALID, p.CKR_SESSION_CLOSED, p.CKR_USER_NOT_LOGGED_IN, p.CKR_DEVICE_REMOVED, p.CKR_TOKEN_NOT_PRESENT, p.CKR_OBJECT_HANDLE_INVALID, p.CKR_KEY_HANDLE_INVALID].includes(c)
  );
}

/** Finds the token by label, opens a read-write session and logs in as the user. */
function login(lib: Pkcs11Types.PKCS11, cfg: TokenConfig): Handle {
  const p = pkcs11();
  let session: Handle | undefined;
  try {
    const present = lib.C_GetSlotList(true).map((slot) => ({ slot, label: lib.C_GetTokenInfo(slot).label.trimEnd() }));
    const match = present.filter((t) => t.label === cfg.token);
    if (match.length === 0) {
      const labels = present.map((t) => JSON.stringify(t.label)).filter((l) => l !== '""');
      throw new KeyringError(
        'token-missing',
        `no PKCS#11 token labelled "${cfg.token}" (LINKGW_PKCS11_TOKEN) in ${cfg.module}; tokens present: ${labels.length ? labels.join(', ') : 'none'}`,
      );
    }
    if (match.length > 1) throw new KeyringError('token-missing', `${match.length} PKCS#11 tokens are labelled "${cfg.token}"; labels must be unique`);
    session = lib.C_OpenSession(match[0]!.slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    try {
      lib.C_Login(session, p.CKU_USER, cfg.pin);
    } catch (e) {
      const code = codeOf(e);
      if (code === p.CKR_PIN_INCORRECT || code === p.CKR_PIN_LEN_RANGE)
        throw new KeyringError('wrong-pin', `the PKCS#11 token "${cfg.token}" refused the PIN: wrong PIN (${errorText(e)}); check LINKGW_PKCS11_PIN_FILE`, { cause: e });
      if (code === p.CKR_PIN_LOCKED)
        throw new KeyringError('pin-locked', `the user PIN of PKCS#11 token "${cfg.token}" is locked after too many wrong tries (${errorText(e)}); the token's security officer must reset it`, { cause: e });
      if (code === p.CKR_USER_PIN_NOT_INITIALIZED)
        throw new KeyringError('wrong-pin', `the PKCS#11 token "${cfg.token}" has no user PIN set yet (${errorText(e)})`, { cause: e });
      if (code !== p.CKR_USER_ALREADY_LOGGED_IN) throw new KeyringError('pkcs11', `login to PKCS#11 token "${cfg.token}" failed: ${errorText(e)}`, { cause: e });
    }
    return session;
  } catch (e) {
    if (session) lib.C_CloseSession(session);
    if (e instanceof KeyringError) throw e;
    throw new KeyringError('pkcs11', `PKCS#11 token "${cfg.token}" in ${cfg.module}: ${errorText(e)}`, { cause: e });
  }
}

export function codeOf(e: unknown): number | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
}

/** The CKR_ name and code of a binding error, or its message. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return codeOf(e) ? `${e.message}, 0x${codeOf(e)!.toString(16)}` : e.message;
  return String(e);
}
