// The balancer sweep (`--replicas 1,2,3`): aggregate encrypted tokens per second through HAProxy
// (deploy/loadbalancer/haproxy.cfg) in front of 1, 2, 3, … replicas of `sealed serve`. Every
// stream has its own SDK client, so its own session, which the balancer places by its hash: the
// load spreads as it would over real clients.
//
// On one machine the replicas share its cores with each other, with HAProxy and with the clients,
// so the figures show the balancer's and the protocol's overhead and that sessions stay put, not
// how capacity grows with machines: for that each replica needs cores of its own.
import { SealedClient } from '../client/sdk.js';
import { BenchError } from './errors.js';
import { freePort, haproxyPath, startBalancer, startReplica, type Replica } from './cluster.js';
import type { Workload } from './types.js';

export interface BalancerRun {
  replicas: number;
  concurrency: number;
  requests: number;
  tokens: number;
  seconds: number;
  tokens_per_second: number;
  /** Sessions each replica held, by the balancer's hash. */
  sessions_per_replica: number[];
}

export interface BalancerSweepOptions {
  replicas: number[];
  concurrency: number;
  requests: number;
  threads: number;
  modelDir: string;
  modelFile?: string;
  work: Workload;
}

export async function runBalancerSweep(o: BalancerSweepOptions, progress: (line: string) => void): Promise<BalancerRun[]> {
  const haproxy = haproxyPath();
  if (!haproxy) throw new BenchError('mode_unavailable', 'haproxy is not installed (apt-get install haproxy)');
  const out: BalancerRun[] = [];
  for (const n of o.replicas) {
    if (n > 3) throw new BenchError('bad_args', 'the balancer configuration names three replicas; --replicas takes 1 to 3');
    const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
    const replicas: Replica[] = [];
    let stop: (() => Promise<void>) | undefined;
    try {
      const args = [
        '--model-dir', o.modelDir, ...(o.modelFile !== undefined ? ['--model-file', o.modelFile] : []), '--threads', String(o.threads), '--trust-proxy', '127.0.0.1',
        '--max-concurrent', String(o.concurrency), '--max-queue', String(4 * o.concurrency),
        '--attestation-rate', '1000', '--attestation-burst', '1000', '--attestation-rate-total', '1000',
      ];
      replicas.push(...(await Promise.all(ports.map((p, i) => startReplica(i + 1, p, args)))));
      const lb = await startBalancer(haproxy, ports);
      stop = lb.stop;
      const clients = await Promise.all(Array.from({ length: o.concurrency }, () => SealedClient.connect(lb.url, { allowSimulation: true })));
      // One request per client first, outside the clock: every path warm.
      await Promise.all(clients.map((c) => c.complete({ prompt: o.work.prompt, max_tokens: 8, temperature: 0 })));
      let next = 0;
      let tokens = 0;
      const t0 = performance.now();
      await Promise.all(clients.map(async (client) => {
        while (next < o.requests) {
          next++;
          const stream = await client.complete({
            prompt: o.work.prompt, max_tokens: o.work.maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true },
          });
          for await (const chunk of stream) if (typeof chunk.usage?.completion_tokens === 'number') tokens += chunk.usage.completion_tokens;
        }
      }));
      const seconds = (performance.now() - t0) / 1000;
      const run: BalancerRun = {
        replicas: n,
        concurrency: o.concurrency,
        requests: o.requests,
        tokens,
        seconds: Math.round(seconds * 1000) / 1000,
        tokens_per_second: Math.round((tokens / seconds) * 10) / 10,
        sessions_per_replica: replicas.map((r) => r.count('GET', '/v1/sessions/{sid}/attestation', 200)),
      };
      out.push(run);
      progress(`balancer, ${n} replica(s), c=${o.concurrency}: ${run.tokens_per_second} tok/s, sessions ${run.sessions_per_replica.join('/')}`);
    } finally {
      await stop?.();
      await Promise.all(replicas.map((r) => r.kill('SIGTERM')));
    }
  }
  return out;
}
