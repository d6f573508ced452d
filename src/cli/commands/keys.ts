/**
 * `linkgw keys COMMAND`: the keyring in $LINKGW_DATA_DIR/keyring.json. To add a command (stage, promote,
 * init-hsm…), add an entry to `commands` with `command({ summary, usage, args, options, run })`.
 */
import { join } from 'node:path';
import { settingsFromEnv } from '../../config/settings.js';
import { describeKeyring, rotateMasterKey, rotateSealKey } from '../../keys/keyring-file.js';
import { command, type CommandGroup, type OptionSpecs } from '../command.js';
import { Printer } from '../output.js';

const JSON_OPTION = { json: { type: 'boolean', doc: 'one JSON object instead of the human format' } } as const satisfies OptionSpecs;
const keyringPath = () => join(settingsFromEnv().dataDir, 'keyring.json');

const show = command({
  summary: 'key versions and sealing public keys (never a secret)',
  args: { min: 0, max: 0 },
  options: JSON_OPTION,
  run: async (inv) => {
    const d = describeKeyring(keyringPath());
    const p = new Printer(inv.options.json);
    if (inv.options.json) return p.object(d);
    const { sealingKeys, ...rest } = d as { sealingKeys?: Record<string, { createdAt?: string; publicKey?: string }> } & Record<string, unknown>;
    p.object(Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v])));
    if (sealingKeys)
      p.rows(
        // The PEM body on one line: the base64 of the SubjectPublicKeyInfo.
        Object.entries(sealingKeys).map(([id, k]) => ({ id, createdAt: k.createdAt, publicKey: k.publicKey?.replace(/-----[^-]+-----|\s/g, '') })),
        [
          ['id', 'SEALING KEY'],
          ['createdAt', 'CREATED AT'],
          ['publicKey', 'PUBLIC KEY'],
        ],
      );
  },
});

const rotate = command({
  summary: 'add a code key version and issue new codes under it (old codes keep working)',
  args: { min: 0, max: 0 },
  options: JSON_OPTION,
  run: async (inv) => {
    const v = rotateMasterKey(keyringPath());
    const note = 'restart or roll the gateways to issue under it; old codes keep working';
    if (inv.options.json) new Printer(true).object({ currentCodeKeyVersion: v, note });
    else process.stdout.write(`code key version ${v} is current: ${note}\n`);
  },
});

const rotateSeal = command({
  summary: 'add a record sealing key (old public keys stay for verification)',
  args: { min: 0, max: 0 },
  options: JSON_OPTION,
  run: async (inv) => {
    const id = rotateSealKey(keyringPath());
    const note = 'restart or roll the gateways to seal with it';
    if (inv.options.json) new Printer(true).object({ currentSealingKey: id, note });
    else process.stdout.write(`sealing key ${id} is current: ${note}\n`);
  },
});

export const keysGroup: CommandGroup = {
  name: 'keys',
  summary: 'the keyring in $LINKGW_DATA_DIR/keyring.json: code key versions and record sealing keys',
  commands: { show, rotate, 'rotate-seal': rotateSeal },
};
