// The verifiers must run in browsers (docs/ARCHITECTURE.md): no Node-only imports or globals in the
// PKI and TDX verification code or the embedded Intel root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

const ROOT = new URL('../enclave/', import.meta.url);

test('enclave/pki, enclave/tdx and the Intel root module use no node: imports, Buffer or process', () => {
  const files = [
    ...readdirSync(new URL('pki/', ROOT)).map((f) => `pki/${f}`),
    ...readdirSync(new URL('tdx/', ROOT)).map((f) => `tdx/${f}`),
    'roots/intel-sgx-root.ts',
  ].filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 10);
  for (const f of files) {
    // Comments may mention Node; code may not.
    const src = readFileSync(new URL(f, ROOT), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '');
    assert.doesNotMatch(src, /from ['"]node:|require\(|\bBuffer\b|\bprocess\./, f);
    for (const m of src.matchAll(/from '([^']+)'/g)) assert.match(m[1], /^\.\.?\//, `${f} imports ${m[1]}`);
  }
});
