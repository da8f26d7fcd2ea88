// Plain-text table for stdout. Pure.
import { layerBreakdown } from './targets.js';
import type { BenchReport, CpuRow, RunResult, TargetResult } from './types.js';

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

/** Left-aligns the first column, right-aligns the rest. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function runsTable(runs: readonly RunResult[]): string {
  const header = ['mode', 'conc', 'reqs', 'tokens', 'seconds', 'tok/s', 'ttft p50', 'ttft p95', 'itl p50', 'itl p95'];
  const rows = runs.map((r) => [
    r.mode, String(r.concurrency), String(r.requests), String(r.tokens), fmt(r.seconds, 2), fmt(r.tokens_per_second, 1),
    fmt(r.ttft_ms_p50, 2), fmt(r.ttft_ms_p95, 2), fmt(r.itl_ms_p50, 3), fmt(r.itl_ms_p95, 3),
  ]);
  return formatTable(header, rows) + '\n(latencies in ms)';
}

/** CPU per generated token: the bench process (the client, or everything for in-process modes) and the server child. */
export function cpuTable(rows: readonly CpuRow[]): string {
  return formatTable(
    ['mode', 'conc', 'bench us/token', 'server us/token', 'of it main thread'],
    rows.map((r) => [
      r.mode, String(r.concurrency), r.bench_cpu_us_per_token.toFixed(1),
      r.server_cpu_us_per_token === null ? '-' : r.server_cpu_us_per_token.toFixed(1),
      r.server_main_cpu_us_per_token === null || r.server_main_cpu_us_per_token === undefined ? '-' : r.server_main_cpu_us_per_token.toFixed(1),
    ]),
  );
}

export function targetsTable(targets: readonly TargetResult[]): string {
  const rows = targets.map((t) => [
    t.name, t.value === null ? 'n/a' : fmt(t.value, 2), `${t.comparison} ${t.threshold}`,
    t.pass === null ? 'not measured' : t.pass ? 'pass' : 'MISS',
  ]);
  return formatTable(['target', 'measured', 'wanted', 'result'], rows);
}

/** The whole human-readable report. */
export function formatReport(report: BenchReport): string {
  const lines = [
    `model ${report.model}${report.variant ? ` (onnx/${report.variant})` : ''}, threads ${report.threads}, prompt ${report.prompt_tokens ?? '?'} tokens, max_tokens ${report.max_tokens}, greedy`,
    `machine: ${report.machine}`,
    `date: ${report.date}${report.extra.load_avg_1m_start !== undefined ? `, load average (1 min) ${report.extra.load_avg_1m_start} at start, ${report.extra.load_avg_1m_end ?? '?'} at end` : ''}`,
    '',
    runsTable(report.runs),
    '',
  ];
  if (report.ceiling !== undefined && report.ceiling.length > 0) {
    lines.push(
      `reference: the runtime alone (a bare loop of batched session.run decode steps, same graph and threads, no engine; every row ${report.ceiling[0]!.width} columns long, the workload's mean):`,
      formatTable(['batch', 'steps', 'step p50 ms', 'tok/s'], report.ceiling.map((r) => [String(r.batch), String(r.steps), fmt(r.step_ms_p50, 3), fmt(r.tokens_per_second, 1)])),
      '',
    );
    const longest = report.ceiling_longest_row;
    const same = longest && report.ceiling.find((r) => r.batch === longest.batch);
    if (longest && same) {
      lines.push(
        `the same batch-${longest.batch} step with every row ${longest.width} columns long (a request's last step; a batch whose rows started at different times pays for its longest): ` +
          `${fmt(longest.tokens_per_second, 1)} tok/s, p50 ${fmt(longest.step_ms_p50, 3)} ms (${fmt(longest.tokens_per_second / same.tokens_per_second, 2)}x the mean-width step)`,
        '',
      );
    }
  }
  const staggered = report.engine_staggered;
  if (staggered !== undefined) {
    const tps = (mode: string) => report.runs.find((r) => r.mode === mode && r.concurrency === staggered.concurrency)?.tokens_per_second;
    const wave = tps('engine');
    const served = tps('encrypted-http');
    lines.push(
      `the engine at concurrency ${staggered.concurrency} with its workers' starts spread over one request (${fmt(staggered.spread_ms, 1)} ms apart), as a server's requests arrive: ` +
        `${fmt(staggered.tokens_per_second, 1)} tok/s while all ${staggered.concurrency} ran` +
        (wave ? ` (${fmt(staggered.tokens_per_second / wave, 2)}x its wave started together)` : '') +
        (served ? `; encrypted-http at ${staggered.concurrency} is ${fmt(served / staggered.tokens_per_second, 2)}x it` : ''),
      '',
    );
  }
  if (report.neighbour !== undefined) {
    const { alone, beside_busy_core: busy } = report.neighbour;
    lines.push(
      `the runtime's batch-1 step beside a busy core (a thread spinning on another core): ${fmt(busy.tokens_per_second, 1)} tok/s, ` +
        `p50 ${fmt(busy.step_ms_p50, 3)} ms, against ${fmt(alone.tokens_per_second, 1)} tok/s, p50 ${fmt(alone.step_ms_p50, 3)} ms alone ` +
        `(${fmt(busy.tokens_per_second / alone.tokens_per_second, 2)}x): what the serving path's own CPU on "the other core" costs the engine here`,
      '',
    );
  }
  const extras: string[] = [];
  if (report.session_setup_ms_p50 !== undefined) extras.push(`session set-up (attest + verify) p50: ${fmt(report.session_setup_ms_p50, 2)} ms`);
  const rss = report.extra.server_rss_mb;
  const peak = report.extra.server_rss_peak_mb;
  if (rss !== undefined) extras.push(`encrypted server RSS after the sweep: ${fmt(rss, 1)} MB${peak !== undefined ? ` (peak ${fmt(peak, 1)} MB)` : ''}`);
  const prss = report.extra.plaintext_server_rss_mb;
  if (prss !== undefined) extras.push(`plaintext twin RSS after the sweep: ${fmt(prss, 1)} MB`);
  if (report.seal_open_us !== undefined) {
    const all = Object.entries(report.extra).filter(([k]) => k.startsWith('seal_open_us_')).map(([k, v]) => `${k.slice('seal_open_us_'.length)} ${fmt(v, 1)}`);
    extras.push(`seal + open of one 100-byte chunk: ${fmt(report.seal_open_us, 2)} us (${report.seal_open_backend ?? '?'}, default suite)${all.length ? `; all: ${all.join(', ')} us` : ''}`);
  }
  if (report.outputs_identical !== undefined) {
    extras.push(`greedy output identical across modes: ${report.outputs_identical ? 'yes' : 'NO (see errors below)'}`);
  }
  if (extras.length > 0) lines.push(...extras, '');
  if (report.cpu !== undefined && report.cpu.length > 0) {
    lines.push('CPU per token (bench = the client, or everything for in-process modes; server = the child process, and of that its main thread (HTTP, sealing, writes; the engine runs on its own thread)):', cpuTable(report.cpu), '');
  }
  if (report.balancer !== undefined && report.balancer.length > 0) {
    lines.push(
      'through the load balancer (HAProxy, deploy/loadbalancer/haproxy.cfg; one session per stream; the replicas share this machine\'s cores):',
      formatTable(
        ['replicas', 'concurrency', 'requests', 'tokens', 'tok/s', 'sessions per replica'],
        report.balancer.map((b) => [String(b.replicas), String(b.concurrency), String(b.requests), String(b.tokens), fmt(b.tokens_per_second, 1), b.sessions_per_replica.join(' / ')]),
      ),
      '',
    );
  }
  const layers = layerBreakdown(report.runs);
  if (layers.length > 1) lines.push('where the time goes at concurrency 1:', ...layers.map((l) => `  ${l}`), '');
  lines.push(targetsTable(report.targets));
  for (const e of report.errors ?? []) lines.push(`mode ${e.mode} failed: ${e.code}: ${e.message}`);
  return lines.join('\n') + '\n';
}
