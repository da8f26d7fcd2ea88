// The server's inner OpenAI-compatible app served in plaintext on loopback by a
// bench-only child process (bench/plaintext-twin.ts): the same HTTP and JSON
// work as the product, minus attestation and encryption.
import { nodeFetchIfNode } from '../../client/native-http.js';
import { SseParser } from '../../client/sse.js';
import { nodeEntry } from '../args.js';
import { startChildServer } from '../child.js';
import type { ChildServer } from '../child.js';
import { BenchError } from '../errors.js';
import type { Completed, ModeDriver, Workload } from '../types.js';

/** The OpenAI completions body every HTTP mode sends: greedy, streamed, usage at the end. */
export function completionBody(model: string, work: Workload): Record<string, unknown> {
  return {
    model,
    prompt: work.prompt,
    max_tokens: work.maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  };
}

/**
 * Reads an OpenAI completions event stream: calls onToken() for each chunk
 * that carries text, and returns the text and the completion tokens from the
 * usage chunk (or the count of text chunks if the server sent no usage).
 */
export async function consumeCompletionStream(body: ReadableStream<Uint8Array>, onToken: () => void): Promise<Completed> {
  const parser = new SseParser();
  let chunks = 0;
  let out = '';
  let usageTokens: number | undefined;
  let promptTokens: number | undefined;
  let done = false;
  const reader = body.getReader();
  for (;;) {
    const { value, done: eof } = await reader.read();
    if (eof) break;
    for (const data of parser.push(value)) {
      if (data === '[DONE]') { done = true; continue; }
      const ev = JSON.parse(data) as {
        choices?: { text?: string; delta?: { content?: string } }[];
        usage?: { completion_tokens?: number; prompt_tokens?: number } | null;
      };
      const c = ev.choices?.[0];
      const text = c?.text ?? c?.delta?.content;
      if (typeof text === 'string' && text.length > 0) { chunks++; out += text; onToken(); }
      if (typeof ev.usage?.completion_tokens === 'number') usageTokens = ev.usage.completion_tokens;
      if (typeof ev.usage?.prompt_tokens === 'number') promptTokens = ev.usage.prompt_tokens;
    }
  }
  parser.end();
  if (!done) throw new BenchError('mode_failed', 'event stream ended without [DONE]');
  return { tokens: usageTokens ?? chunks, text: out, promptTokens };
}

export async function createPlaintextHttpDriver(opts: { modelDir: string; modelFile?: string; threads: number; maxBatch: number }): Promise<ModeDriver & { server: ChildServer }> {
  const server = await startChildServer([
    ...nodeEntry('bench/plaintext-twin'),
    '--model', opts.modelDir, ...(opts.modelFile !== undefined ? ['--model-file', opts.modelFile] : []), '--threads', String(opts.threads), '--max-batch', String(opts.maxBatch),
  ]);
  let modelId = 'model';
  // The HTTP client the SDK uses in Node (client/native-http.ts), so that plaintext-http and
  // encrypted-http differ by the encryption alone, not by their HTTP clients.
  const platformFetch = globalThis.fetch.bind(globalThis);
  const fetch = (await nodeFetchIfNode(platformFetch)) ?? platformFetch;
  try {
    const res = await fetch(`${server.url}/v1/models`);
    const list = (await res.json()) as { data?: { id?: string }[] };
    modelId = list.data?.[0]?.id ?? modelId;
  } catch (err) {
    await server.close();
    throw new BenchError('mode_unavailable', 'plaintext twin did not answer /v1/models', { cause: err });
  }
  return {
    name: 'plaintext-http',
    server,
    async request(work: Workload, onToken: () => void): Promise<Completed> {
      const res = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(completionBody(modelId, work)),
      });
      if (res.status !== 200 || res.body === null) {
        await res.body?.cancel();
        throw new BenchError('mode_failed', `plaintext twin answered HTTP ${res.status}`);
      }
      return consumeCompletionStream(res.body, onToken);
    },
    async extras(): Promise<Record<string, number>> {
      const r = await server.rss();
      return r ? { plaintext_server_rss_mb: r.rssMb } : {};
    },
    serverCpuMs: () => server.cpuMs(),
    serverMainCpuMs: () => server.mainThreadCpuMs(),
    close: () => server.close(),
  };
}
