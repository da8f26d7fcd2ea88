// server/: the public API of the confidential inference server.
export { createApp, createRuntime, type AppDeps, type ServerRuntime } from './app.js';
export { createInnerApp, type InnerAppOptions, type InnerLimits } from './inner/app.js';
export { startServer, type StartOptions, type RunningServer } from './lifecycle.js';
export { DEFAULT_LIMITS, resolveLimits, limitsSchema, type Limits } from './limits.js';
export { parseServeConfig, SERVE_HELP, type ServeConfig, type PlatformChoice } from './config.js';
export { createLogger, formatRequestLog, formatRequestLogJson, silentLogger, type Logger, type LogFormat, type RequestLogRecord } from './log.js';
export { Metrics, countingEngine, countingLogger, type Gauges } from './metrics.js';
export { startMetricsListener, type MetricsListener } from './metrics-http.js';
export { GenerationLimiter, type Permit } from './limiter.js';
export { SessionStore, type Session } from './sessions.js';
export { ReplayGuard, type ReplayVerdict } from './replay.js';
export { ServerError, isServerError, type ServerErrorCode } from './errors.js';
export { OHTTP_KEY_PROBLEM_TYPE } from './problem.js';
export type { InferenceEngine, GenerateRequest, GenerateEvent, ChatMessage, EngineModelInfo } from './engine.js';
export { AttestationRateLimiter, RateBucket, clientAddressKey } from './rate.js';
export { requestAddressKey, type ProxyTrust } from './client-address.js';
