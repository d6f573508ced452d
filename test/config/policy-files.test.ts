/** Policy files that cannot be used name the file, and the line:column of a syntax error or the field path. */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lineColumn, loadPolicy, PolicyFileError } from '../../src/config/policy.js';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { tempDir } from '../helpers/gateway-harness.js';

function files() {
  const dir = tempDir('linkgw-policy-');
  const agenciesFile = join(dir, 'agencies.json');
  const legalBasisFile = join(dir, 'legal-basis.json');
  copyFileSync(join(PACKAGE_ROOT, 'config', 'agencies.json'), agenciesFile);
  copyFileSync(join(PACKAGE_ROOT, 'config', 'legal-basis.json'), legalBasisFile);
  return { agenciesFile, legalBasisFile };
}

function failure(src: { agenciesFile: string; legalBasisFile: string }): PolicyFileError {
  try {
    loadPolicy(src);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyFileError);
    return e as PolicyFileError;
  }
  throw new Error('expected the policy to be refused');
}

describe('policy files', () => {
  it('loads the shipped files', () => {
    expect(loadPolicy(files()).registry.agencies.size).toBeGreaterThan(3);
  });

  it('names the file and line:column of a JSON syntax error', () => {
    const f = files();
    const text = readFileSync(f.agenciesFile, 'utf8');
    // Drop the comma after the first "id" value: the parser stops at the quote of the next key.
    const m = /"id": "[a-z]+",/.exec(text)!;
    const broken = text.slice(0, m.index + m[0].length - 1) + text.slice(m.index + m[0].length);
    const stop = broken.indexOf('"', m.index + m[0].length - 1);
    const { line, column } = lineColumn(broken, stop);
    writeFileSync(f.agenciesFile, broken);
    const e = failure(f);
    expect(e.file).toBe(f.agenciesFile);
    expect(e.message).toMatch(new RegExp(`agencies\\.json:${line}:${column}: not valid JSON: Expected ',' or '}' after property value$`));
    // A truncated file points at its end.
    writeFileSync(f.legalBasisFile, '{\n  "version": "x",\n  "rows": [');
    writeFileSync(f.agenciesFile, text);
    expect(failure(f).message).toMatch(/legal-basis\.json:3:12: not valid JSON: Unexpected end of JSON input$/);
  });

  it('names the file and the field path of a schema error', () => {
    const f = files();
    const doc = JSON.parse(readFileSync(f.agenciesFile, 'utf8')) as { agencies: Record<string, unknown>[] };
    doc.agencies[1]!.role = ['requester'];
    writeFileSync(f.agenciesFile, JSON.stringify(doc, null, 2));
    expect(failure(f).message).toMatch(/agencies\.json: registry\.agencies\[1\]: unknown field "role"$/);
    delete doc.agencies[1]!.role;
    const provider = doc.agencies.findIndex((a) => a.provider !== undefined);
    doc.agencies[provider]!.provider = { address: 'tax.example:70001' };
    writeFileSync(f.agenciesFile, JSON.stringify(doc, null, 2));
    expect(failure(f).message).toMatch(new RegExp(`agencies\\.json: registry\\.agencies\\[${provider}\\]\\.provider\\.address: "70001" is not a port`));
  });

  it('gives line and column from an offset', () => {
    expect(lineColumn('ab\ncd', 0)).toEqual({ line: 1, column: 1 });
    expect(lineColumn('ab\ncd', 4)).toEqual({ line: 2, column: 2 });
  });
});
