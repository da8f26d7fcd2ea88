// In Node, the SDK seals and opens with node:crypto (OpenSSL) rather than the pure-JS
// @noble code every browser uses: an AES-GCM open of a ~300-byte token chunk costs about
// 12 µs instead of ~47, and X25519 and HKDF for each request's encapsulation are faster too. Nothing
// had installed it when the SDK was used as a library (only the CLI did), so every token
// paid for the JS AEAD. Browsers are left alone: this module imports nothing from Node, and
// node:crypto is loaded only where `process.versions.node` says Node is running.
import { aeadBackendName, hmacBackendName, setAeadBackend, setHmacBackend, setX25519Backend, x25519BackendName } from '../transport/hpke.js';
import { isNode } from './runtime.js';
import { createNodeAeadBackend, createNodeHmacBackend, createNodeX25519Backend, type NodeCryptoLike, type NodeHmacCryptoLike, type NodeKeyCryptoLike } from '../transport/node-backend.js';

/** The module to load: a variable, so browser bundlers do not try to resolve or inline it. */
const NODE_CRYPTO = 'node:crypto';

let installing: Promise<void> | undefined;

/**
 * Installs the node:crypto backends, once per process, when running in Node and when no
 * backend was chosen by the host already (its choice stands). Anything that fails leaves the
 * portable implementation in place: it is slower, never less correct.
 */
export function useNativeCryptoIfNode(): Promise<void> {
  installing ??= install();
  return installing;
}

async function install(): Promise<void> {
  if (!isNode()) return;
  let mod: NodeCryptoLike & NodeKeyCryptoLike & NodeHmacCryptoLike;
  try {
    mod = (await import(/* @vite-ignore */ NODE_CRYPTO)) as NodeCryptoLike & NodeKeyCryptoLike & NodeHmacCryptoLike;
  } catch {
    return;
  }
  installBackends(mod);
}

/** Installs whichever of the three backends is still the portable default; a backend that fails to build is skipped. */
export function installBackends(mod: NodeCryptoLike & NodeKeyCryptoLike & Partial<NodeHmacCryptoLike>): void {
  if (aeadBackendName() === 'noble') {
    try {
      setAeadBackend(createNodeAeadBackend(mod));
    } catch {
      // not a usable node:crypto: keep @noble
    }
  }
  if (x25519BackendName() === 'noble') {
    try {
      setX25519Backend(createNodeX25519Backend(mod)); // runs an RFC 7748 self-test first
    } catch {
      // keep @noble
    }
  }
  if (hmacBackendName() === 'noble') {
    try {
      setHmacBackend(createNodeHmacBackend(mod as NodeHmacCryptoLike));
    } catch {
      // keep @noble
    }
  }
}
