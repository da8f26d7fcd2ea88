// In Node the SDK uses node:crypto for its AEAD, X25519 and HMAC without being told to (the
// library path had no one to call useNodeCrypto); a host's own choice stands; the page
// bundle for browsers still has no static Node import. Test order matters: the first test
// sees this process's untouched defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nodeCrypto from 'node:crypto';
import { SealedClient, SealedClientError } from '../client/sdk.js';
import { installBackends } from '../client/native-crypto.js';
import { aeadBackendName, hmacBackendName, setAeadBackend, setHmacBackend, setX25519Backend, x25519BackendName, type AeadBackend } from '../transport/hpke.js';
import { buildPageBundle } from '../client/node/page-bundle.js';

test('connect installs node:crypto in Node, before anything is sent', async () => {
  assert.equal(aeadBackendName(), 'noble');
  assert.equal(x25519BackendName(), 'noble');
  assert.equal(hmacBackendName(), 'noble');
  const refused: typeof fetch = async () => {
    throw new TypeError('fetch failed');
  };
  await assert.rejects(SealedClient.connect('http://127.0.0.1:9/', { fetch: refused }), (e: unknown) => e instanceof SealedClientError);
  assert.equal(aeadBackendName(), 'node:crypto');
  assert.equal(x25519BackendName(), 'node:crypto');
  assert.equal(hmacBackendName(), 'node:crypto');
});

test("a backend the host installed is kept; a module that is not node:crypto changes nothing", () => {
  const mine: AeadBackend = { name: 'host-aead', seal: () => new Uint8Array(0), open: () => new Uint8Array(0) };
  try {
    setAeadBackend(mine);
    setX25519Backend(undefined);
    setHmacBackend(undefined);
    installBackends(nodeCrypto);
    assert.equal(aeadBackendName(), 'host-aead');
    assert.equal(x25519BackendName(), 'node:crypto');
    assert.equal(hmacBackendName(), 'node:crypto');

    setAeadBackend(undefined);
    setX25519Backend(undefined);
    setHmacBackend(undefined);
    installBackends({} as typeof nodeCrypto);
    assert.equal(aeadBackendName(), 'noble');
    assert.equal(x25519BackendName(), 'noble');
    assert.equal(hmacBackendName(), 'noble');
  } finally {
    setAeadBackend(undefined);
    setX25519Backend(undefined);
    setHmacBackend(undefined);
  }
});

test('the browser bundle loads node:crypto only dynamically, behind the Node check', async () => {
  const script = await buildPageBundle();
  assert.doesNotMatch(script, /\bfrom\s*["']node:|\bimport\s*["']node:|require\(|import\(\s*["']node:/);
  assert.match(script, /"node:crypto"/, 'the specifier is a string the bundler left alone');
});
