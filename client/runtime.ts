// Where the SDK runs. Browsers and Node share the SDK; a few Node-only speed-ups (native-crypto.ts,
// native-http.ts) load their node: modules only where this says Node is running.

/** True in Node (and runtimes that present themselves as Node by `process.versions.node`). */
export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  return typeof p?.versions?.node === 'string';
}
