/**
 * `linkgw_build_info{version,revision,node_version} 1`: which build each replica runs, to join onto other
 * series (`* on (instance) group_left (version) linkgw_build_info`) and to watch a rollout progress.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gauge, type Registry } from 'prom-client';

export interface BuildInfo {
  readonly version: string;
  /** The source revision (a git commit), or `unknown` when the build did not record one. */
  readonly revision: string;
  readonly nodeVersion: string;
}

/**
 * The build of the package at `root`: the version from package.json, the revision from a `REVISION` file
 * beside it (one line, written by the image build: `git rev-parse HEAD > REVISION`), Node's version.
 */
export function readBuildInfo(root: string): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown };
  const revFile = join(root, 'REVISION');
  const revision = existsSync(revFile) ? readFileSync(revFile, 'utf8').trim() : '';
  return {
    version: typeof pkg.version === 'string' ? pkg.version : 'unknown',
    // A label value from a file: only the characters of a commit id or tag, bounded.
    revision: /^[A-Za-z0-9._-]{1,64}$/.test(revision) ? revision : 'unknown',
    nodeVersion: process.version,
  };
}

export function registerBuildInfo(registry: Registry, info: BuildInfo): void {
  const g = new Gauge({
    name: 'linkgw_build_info',
    help: 'The build this process runs: version, source revision and Node.js version (always 1).',
    labelNames: ['version', 'revision', 'node_version'],
    registers: [registry],
  });
  g.set({ version: info.version, revision: info.revision, node_version: info.nodeVersion }, 1);
}
