// What stream padding costs: the same streamed completion through the real server with padding on
// (the default) and off, in bytes on the wire per token and in tokens per second at c=1. The bytes
// are the sealed response bodies as they arrive (counted under the SDK's fetch); the runs
// alternate on and off so drift on a shared machine lands on both.
import { SealedClient } from '../client/sdk.js';
import { startChildServer } from './child.js';
import { round } from './stats.js';
import type { Workload } from './types.js';

/** Requests per side; each streams `work.maxTokens` tokens. */
const REQUESTS = 4;

interface Side {
  client: SealedClient;
  bytes: { n: number };
  tokens: number;
  seconds: number;
}

/** A fetch that counts the bytes of every response body it hands back. */
function countingFetch(bytes: { n: number }): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const res = await fetch(input, init);
    if (res.body === null) return res;
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          bytes.n += chunk.byteLength;
          c.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
  }) as typeof fetch;
}

async function connect(url: string): Promise<Side> {
  const bytes = { n: 0 };
  const client = await SealedClient.connect(url, { allowSimulation: true, fetch: countingFetch(bytes) });
  // Attestation bytes are not stream bytes.
  bytes.n = 0;
  return { client, bytes, tokens: 0, seconds: 0 };
}

async function once(side: Side, work: Workload): Promise<void> {
  const t0 = performance.now();
  const stream = await side.client.complete({
    prompt: work.prompt,
    max_tokens: work.maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let tokens = 0;
  for await (const chunk of stream) if (typeof chunk.usage?.completion_tokens === 'number') tokens = chunk.usage.completion_tokens;
  side.seconds += (performance.now() - t0) / 1000;
  side.tokens += tokens;
}

/**
 * Starts a second server with `--stream-padding off` beside `paddedUrl` (started with `args`,
 * padding on by default), runs the workload on both, and returns the extras.
 */
export async function measurePaddingCost(paddedUrl: string, args: string[], work: Workload): Promise<Record<string, number>> {
  const unpaddedServer = await startChildServer([...args, '--stream-padding', 'off'], { env: { TSX_DISABLE_CACHE: '1' } });
  try {
    const on = await connect(paddedUrl);
    const off = await connect(unpaddedServer.url);
    for (let i = 0; i < REQUESTS; i++) {
      await once(on, work);
      await once(off, work);
    }
    const perToken = (s: Side) => (s.tokens > 0 ? s.bytes.n / s.tokens : 0);
    const tps = (s: Side) => (s.seconds > 0 ? s.tokens / s.seconds : 0);
    return {
      stream_bytes_per_token_padded: round(perToken(on), 1),
      stream_bytes_per_token_unpadded: round(perToken(off), 1),
      stream_tokens_per_second_padded_c1: round(tps(on), 1),
      stream_tokens_per_second_unpadded_c1: round(tps(off), 1),
    };
  } finally {
    await unpaddedServer.close();
  }
}
