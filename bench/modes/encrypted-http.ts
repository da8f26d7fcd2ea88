// The product path: `sealed serve --platform simulated` as its own process,
// and the real SDK in this one, over loopback: attestation and verification
// of the simulated SEV-SNP evidence, then every request sealed with chunked
// OHTTP and streamed back event by event.
import { SealedClient } from '../../client/sdk.js';
import { nodeEntry } from '../args.js';
import { startChildServer } from '../child.js';
import type { ChildServer } from '../child.js';
import { BenchError } from '../errors.js';
import { measurePaddingCost } from '../padding-cost.js';
import { percentile } from '../stats.js';
import type { Completed, ModeDriver, Workload } from '../types.js';

/** Session set-ups timed for the p50 (each is a fresh attestation and a full verification). */
const SESSION_SAMPLES = 12;

/**
 * Command line of the real server: simulation mode, loopback, any free port
 * (it announces the URL), the bench's threads, and as many generation slots
 * as the top concurrency (the same the plaintext twin gets). The per-session
 * request and concurrency caps are raised, since the bench drives every stream
 * through one session (one client), and so are the attestation limits for the
 * session-setup samples: the sweep measures requests, not re-attestation or
 * the public endpoint's protections. Stream padding is left at its default
 * (on): the bench measures what is served.
 */
export function serveArgs(o: { modelDir: string; modelFile?: string; threads: number; maxBatch: number }): string[] {
  return [
    ...nodeEntry('cli/sealed'), 'serve',
    '--platform', 'simulated', '--host', '127.0.0.1', '--port', '0',
    '--model-dir', o.modelDir, ...(o.modelFile !== undefined ? ['--model-file', o.modelFile] : []), '--threads', String(o.threads),
    '--max-concurrent', String(o.maxBatch), '--max-queue', String(Math.max(64, 4 * o.maxBatch)),
    '--max-requests-per-session', '100000',
    '--max-concurrent-per-session', String(Math.max(64, 4 * o.maxBatch) + o.maxBatch),
    '--attestation-rate', '1000', '--attestation-burst', '1000', '--attestation-rate-total', '1000',
  ];
}

/** Times one attestation + verification, the cost a client pays before its first request. */
export async function timeSessionSetup(url: string): Promise<number> {
  const t0 = performance.now();
  await SealedClient.connect(url, { allowSimulation: true });
  return performance.now() - t0;
}

export async function createEncryptedHttpDriver(opts: { modelDir: string; modelFile?: string; threads: number; maxBatch: number; work?: Workload }): Promise<ModeDriver & { server: ChildServer }> {
  const server = await startChildServer(serveArgs(opts), { env: { TSX_DISABLE_CACHE: '1' } });
  let client: SealedClient;
  try {
    client = await SealedClient.connect(server.url, { allowSimulation: true });
  } catch (err) {
    await server.close();
    throw new BenchError('mode_unavailable', 'the SDK could not attest the server', { cause: err });
  }
  return {
    name: 'encrypted-http',
    server,
    async request(work: Workload, onToken: () => void): Promise<Completed> {
      const stream = await client.complete({
        prompt: work.prompt,
        max_tokens: work.maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      let chunks = 0;
      let out = '';
      let usage: number | undefined;
      let promptTokens: number | undefined;
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.text;
        if (typeof text === 'string' && text.length > 0) { chunks++; out += text; onToken(); }
        if (typeof chunk.usage?.completion_tokens === 'number') usage = chunk.usage.completion_tokens;
        if (typeof chunk.usage?.prompt_tokens === 'number') promptTokens = chunk.usage.prompt_tokens;
      }
      return { tokens: usage ?? chunks, text: out, promptTokens };
    },
    async extras(): Promise<Record<string, number>> {
      const out: Record<string, number> = {};
      const rss = await server.rss();
      if (rss) { out.server_rss_mb = rss.rssMb; out.server_rss_peak_mb = rss.peakMb; }
      // After the sweep, so the server is warm; sequential, so each is one client's wait.
      const setups: number[] = [];
      for (let i = 0; i < SESSION_SAMPLES; i++) setups.push(await timeSessionSetup(server.url));
      out.session_setup_ms_p50 = percentile(setups, 50);
      out.session_setup_ms_p95 = percentile(setups, 95);
      if (opts.work) Object.assign(out, await measurePaddingCost(server.url, serveArgs(opts), opts.work));
      return out;
    },
    serverCpuMs: () => server.cpuMs(),
    serverMainCpuMs: () => server.mainThreadCpuMs(),
    close: () => server.close(),
  };
}
