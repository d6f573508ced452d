/** Every command group of `linkgw`, in the order `linkgw --help` lists them. A new group is one more entry. */
import type { CommandGroup } from '../command.js';
import { clientGroup } from './client.js';
import { healthGroup } from './health.js';
import { keysGroup } from './keys.js';
import { migrateGroup } from './migrate.js';
import { pkiGroup } from './pki.js';
import { portalGroup } from './portal.js';
import { recordsGroup } from './records.js';
import { serveGroup } from './serve.js';
import { simulateGroup } from './simulate.js';
import { witnessGroup } from './witness.js';

export const GROUPS: readonly CommandGroup[] = [serveGroup, simulateGroup, healthGroup, keysGroup, pkiGroup, recordsGroup, migrateGroup, witnessGroup, portalGroup, clientGroup];
