// ONNX Runtime for the engine, with its telemetry off. onnxruntime-node 1.30's Linux build starts
// Microsoft's telemetry client when the runtime creates its environment (with the first session):
// it writes a database under ~/.cache/Microsoft/DeveloperTools, a debug log in /tmp, and uploads
// over HTTPS when it finds a CA bundle. A server that stores nothing and talks to no one cannot
// have that. The runtime reads ORT_DISABLE_TELEMETRY when it creates that environment, so this
// module sets it before any session can exist, and every engine module imports ONNX Runtime from
// here. (test/server-strace.test.ts caught the writes.)
import process from 'node:process';
import * as ort from 'onnxruntime-node';

process.env.ORT_DISABLE_TELEMETRY = '1';

export { ort };
