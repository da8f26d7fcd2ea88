// `sealed bench`: the benchmark. Progress on stderr, the table on stdout, and
// optionally the CONTRACT's JSON and an SVG chart.
import { writeFile } from 'node:fs/promises';
import process from 'node:process';
import type { Command } from '../sealed.js';
import { parseArgs, USAGE } from '../../bench/args.js';
import { renderChart } from '../../bench/chart.js';
import { BenchError } from '../../bench/errors.js';
import { serialize, toContractJson, validateContractShape } from '../../bench/report.js';
import { runBench } from '../../bench/run.js';
import { formatReport } from '../../bench/table.js';

function progressPrinter(): (message: string, transient?: boolean) => void {
  const tty = process.stderr.isTTY === true;
  let pending = false;
  return (message, transient = false) => {
    if (transient) {
      // Per-request counters only make sense on a terminal that can overwrite them.
      if (tty) { process.stderr.write(`\r\x1b[2K${message}`); pending = true; }
      return;
    }
    process.stderr.write(`${pending ? '\r\x1b[2K' : ''}bench: ${message}\n`);
    pending = false;
  };
}

export const command: Command = {
  summary: 'measure tokens/s, time to first token and the cost of confidentiality',
  async run(argv: string[]): Promise<number> {
    let opts;
    try {
      opts = parseArgs(argv);
    } catch (err) {
      if (err instanceof BenchError) {
        process.stderr.write(`sealed bench: ${err.message}\n${USAGE}`);
        return 2;
      }
      throw err;
    }
    if (opts.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    // An interrupted run still stops its server children (bench/child.ts kills them on exit).
    const interrupted = (): never => process.exit(130);
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
    let report;
    try {
      report = await runBench(opts, progressPrinter());
    } catch (err) {
      // A model directory whose graph cannot be chosen is a usage error, found before anything runs.
      if (err instanceof BenchError && err.code === 'bad_args') {
        process.stderr.write(`sealed bench: ${err.message}\n`);
        return 2;
      }
      throw err;
    } finally {
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
    }
    process.stdout.write(formatReport(report));
    if (opts.json !== undefined) {
      validateContractShape(toContractJson(report));
      await writeFile(opts.json, serialize(report));
      process.stderr.write(`bench: wrote ${opts.json}\n`);
    }
    if (opts.chart !== undefined) {
      await writeFile(opts.chart, renderChart(report.runs, { title: `${report.model}: tokens/s vs concurrency (threads ${report.threads})` }));
      process.stderr.write(`bench: wrote ${opts.chart}\n`);
    }
    // Every requested mode must have produced numbers for the run to count as a success.
    const measured = new Set(report.runs.map((r) => r.mode));
    return opts.modes.every((m) => measured.has(m)) ? 0 : 1;
  },
};
