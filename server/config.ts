// `sealed serve` configuration from flags and environment variables (a flag wins over its
// variable). Pure: argv and env in, a validated configuration out, or a ServerError('bad_config').
import { parseArgs } from 'node:util';
import { ServerError } from './errors.js';
import { DEFAULT_LIMITS, resolveLimits, type Limits } from './limits.js';
import type { ProxyTrust } from './client-address.js';

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
  --trust-proxy ADDRS    comma-separated peer addresses of the reverse proxies in front of this
                         server [SEALED_TRUST_PROXY]; only for connections from them is the client
                         address (for the attestation limits) read from --proxy-address-header.
                         Default: none, the connection's own peer address is used.
  --proxy-address-header NAME
                         header those proxies append the client address to [SEALED_PROXY_ADDRESS_HEADER]
                         (default x-forwarded-for; its rightmost entry is used)
${LIMIT_FLAGS.map((f) => `  --${(f.flag + ' N').padEnd(28)} ${f.help} [${f.env}] (default ${String(DEFAULT_LIMITS[f.key])})`).join('\n')}
  -h, --help             this text

Simulation (--platform simulated) protects nothing: the evidence is signed by a key made at
start-up, and clients accept it only with --allow-simulation.
The process writes no file. SIGINT/SIGTERM stop it gracefully: new requests are refused,
running ones get the shutdown grace, then are cancelled, and every session key is wiped.
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

  if (platform && !(PLATFORMS as readonly string[]).includes(platform.value)) {
    throw new ServerError('bad_config', `${platform.from} must be one of ${PLATFORMS.join(', ')}`);
  }
  if (host && !/^[0-9A-Za-z.:\-[\]%]+$/.test(host.value)) throw new ServerError('bad_config', `${host.from} is not a host name or address`);

  let proxyTrust: ProxyTrust | undefined;
  if (trustProxy) {
    const proxies = trustProxy.value.split(',').map((a) => a.trim().toLowerCase()).filter((a) => a.length > 0);
    if (proxies.length === 0 || proxies.some((a) => !/^[0-9a-f.:]{2,45}$/.test(a))) {
      throw new ServerError('bad_config', `${trustProxy.from} must be a comma-separated list of IP addresses`);
    }
    const header = (proxyHeader?.value ?? 'x-forwarded-for').trim().toLowerCase();
    if (!/^[a-z0-9-]{1,64}$/.test(header)) throw new ServerError('bad_config', `${proxyHeader!.from} is not a header name`);
    proxyTrust = { proxies, header };
  } else if (proxyHeader) {
    throw new ServerError('bad_config', `${proxyHeader.from} needs --trust-proxy (a header is believed only from named proxies)`);
  }

  const overrides: Partial<Limits> = {};
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
  };
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
