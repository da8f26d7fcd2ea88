// The bench-only plaintext twin: the server's inner OpenAI-compatible app,
// unencrypted, on a loopback port. Run as its own process by the benchmark's
// plaintext-http mode. Nothing in `sealed serve` imports or starts this file;
// it exists so the benchmark can price attestation and encryption separately.
//
//   node --import tsx bench/plaintext-twin.ts --model DIR --threads N --max-batch N
import { serve } from '@hono/node-server';
import process from 'node:process';
import { parseArgs as parseNodeArgs } from 'node:util';
import { WorkerEngine } from '../engine/worker-engine.js';
import { createInnerApp } from '../server/inner/app.js';
import { resolveLimits } from '../server/limits.js';

async function main(): Promise<void> {
  const { values } = parseNodeArgs({
    options: { model: { type: 'string' }, 'model-file': { type: 'string' }, threads: { type: 'string' }, 'max-batch': { type: 'string' } },
    strict: true,
  });
  const threads = Number(values.threads ?? '1');
  const maxBatch = Number(values['max-batch'] ?? '16');
  if (values.model === undefined || !Number.isInteger(threads) || threads < 1 || !Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new Error('usage: plaintext-twin.ts --model DIR --threads N --max-batch N');
  }
  const maxQueue = Math.max(64, 4 * maxBatch);
  const modelFile = values['model-file'];
  // In a worker thread, as `sealed serve` runs it, so the two HTTP modes differ only in the envelope.
  const engine = await WorkerEngine.create({ modelDir: values.model, ...(modelFile !== undefined && { modelFile }), threads, maxBatch, maxQueue });
  // The same admission limits the encrypted server is started with, so the two HTTP modes differ only in the envelope.
  const limits = resolveLimits({ maxConcurrentGenerations: maxBatch, maxQueue });
  const app = createInnerApp({ engine, limits });
  // Loopback only: the twin must never be reachable from another host.
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
    process.stdout.write(`plaintext twin listening on http://127.0.0.1:${info.port}\n`);
  });
  const stop = (): void => {
    server.close();
    void engine.close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`plaintext twin: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
