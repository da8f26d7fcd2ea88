// `sealed serve`: load the model, obtain an evidence provider for the platform, serve the
// attested, encrypted HTTP surface until SIGINT/SIGTERM, then stop gracefully.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import type { Command } from '../sealed.js';
import { DEFAULT_MODEL_DIR, parseServeConfig, SERVE_HELP, type ServeConfig } from '../../server/config.js';
import { isServerError } from '../../server/errors.js';
import { createLogger, type Logger } from '../../server/log.js';
import { startServer } from '../../server/lifecycle.js';
import { bodyBytesForContext, resolveLimits } from '../../server/limits.js';
import { Metrics, countingEngine, countingLogger } from '../../server/metrics.js';
import { startMetricsListener, type MetricsListener } from '../../server/metrics-http.js';

export const SIMULATION_BANNER = [
  '################################################################################',
  '##  SIMULATION MODE: this server is NOT running in a confidential VM.          ##',
  '##  Its evidence is signed by a simulated key made at start-up; it proves     ##',
  '##  nothing about the hardware. Clients accept it only with                   ##',
  '##  --allow-simulation. Do not send anything confidential to it.              ##',
  '################################################################################',
].join('\n');

/** Where the command reads its environment and writes its output (process by default; tests pass their own). */
export interface ServeIo {
  env: Record<string, string | undefined>;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export const command: Command = {
  summary: 'serve the model over attested, encrypted HTTP (OHTTP inside a TEE; --platform simulated on a laptop)',
  run: (argv) => runServe(argv, process),
};

export async function runServe(argv: string[], io: ServeIo): Promise<number> {
  let config: ServeConfig | 'help';
  try {
    config = parseServeConfig(argv, io.env);
  } catch (e) {
    io.stderr.write(`sealed serve: ${isServerError(e) ? e.message : 'invalid arguments'}\n(see sealed serve --help)\n`);
    return 2;
  }
  if (config === 'help') {
    io.stdout.write(SERVE_HELP);
    return 0;
  }
  return serve(config, io, createLogger((line) => io.stderr.write(line + '\n'), config.logFormat));
}

async function serve(config: ServeConfig, io: ServeIo, logger: Logger): Promise<number> {
  // Run from TypeScript sources, tsx compiles every module it loads and, unless its cache is
  // off, writes the result to disk: a process that must store nothing cannot allow that.
  if (import.meta.url.endsWith('.ts') && !io.env.TSX_DISABLE_CACHE) {
    const advice = 'set TSX_DISABLE_CACHE=1 (npm start and bin/sealed.mjs do) or run the built dist/';
    if (config.platform !== 'simulated') {
      io.stderr.write(`sealed serve: refusing to start: tsx's compile cache is on and would write files; ${advice}\n`);
      return 1;
    }
    io.stderr.write(`sealed serve: warning: tsx's compile cache is on and writes files; ${advice}\n`);
  }
  const { createProvider } = await import('../../enclave/providers/index.js');

  let engine;
  try {
    const engineOptions = {
      modelDir: resolveModelDir(config.modelDir),
      ...(config.modelFile !== undefined && { modelFile: config.modelFile }),
      // A large model takes a while to hash and map: say what is happening meanwhile.
      onProgress: (line: string) => io.stderr.write(`sealed serve: ${line}\n`),
      ...(config.threads !== undefined && { threads: config.threads }),
      maxBatch: config.limits.maxConcurrentGenerations,
      maxQueue: Math.max(1, config.limits.maxQueue),
    };
    engine = config.engineThread === 'worker'
      ? await (await import('../../engine/worker-engine.js')).WorkerEngine.create(engineOptions)
      : await (await import('../../engine/index.js')).Engine.create(engineOptions);
  } catch (e) {
    io.stderr.write(`sealed serve: cannot load the model: ${e instanceof Error ? e.message : 'unknown error'}\n`);
    return 1;
  }

  // Known only now: a body bigger than the model's context could hold is refused by default.
  const limits = config.maxBodyBytesGiven
    ? config.limits
    : resolveLimits({
        ...config.limits,
        maxBodyBytes: Math.min(bodyBytesForContext(engine.model.contextLength), config.limits.maxBufferedBytes),
      });

  let provider;
  try {
    provider = await createProvider(config.platform, {
      simulation: { modelDigest: engine.model.digest },
    });
  } catch (e) {
    await engine.close();
    io.stderr.write(`sealed serve: no evidence provider for platform '${config.platform}': ${e instanceof Error ? e.message : 'unknown error'}\n`);
    return 1;
  }

  // Metrics count what the access log and the engine already see; off, nothing is wrapped.
  const metrics = config.metricsListen ? new Metrics() : undefined;
  let running;
  try {
    running = await startServer({
      engine: metrics ? countingEngine(engine, metrics) : engine, provider, limits, host: config.host, port: config.port,
      logger: metrics ? countingLogger(logger, metrics) : logger,
      ...(config.proxyTrust && { proxyTrust: config.proxyTrust }) });
  } catch (e) {
    provider.close?.();
    await engine.close();
    const code = (e as { code?: unknown }).code;
    io.stderr.write(`sealed serve: cannot listen on ${config.host}:${config.port}${typeof code === 'string' ? ` (${code})` : ''}\n`);
    return 1;
  }

  let metricsListener: MetricsListener | undefined;
  if (metrics && config.metricsListen) {
    const rt = running.runtime;
    metrics.setGauges({ sessionsLive: () => rt.sessions.size, generationsRunning: () => rt.generations.active, generationsQueued: () => rt.generations.queued });
    try {
      metricsListener = await startMetricsListener(metrics, config.metricsListen.host, config.metricsListen.port);
    } catch (e) {
      await running.close();
      provider.close?.();
      await engine.close();
      const code = (e as { code?: unknown }).code;
      io.stderr.write(`sealed serve: cannot listen for metrics on ${config.metricsListen.host}:${config.metricsListen.port}${typeof code === 'string' ? ` (${code})` : ''}\n`);
      return 1;
    }
  }

  if (provider.simulated) io.stdout.write(SIMULATION_BANNER + '\n');
  io.stdout.write(
    `sealed-inference listening on ${running.url}\n` +
      `  model ${engine.model.id} (manifest sha256 ${engine.model.digest})\n` +
      `  graph onnx/${engine.model.variant}: KV cache ${engine.dtypes.kv}, logits ${engine.dtypes.logits}, ` +
      `decode mode ${engine.decodeMode}${engine.padding === 'right' ? ' (rows right-padded for GroupQueryAttention)' : ''}` +
      `${engine.decodeMode === 'unbatched' ? ' (one run per sequence: the graph quantizes activations per tensor, coupling batched rows)' : ''}` +
      `, ${config.engineThread === 'worker' ? 'in a worker thread' : 'on the main thread'}\n` +
            `  platform ${provider.platform}${provider.simulated ? ' (SIMULATED)' : ''}, session lifetime ${limits.sessionLifetimeSeconds} s, ` +
      `up to ${limits.maxSessions} sessions, ${limits.maxConcurrentGenerations} concurrent generations, ` +
      `bodies up to ${limits.maxBodyBytes} bytes, stream padding ${limits.streamPadding ? 'on' : 'off'}\n` +
      (metricsListener ? `  metrics at ${metricsListener.url} (aggregate counts and latencies only)\n` : ''),
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal: stop waiting for the grace period.
        io.stderr.write(`sealed serve: ${signal} again, exiting now\n`);
        running.runtime.sessions.close();
        process.exit(1);
      }
      stopping = true;
      logger.info(`${signal}: shutting down`);
      void (async () => {
        await running.close();
        await metricsListener?.close();
        provider.close?.();
        await engine.close().catch(() => {});
        logger.info('stopped; session keys wiped');
        // Should a native handle (ONNX Runtime threads) keep the loop alive, still exit.
        setTimeout(() => process.exit(0), 1000).unref();
        resolve(0);
      })();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * The bundled model is found from the package root when the default is asked for and the
 * working directory is elsewhere (the `sealed` binary run from anywhere); any other directory
 * is taken as given.
 */
function resolveModelDir(dir: string): string {
  if (dir !== DEFAULT_MODEL_DIR || isAbsolute(dir) || existsSync(dir)) return dir;
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, dir))) return join(d, dir);
    const up = dirname(d);
    if (up === d) return dir;
    d = up;
  }
}
