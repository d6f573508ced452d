/**
 * The operator tools the deploy tests run (helm, promtool): found on PATH or in .tools/bin. CI must have them
 * (.ci/run installs both and sets TEST_REQUIRE_DEPLOY_TOOLS=1; CI=true does the same), so there a missing
 * tool fails the test instead of skipping it; elsewhere a test that needs a missing tool is skipped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/settings.js';

const truthy = (v: string | undefined) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';

/** Missing tools fail (CI), or skip (a developer machine without them). */
export const TOOLS_REQUIRED = truthy(process.env.CI) || truthy(process.env.TEST_REQUIRE_DEPLOY_TOOLS);

const INSTALL: Record<string, string> = {
  helm: 'GOBIN=$PWD/.tools/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0',
  promtool: "apt-get install prometheus (Debian's package has promtool)",
  'grpc-health-probe': 'GOBIN=$PWD/.tools/bin go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.62',
};

/** The tool's path, or undefined when it is not installed. */
export function findTool(name: string): string | undefined {
  const local = join(PACKAGE_ROOT, '.tools', 'bin', name);
  if (existsSync(local)) return local;
  return spawnSync(name, ['--help'], { stdio: 'ignore' }).error ? undefined : name;
}

/**
 * `it` for a test that needs `name`: runs when the tool is there; when it is not, fails under
 * TOOLS_REQUIRED and is skipped otherwise.
 */
export function itWithTool(name: string): (title: string, fn: () => void | Promise<void>) => void {
  const run = Boolean(findTool(name)) || TOOLS_REQUIRED;
  return (title, fn) => (run ? it(title, fn) : it.skip(title, fn));
}

/** The tool's path; throws (failing the test) when it is missing. */
export function tool(name: string): string {
  const p = findTool(name);
  if (!p) throw new Error(`${name} is required here (CI or TEST_REQUIRE_DEPLOY_TOOLS=1) but not installed: ${INSTALL[name] ?? name}`);
  return p;
}
