/**
 * `linkgw keys COMMAND`: the keyring ($LINKGW_DATA_DIR/keyring.json, protected as the LINKGW_KEYRING_* /
 * LINKGW_PKCS11_* settings say). Code keys and sealing keys each have states: staged (accepted, not used),
 * current, previous (still accepted) and retired. The rolling-update runbook is stage → roll out → promote →
 * roll out (docs/keys.md). To add a command, add an entry to `commands` with `command({ … })`.
 */
import { settingsFromEnv, type Settings } from '../../config/settings.js';
import { initHsm, promoteCodeKey, promoteSealKey, retireCodeKey, retireSealKey, rotateCodeKey, rotateSealKey, showKeyring, stageCodeKey, stageSealKey, wrapWithPassphrase } from '../../keys/keyring-admin.js';
import { keyringLocation, readSealPublicKeys } from '../../keys/keyring-file.js';
import { describeLogKeys } from '../../records/log-commands.js';
import { command, UsageError, type CommandGroup, type OptionSpecs } from '../command.js';
import { Printer } from '../output.js';

const JSON_OPTION = { json: { type: 'boolean', doc: 'one JSON object instead of the human format' } } as const satisfies OptionSpecs;
const SEAL_OPTION = { ...JSON_OPTION, seal: { type: 'boolean', doc: 'the record sealing key instead of the code key' } } as const satisfies OptionSpecs;
const FROM_OPTION = {
  ...JSON_OPTION,
  'from-passphrase-file': { type: 'string', value: 'FILE', doc: 'the keyring is under a passphrase now: this file holds it' },
} as const satisfies OptionSpecs;

const location = () => keyringLocation(settingsFromEnv());

/** Prints a result as JSON, or a sentence and the note. */
function report(json: boolean, value: Record<string, unknown>, sentence: string): void {
  if (json) new Printer(true).object(value);
  else process.stdout.write(`${sentence}\n`);
}

const show = command({
  summary: 'each key version and its state (staged, current, previous, retired), sealing public keys; never a secret',
  args: { min: 0, max: 0 },
  options: JSON_OPTION,
  run: async (inv) => {
    const s = settingsFromEnv();
    const desc = showKeyring(keyringLocation(s).path);
    // The note verifier keys of this replica's log (what note.NewVerifier and a witness take).
    const log = describeLogKeys(readSealPublicKeys(keyringLocation(s).path), desc.currentSealingKey, s.logOrigin, s.replicaId);
    const d = { ...desc, ...log } as unknown as Record<string, unknown>;
    const p = new Printer(inv.options.json);
    if (inv.options.json) return p.object(d);
    const { sealingKeys, codeKeys, ...rest } = d as { sealingKeys?: unknown; codeKeys?: unknown } & Record<string, unknown>;
    p.object(Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : v])));
    const rows = (v: unknown) => (Array.isArray(v) ? v : Object.entries((v ?? {}) as Record<string, object>).map(([id, x]) => ({ id, ...x }))) as Record<string, unknown>[];
    if (codeKeys)
      p.rows(rows(codeKeys), [
        ['id', 'CODE KEY'],
        ['state', 'STATE'],
        ['createdAt', 'CREATED AT'],
      ]);
    if (sealingKeys)
      p.rows(
        rows(sealingKeys).map((k) => ({ ...k, publicKey: typeof k.publicKey === 'string' ? k.publicKey.replace(/-----[^-]+-----|\s/g, '') : k.publicKey })),
        [
          ['id', 'SEALING KEY'],
          ['state', 'STATE'],
          ['createdAt', 'CREATED AT'],
          ['publicKey', 'PUBLIC KEY'],
        ],
      );
  },
});

const ROLL = 'restart or roll the gateways to use it';

const rotate = command({
  summary: 'add a code key version and make it current at once (one gateway only; a fleet uses stage and promote)',
  args: { min: 0, max: 0 },
  options: JSON_OPTION,
  run: async (inv) => {
    const v = await rotateCodeKey(location());
    report(inv.options.json, { currentCodeKeyVersion: v, note: `${ROLL}; old codes keep working` }, `code key version ${v} is current: ${ROLL}; old codes keep working`);
  },
});

const rotateSeal = command({
  summary: 'add a record sealing key and make it current (old public keys stay for verification)',
  args: { min: 0, max: 0 },
  options: JSON_OPTION,
  run: async (inv) => {
    const id = await rotateSealKey(location());
    report(inv.options.json, { currentSealingKey: id, note: ROLL }, `sealing key ${id} is current: ${ROLL}`);
  },
});

const stage = command({
  summary: 'add a staged key: every gateway accepts it (decodes its codes, verifies its seals) but none uses it yet',
  args: { min: 0, max: 0 },
  options: SEAL_OPTION,
  details: 'Roll the staged keyring out to every replica, then run `linkgw keys promote` (with --seal for the sealing key).',
  run: async (inv) => {
    if (inv.options.seal) {
      const k = await stageSealKey(location());
      return report(inv.options.json, { stagedSealingKey: k.id, publicKey: k.publicKey }, `sealing key ${k.id} is staged: roll it out, then promote it`);
    }
    const v = await stageCodeKey(location());
    report(inv.options.json, { stagedCodeKeyVersion: v }, `code key version ${v} is staged: roll it out, then promote it`);
  },
});

const promote = command({
  summary: 'the newest staged key becomes current; the one before stays valid as previous',
  args: { min: 0, max: 0 },
  options: SEAL_OPTION,
  run: async (inv) => {
    if (inv.options.seal) {
      const r = await promoteSealKey(location());
      return report(inv.options.json, { currentSealingKey: r.current, previousSealingKey: r.previous }, `sealing key ${r.current} is current (${r.previous} is previous): ${ROLL}`);
    }
    const r = await promoteCodeKey(location());
    report(inv.options.json, { currentCodeKeyVersion: r.current, previousCodeKeyVersion: r.previous }, `code key version ${r.current} is current (${r.previous} is previous): ${ROLL}`);
  },
});

const retire = command({
  summary: 'withdraw a key: its secret is erased from the keyring (codes under a retired code key no longer decode)',
  usage: 'VERSION|SEAL-KEY-ID',
  args: { min: 1, max: 1 },
  options: SEAL_OPTION,
  details: 'A retired sealing key keeps its public key, so the seals it made still verify. See docs/keys.md before withdrawing a key.',
  run: async (inv) => {
    const which = inv.args[0]!;
    if (inv.options.seal) {
      await retireSealKey(location(), which);
      return report(inv.options.json, { retiredSealingKey: which }, `sealing key ${which} is retired`);
    }
    const v = Number(which);
    if (!Number.isInteger(v) || v < 1 || v > 255) throw new UsageError('VERSION: a code key version (1..255)');
    await retireCodeKey(location(), v);
    report(inv.options.json, { retiredCodeKeyVersion: v }, `code key version ${v} is retired`);
  },
});

/** How the keyring is unlocked now, for commands that change its protection. */
function currentProtection(s: Settings, fromPassphraseFile: string | undefined): Settings['keyring'] {
  return fromPassphraseFile ? { backend: 'passphrase', passphrase: { file: fromPassphraseFile } } : { backend: 'plain' };
}

const wrap = command({
  summary: 'put the keyring under the passphrase of LINKGW_KEYRING_PASSPHRASE(_FILE) (or change it); codes stay the same',
  args: { min: 0, max: 0 },
  options: FROM_OPTION,
  run: async (inv) => {
    const s = settingsFromEnv();
    if (s.keyring.backend !== 'passphrase') throw new UsageError('set LINKGW_KEYRING_PASSPHRASE_FILE (or LINKGW_KEYRING_PASSPHRASE) to the new passphrase');
    const r = await wrapWithPassphrase(keyringLocation(s).path, s.keyring.passphrase, currentProtection(s, inv.options['from-passphrase-file']));
    report(inv.options.json, { created: r.created, ...r.description }, r.created ? 'a new keyring was made under the passphrase' : 'the keyring is now under the passphrase');
  },
});

const initHsmCommand = command({
  summary: 'create the sealing key and the wrapping key in the PKCS#11 token of LINKGW_PKCS11_*, and wrap the keyring under it',
  args: { min: 0, max: 0 },
  options: FROM_OPTION,
  details: 'Afterwards the data directory holds no key: the sealing key never leaves the token, the other secrets are stored wrapped. See docs/keys.md.',
  run: async (inv) => {
    const s = settingsFromEnv();
    if (s.keyring.backend !== 'pkcs11') throw new UsageError('set LINKGW_PKCS11_MODULE, LINKGW_PKCS11_TOKEN and LINKGW_PKCS11_PIN_FILE first');
    const r = await initHsm(keyringLocation(s).path, s.keyring, currentProtection(s, inv.options['from-passphrase-file']));
    report(inv.options.json, { created: r.created, ...r.description }, r.created ? 'a new keyring was made in the token' : 'the keyring is now under the token');
  },
});

export const keysGroup: CommandGroup = {
  name: 'keys',
  summary: 'the keyring: code key versions and record sealing keys, their states, rotation, HSM and passphrase protection',
  commands: { show, rotate, 'rotate-seal': rotateSeal, stage, promote, retire, wrap, 'init-hsm': initHsmCommand },
};
