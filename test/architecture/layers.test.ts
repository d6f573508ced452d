/**
 * The layering rules of docs/architecture.md, checked on the sources (as X-Road tests its architecture rules):
 *
 *  - src/core/ is pure: it imports only node:crypto and other core modules.
 *  - src/service/ composes core and ports: at run time it imports only core, its own files, the generated
 *    messages, @bufbuild/protobuf and node:crypto; anything else (an adapter's types) only with `import type`.
 *  - Nothing but the gRPC adapter, the CLI and the composition root imports @grpc/grpc-js (providers and
 *    benchmarks' clients aside).
 *  - src/portal/web/ is the page's code, run by the browser: it imports only its own files (no node:, no
 *    package), so the verifier the page uses is exactly what the tests run.
 *  - src/portal/ (the citizen portal's server) reaches the gateway only through its port: it imports no gRPC,
 *    no CLI, no service, record store, engine or key code; only core, config, gen, log, node:, protobuf and
 *    @simplewebauthn/server (passkeys).
 *  - src/gen/ is generated: nothing in it is edited by hand (checked by CI's `buf generate` diff).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

interface Import {
  readonly file: string;
  readonly from: string;
  readonly typeOnly: boolean;
}

function imports(file: string): Import[] {
  const src = readFileSync(file, 'utf8');
  const out: Import[] = [];
  for (const m of src.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?\sfrom\s+'([^']+)'/gms)) out.push({ file: relative('src', file), from: m[3]!, typeOnly: m[2] !== undefined });
  for (const m of src.matchAll(/^\s*import\s+'([^']+)'/gm)) out.push({ file: relative('src', file), from: m[1]!, typeOnly: false });
  return out;
}

const all = files('src').filter((f) => !f.startsWith(join('src', 'gen')));

describe('layers', () => {
  it('core imports only node:crypto and core', () => {
    const bad = all
      .filter((f) => f.startsWith(join('src', 'core')))
      .flatMap(imports)
      .filter((i) => !(i.from === 'node:crypto' || (i.from.startsWith('./') && !i.from.includes('/..'))));
    expect(bad).toEqual([]);
  });

  it('services import adapters only as types', () => {
    const allowed = (from: string) => from === 'node:crypto' || from.startsWith('./') || from.startsWith('../core/') || from.startsWith('../gen/') || from.startsWith('@bufbuild/protobuf');
    const bad = all
      .filter((f) => f.startsWith(join('src', 'service')))
      .flatMap(imports)
      .filter((i) => !i.typeOnly && !allowed(i.from));
    expect(bad).toEqual([]);
  });

  it('services never import the gRPC adapter, even as types', () => {
    const bad = all
      .filter((f) => f.startsWith(join('src', 'service')))
      .flatMap(imports)
      .filter((i) => i.from.includes('/grpc/') || i.from.startsWith('@grpc/'));
    expect(bad).toEqual([]);
  });

  it('grpc-js stays in the gRPC adapter, providers, the CLI and the composition root', () => {
    const owners = ['grpc', 'providers', 'cli'].map((d) => join('src', d));
    const bad = all
      .filter((f) => !owners.some((o) => f.startsWith(o)) && f !== join('src', 'gateway.ts'))
      .flatMap(imports)
      .filter((i) => i.from === '@grpc/grpc-js' && !i.typeOnly);
    expect(bad).toEqual([]);
  });

  it('the portal page imports only its own files', () => {
    const bad = all
      .filter((f) => f.startsWith(join('src', 'portal', 'web')))
      .flatMap(imports)
      .filter((i) => !(i.from.startsWith('./') && !i.from.includes('/..')));
    expect(bad).toEqual([]);
  });

  it('the portal server reaches the gateway only through its port', () => {
    const allowed = (from: string) =>
      from.startsWith('node:') || from.startsWith('@bufbuild/protobuf') || from === '@simplewebauthn/server' || (from.startsWith('./') && !from.includes('/..')) || /^\.\.\/(core|config|gen|log)\//.test(from);
    const bad = all
      .filter((f) => f.startsWith(join('src', 'portal')) && !f.startsWith(join('src', 'portal', 'web')))
      .flatMap(imports)
      .filter((i) => !allowed(i.from));
    expect(bad).toEqual([]);
  });
});
