// The price of one streamed chunk: sealing a 100-byte plaintext with the
// chunked OHTTP response sealer (server side) and opening it with the chunked
// response reader (client side), through transport/'s own classes, for each
// AEAD the server offers and for both AEAD implementations transport can use:
// @noble/ciphers (pure JS, what a browser client runs) and node:crypto (what
// `sealed` installs for the server and Node clients).
import nodeCrypto from 'node:crypto';
import { randomBytes } from '../transport/bytes.js';
import { ChunkedResponseReader, ChunkedResponseSealer } from '../transport/chunked-ohttp.js';
import {
  AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305, aeadBackendName, CipherSuite, generateKeyPair, setAeadBackend,
} from '../transport/hpke.js';
import { createNodeAeadBackend } from '../transport/node-backend.js';
import { generateKeyConfig, selectSuite } from '../transport/ohttp.js';
import { BenchError } from './errors.js';
import { median } from './stats.js';

export const CHUNK_BYTES = 100;

const AEAD_NAMES: Record<number, string> = {
  [AEAD_AES_128_GCM]: 'aes128gcm',
  [AEAD_AES_256_GCM]: 'aes256gcm',
  [AEAD_CHACHA20_POLY1305]: 'chacha20poly1305',
};

/** A matched sealer/reader pair over a fresh HPKE context, as one request's response would have. */
function pair(aeadId: number): { sealer: ChunkedResponseSealer; reader: ChunkedResponseReader } {
  const suite = new CipherSuite({ aeadId });
  const kp = generateKeyPair();
  const info = new TextEncoder().encode('sealed-inference bench');
  const { enc, context: senderCtx } = suite.setupBaseS(kp.publicKey, info);
  const receiverCtx = suite.setupBaseR(enc, kp.privateKey, info);
  // The server seals the response with the receiver's context; the client opens it with the sender's.
  const sealer = new ChunkedResponseSealer(receiverCtx, enc);
  const reader = new ChunkedResponseReader(senderCtx, enc);
  reader.push(sealer.header);
  return { sealer, reader };
}

/**
 * Microseconds for one seal plus one open of a 100-byte chunk: the median
 * over batches, after a warm-up, so a scheduler hiccup on a shared machine
 * does not become the answer. Checks every round trip, so it times real work.
 */
export function measureSealOpenFor(aeadId: number, batches = 25, perBatch = 200): number {
  const { sealer, reader } = pair(aeadId);
  const pt = randomBytes(CHUNK_BYTES);
  const once = (): void => {
    const out = reader.push(sealer.sealChunk(pt));
    if (out.length !== 1 || out[0].length !== CHUNK_BYTES || out[0][0] !== pt[0] || out[0][CHUNK_BYTES - 1] !== pt[CHUNK_BYTES - 1]) {
      throw new BenchError('bad_output', 'seal/open round trip did not return the plaintext');
    }
  };
  for (let i = 0; i < perBatch * 2; i++) once();
  const perChunkUs: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < perBatch; i++) once();
    perChunkUs.push(((performance.now() - t0) * 1000) / perBatch);
  }
  return median(perChunkUs);
}

/** The AEAD this project's client picks from a server's default key configuration. */
export function defaultAead(): number {
  return selectSuite(generateKeyConfig(1).config).aeadId;
}

const BACKENDS = { noble: undefined, node: createNodeAeadBackend(nodeCrypto) } as const;

/**
 * Per backend and AEAD (keys like `seal_open_us_node_aes128gcm`), and as
 * `default` the cost with the backend this process had in effect (the one the
 * bench's client and `sealed serve` use) and the suite the client picks.
 * Restores the backend it found.
 */
export async function measureSealOpen(opts: { batches?: number; perBatch?: number } = {}): Promise<{ default: number; backend: string; byAead: Record<string, number> }> {
  const inEffect = aeadBackendName() === 'noble' ? 'noble' : 'node';
  const byAead: Record<string, number> = {};
  try {
    for (const [name, backend] of Object.entries(BACKENDS)) {
      setAeadBackend(backend);
      for (const id of [AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305]) {
        byAead[`seal_open_us_${name}_${AEAD_NAMES[id]}`] = measureSealOpenFor(id, opts.batches, opts.perBatch);
        await new Promise((r) => setImmediate(r));
      }
    }
  } finally {
    setAeadBackend(BACKENDS[inEffect]);
  }
  const def = byAead[`seal_open_us_${inEffect}_${AEAD_NAMES[defaultAead()]}`];
  if (def === undefined) throw new BenchError('mode_failed', 'the default suite is not one this benchmark measures');
  return { default: def, backend: inEffect === 'node' ? 'node:crypto' : '@noble/ciphers', byAead };
}
