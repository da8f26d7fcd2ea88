// `sealed serve` configuration from flags and environment variables (a flag wins over its
// variable). Pure: argv and env in, a validated configuration out, or a ServerError('bad_config').
import { parseArgs } from 'node:util';
import { ServerError } from './errors.js';
import { BODY_BYTES_FIXED, BODY_BYTES_PER_TOKEN, DEFAULT_LIMITS, resolveLimits, type Limits } from './limits.js';
import { isValidProxyEntry, type ProxyTrust } from './client-address.js';
import type { LogFormat } from './log.js';

export type PlatformChoice = 'auto' | 'sev-snp' | 'tdx' | 'simulated';
const PLATFORMS: readonly PlatformChoice[] = ['auto', 'sev-snp', 'tdx', 'simulated'];

export interface ServeConfig {
  host: string;
  port: number;
  modelDir: string;
  /** Which graph under the directory's onnx/ (a file name, stem or dtype); undefined: its only one. */
  modelFile: string | undefined;
  platform: PlatformChoice;
  /** ONNX Runtime threads; undefined lets the engine choose (all cores). */
  threads: number | undefined;
  limits: Limits;
  /** Set only when the operator names the proxies in front of the server. */
  proxyTrust: ProxyTrust | undefined;
  /** False when --max-body-bytes (or its variable) was not given: the caller derives it from the model (bodyBytesForContext). */
  maxBodyBytesGiven: boolean;
  logFormat: LogFormat;
  /** Where the metrics listener listens; undefined: no metrics listener (the default). */
  metricsListen: { host: string; port: number } | undefined;
  /** Where the model runs: a worker thread (default) or the main thread. */
  engineThread: 'worker' | 'main';
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
export const DEFAULT_MODEL_DIR = 'models/stories260K';

interface LimitFlag {
  flag: string;
  env: string;
  key: keyof Limits;
  help: string;
  /** Accepts fractions (rates); everything else is an integer. */
  real?: boolean;
}

export const LIMIT_FLAGS: readonly LimitFlag[] = [
  { flag: 'session-lifetime', env: 'SEALED_SESSION_LIFETIME', key: 'sessionLifetimeSeconds', help: 'session (and key) lifetime, seconds' },
  { flag: 'session-unused-timeout', env: 'SEALED_SESSION_UNUSED_TIMEOUT', key: 'sessionUnusedTimeoutSeconds', help: 'a session with no request this long after attestation ends, seconds' },
  { flag: 'max-sessions', env: 'SEALED_MAX_SESSIONS', key: 'maxSessions', help: 'live sessions (memory); when full the oldest never-used one is evicted' },
  { flag: 'attestation-rate', env: 'SEALED_ATTESTATION_RATE', key: 'attestationRate', help: 'attestations per second per client address', real: true },
  { flag: 'attestation-burst', env: 'SEALED_ATTESTATION_BURST', key: 'attestationBurst', help: 'attestations one client address may make at once' },
  { flag: 'attestation-rate-total', env: 'SEALED_ATTESTATION_RATE_TOTAL', key: 'attestationRateTotal', help: 'attestations per second, all addresses together', real: true },
  { flag: 'max-requests-per-session', env: 'SEALED_MAX_REQUESTS_PER_SESSION', key: 'maxRequestsPerSession', help: 'requests one session accepts' },
  { flag: 'max-concurrent-per-session', env: 'SEALED_MAX_CONCURRENT_PER_SESSION', key: 'maxConcurrentPerSession', help: 'generations one session may run or queue at once' },
  { flag: 'max-connections', env: 'SEALED_MAX_CONNECTIONS', key: 'maxConnections', help: 'open connections at once' },
  { flag: 'max-buffered-bytes', env: 'SEALED_MAX_BUFFERED_BYTES', key: 'maxBufferedBytes', help: 'request bytes buffered across all connections' },
  { flag: 'max-body-bytes', env: 'SEALED_MAX_BODY_BYTES', key: 'maxBodyBytes', help: 'largest request body, bytes' },
  { flag: 'max-tokens', env: 'SEALED_MAX_TOKENS', key: 'maxTokensCeiling', help: 'largest max_tokens a request may ask for' },
  { flag: 'max-concurrent', env: 'SEALED_MAX_CONCURRENT', key: 'maxConcurrentGenerations', help: 'generations running at once' },
  { flag: 'max-queue', env: 'SEALED_MAX_QUEUE', key: 'maxQueue', help: 'generations waiting for a slot' },
  { flag: 'queue-timeout-ms', env: 'SEALED_QUEUE_TIMEOUT_MS', key: 'queueTimeoutMs', help: 'longest wait for a slot, ms' },
  { flag: 'generation-timeout-ms', env: 'SEALED_GENERATION_TIMEOUT_MS', key: 'generationTimeoutMs', help: 'longest generation, ms' },
  { flag: 'request-timeout-ms', env: 'SEALED_REQUEST_TIMEOUT_MS', key: 'requestTimeoutMs', help: 'time to receive a request, ms' },
  { flag: 'headers-timeout-ms', env: 'SEALED_HEADERS_TIMEOUT_MS', key: 'headersTimeoutMs', help: 'time to receive request headers, ms' },
  { flag: 'shutdown-grace-ms', env: 'SEALED_SHUTDOWN_GRACE_MS', key: 'shutdownGraceMs', help: 'grace for running requests on shutdown, ms' },
];

export const SERVE_HELP = `usage: sealed serve [options]

Serves the model through the attested, encrypted HTTP surface of docs/PROTOCOL.md (version 2):
  GET /v1/sessions/{sid}/attestation?nonce=HEX64, POST /v1/sessions/{sid}/ohttp,
  GET /healthz, GET /readyz

options (environment variable in brackets; a flag wins):
  --port N               port, 0 for any free one [PORT] (default ${DEFAULT_PORT})
  --host ADDR            address to listen on [HOST] (default ${DEFAULT_HOST})
  --model-dir DIR        model directory [SEALED_MODEL_DIR] (default ${DEFAULT_MODEL_DIR})
  --model-file NAME      which graph under DIR/onnx/ when it holds several [SEALED_MODEL_FILE]:
                         a file name (model_q4.onnx), a stem (model_q4) or a dtype as
                         transformers.js names them (fp32, fp16, q8, q4, q4f16, int8, uint8,
                         bnb4); without it a directory with several refuses to start and
                         lists them
  --platform P           auto | sev-snp | tdx | simulated [SEALED_PLATFORM] (default auto:
                         the TEE found through configfs-tsm; refuses to start without one)
  --threads N            ONNX Runtime threads [SEALED_THREADS] (default: all cores)
  --trust-proxy ADDRS    comma-separated addresses or CIDR ranges of the reverse proxies in front of this
                         server [SEALED_TRUST_PROXY]; only for connections from them is the client
                         address (for the attestation limits) read from --proxy-address-header.
                         Default: none, the connection's own peer address is used.
  --proxy-address-header NAME
                         header those proxies append the client address to [SEALED_PROXY_ADDRESS_HEADER]
                         (default x-forwarded-for; its rightmost entry is used)
  --log-format F         text | json: the access log as text lines or one JSON object per line,
                         the same fields either way, never content [SEALED_LOG_FORMAT] (default text)
  --metrics-listen HOST:PORT
                         serve Prometheus metrics at http://HOST:PORT/metrics, a listener apart
                         from the public one [SEALED_METRICS_LISTEN] (default: off). Aggregate
                         counts and latencies only; keep it on loopback or a management network
${LIMIT_FLAGS.map((f) => `  --${(f.flag + ' N').padEnd(28)} ${f.help} [${f.env}] (default ${f.key === 'maxBodyBytes' ? 'from the model, below' : String(DEFAULT_LIMITS[f.key])})`).join('\n')}
  --stream-padding on|off        pad each streamed event to a size bucket (powers of two from 256
                                 bytes) so a sealed chunk's size does not reveal its token's
                                 length [SEALED_STREAM_PADDING] (default on)
  --engine-thread worker|main    run the model in a worker thread, so a decode step never blocks
                                 HTTP, sealing and writes, or on the main thread (for comparison)
                                 [SEALED_ENGINE_THREAD] (default worker)
  -h, --help             this text

Default --max-body-bytes: context length (tokens) x ${BODY_BYTES_PER_TOKEN} + ${BODY_BYTES_FIXED}, computed at start-up
from the served model (stories260K, 512 tokens: ${512 * BODY_BYTES_PER_TOKEN + BODY_BYTES_FIXED} bytes): a bigger body could not fit the
context. Bodies being received are held within --max-buffered-bytes all together (a declared
Content-Length is reserved before reading); a request beyond it gets 503 with Retry-After.
Connections beyond --max-connections get a 503 with Retry-After and are closed at once.

Simulation (--platform simulated) protects nothing: the evidence is signed by a key made at
start-up, and clients accept it only with --allow-simulation.
The process writes no file. SIGINT/SIGTERM stop it gracefully: /readyz turns 503 and new
requests get 503 with Retry-After while the listener stays open and running requests finish
(up to --shutdown-grace-ms; then they are cancelled, a stream ending with an error event);
only then are connections closed and every session key wiped.
`;

export function parseServeConfig(argv: string[], env: Record<string, string | undefined>): ServeConfig | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    port: { type: 'string' },
    host: { type: 'string' },
    'model-dir': { type: 'string' },
    'model-file': { type: 'string' },
    platform: { type: 'string' },
    threads: { type: 'string' },
    'trust-proxy': { type: 'string' },
    'proxy-address-header': { type: 'string' },
    'stream-padding': { type: 'string' },
    'engine-thread': { type: 'string' },
    'log-format': { type: 'string' },
    'metrics-listen': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const f of LIMIT_FLAGS) options[f.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as typeof values;
  } catch (e) {
    throw new ServerError('bad_config', e instanceof Error ? e.message : 'invalid arguments');
  }
  if (values.help) return 'help';
  const pick = (flag: string, envName: string): { value: string; from: string } | undefined => {
    const v = values[flag];
    if (typeof v === 'string') return { value: v, from: `--${flag}` };
    const e = env[envName];
    if (e !== undefined && e !== '') return { value: e, from: envName };
    return undefined;
  };

  const port = pick('port', 'PORT');
  const host = pick('host', 'HOST');
  const modelDir = pick('model-dir', 'SEALED_MODEL_DIR');
  const modelFile = pick('model-file', 'SEALED_MODEL_FILE');
  const platform = pick('platform', 'SEALED_PLATFORM');
  const threads = pick('threads', 'SEALED_THREADS');
  const trustProxy = pick('trust-proxy', 'SEALED_TRUST_PROXY');
  const proxyHeader = pick('proxy-address-header', 'SEALED_PROXY_ADDRESS_HEADER');
  const padding = pick('stream-padding', 'SEALED_STREAM_PADDING');
  if (padding && padding.value !== 'on' && padding.value !== 'off') throw new ServerError('bad_config', `${padding.from} must be on or off`);
  const engineThread = pick('engine-thread', 'SEALED_ENGINE_THREAD');
  if (engineThread && engineThread.value !== 'worker' && engineThread.value !== 'main') {
    throw new ServerError('bad_config', `${engineThread.from} must be worker or main`);
  }
  const logFormat = pick('log-format', 'SEALED_LOG_FORMAT');
  const metricsListen = pick('metrics-listen', 'SEALED_METRICS_LISTEN');
  if (logFormat && logFormat.value !== 'text' && logFormat.value !== 'json') throw new ServerError('bad_config', `${logFormat.from} must be text or json`);

  if (platform && !(PLATFORMS as readonly string[]).includes(platform.value)) {
    throw new ServerError('bad_config', `${platform.from} must be one of ${PLATFORMS.join(', ')}`);
  }
  if (host && !/^[0-9A-Za-z.:\-[\]%]+$/.test(host.value)) throw new ServerError('bad_config', `${host.from} is not a host name or address`);

  let proxyTrust: ProxyTrust | undefined;
  if (trustProxy) {
    const proxies = trustProxy.value.split(',').map((a) => a.trim().toLowerCase()).filter((a) => a.length > 0);
    if (proxies.length === 0 || proxies.some((a) => !isValidProxyEntry(a))) {
      throw new ServerError('bad_config', `${trustProxy.from} must be a comma-separated list of IP addresses or CIDR ranges`);
    }
    const header = (proxyHeader?.value ?? 'x-forwarded-for').trim().toLowerCase();
    if (!/^[a-z0-9-]{1,64}$/.test(header)) throw new ServerError('bad_config', `${proxyHeader!.from} is not a header name`);
    proxyTrust = { proxies, header };
  } else if (proxyHeader) {
    throw new ServerError('bad_config', `${proxyHeader.from} needs --trust-proxy (a header is believed only from named proxies)`);
  }

  const overrides: Partial<Limits> = {};
  if (padding) overrides.streamPadding = padding.value === 'on';
  for (const f of LIMIT_FLAGS) {
    const v = pick(f.flag, f.env);
    if (v) (overrides as Record<string, number>)[f.key] = number(v, f.real ? 'real' : 'int', 0);
  }
  return {
    host: host?.value ?? DEFAULT_HOST,
    port: port ? number(port, 'int', 0, 65535) : DEFAULT_PORT,
    modelDir: modelDir?.value ?? DEFAULT_MODEL_DIR,
    modelFile: modelFile?.value,
    platform: (platform?.value as PlatformChoice | undefined) ?? 'auto',
    threads: threads ? number(threads, 'int', 1, 1024) : undefined,
    limits: limitsWithFlagNames(overrides),
    proxyTrust,
    maxBodyBytesGiven: overrides.maxBodyBytes !== undefined,
    logFormat: (logFormat?.value as LogFormat | undefined) ?? 'text',
    metricsListen: metricsListen ? hostPort(metricsListen) : undefined,
    engineThread: (engineThread?.value as 'worker' | 'main' | undefined) ?? 'worker',
  };
}

/** HOST:PORT, or [IPv6]:PORT; the port is required (no default that could collide with the public one). */
function hostPort(v: { value: string; from: string }): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9A-Za-z.\-]+)):([0-9]{1,5})$/.exec(v.value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ServerError('bad_config', `${v.from} must be HOST:PORT (e.g. 127.0.0.1:9464)`);
  return { host: m[1] ?? m[2]!, port };
}

function number(v: { value: string; from: string }, kind: 'int' | 'real', min: number, max = Number.MAX_SAFE_INTEGER): number {
  const re = kind === 'int' ? /^[0-9]+$/ : /^[0-9]+(\.[0-9]+)?$/;
  const n = Number(v.value);
  if (!re.test(v.value.trim()) || !Number.isFinite(n) || n < min || n > max) {
    throw new ServerError('bad_config', `${v.from} must be ${kind === 'int' ? 'an integer' : 'a number'} in ${min}..${max}`);
  }
  return n;
}

/** resolveLimits, with errors naming the flag rather than the internal key. */
function limitsWithFlagNames(overrides: Partial<Limits>): Limits {
  try {
    return resolveLimits(overrides);
  } catch (e) {
    if (!(e instanceof ServerError)) throw e;
    let message = e.message;
    for (const f of LIMIT_FLAGS) message = message.replace(new RegExp(`\\b${f.key}\\b`, 'g'), `--${f.flag}`);
    throw new ServerError('bad_config', message);
  }
}
