/**
 * The engine's worker thread: ONNX Runtime, the runner and the scheduler live here, so a
 * decode step (a synchronous call inside onnxruntime-node) never blocks the thread that
 * parses HTTP, seals and writes. Requests arrive already checked (engine/plan.ts); each
 * scheduler iteration's events leave as one message (worker-protocol.ts).
 */
import process from 'node:process';
import { parentPort, workerData } from 'node:worker_threads';
import type { Engine } from './engine.js';
import { EngineError } from './errors.js';
import type { Ticket } from './scheduler.js';
import { EventOutbox, type FromWorker, type ToWorker, type WorkerInit } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('engine/worker-thread.ts runs only as a worker thread');

const post = (msg: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(msg, transfer ?? []);

const outbox = new EventOutbox();
let flushQueued = false;

function flush(): void {
  flushQueued = false;
  if (outbox.size === 0) return;
  const batch = outbox.take();
  post({ t: 'events', batch }, [batch.records.buffer as ArrayBuffer, batch.bytes.buffer as ArrayBuffer]);
}

/** Events raised outside a step (a cancel, a close, a failed step) still leave, once, soon. */
function flushSoon(): void {
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(flush);
}

async function main(init: WorkerInit): Promise<void> {
  // A worker's process.env is its own copy: setting the variable here would not reach the
  // runtime's getenv(). The serving thread sets it in the real environment before starting
  // this thread; refuse to open the runtime if it did not.
  if (process.env.ORT_DISABLE_TELEMETRY !== '1') {
    post({ t: 'failed', message: 'ONNX Runtime telemetry is not disabled in the environment' });
    return;
  }
  let engine: Engine;
  try {
    // Imported only now: ort.ts sets the variable in this thread's copy of the environment,
    // which would hide a parent that did not set it.
    const { Engine } = await import('./engine.js');
    engine = await Engine.create({
      ...init,
      onProgress: (line) => post({ t: 'progress', line }),
      afterStep: flush,
    });
  } catch (e) {
    post({ t: 'failed', message: e instanceof Error ? e.message : 'unknown error' });
    return;
  }
  const tickets = new Map<number, Ticket>();
  const tok = engine.tokenizerSource();
  post({
    t: 'ready',
    info: {
      model: { ...engine.model },
      threads: engine.threads,
      decodeMode: engine.decodeMode,
      padding: engine.padding,
      dtypes: { ...engine.dtypes },
      stopTokenIds: [...engine.stopTokenIds],
      vocabSize: tok.vocabSize,
      tokenizerJson: tok.tokenizerJson,
      tokenizerConfig: tok.tokenizerConfig,
    },
  });

  port!.on('message', (msg: ToWorker) => {
    switch (msg.t) {
      case 'gen': {
        const { id, plan } = msg;
        let finished = false;
        const sink = {
          push: (ev: Parameters<EventOutbox['event']>[1]) => {
            if (!finished) outbox.event(id, ev);
          },
          end: () => {
            if (finished) return;
            finished = true;
            tickets.delete(id);
            outbox.end(id);
            flushSoon();
          },
          fail: (err: EngineError) => {
            if (finished) return;
            finished = true;
            tickets.delete(id);
            outbox.fail(id, err);
            flushSoon();
          },
        };
        try {
          tickets.set(id, engine.start(plan, sink));
        } catch (e) {
          sink.fail(e instanceof EngineError ? e : new EngineError('internal', 'the request could not be scheduled'));
        }
        break;
      }
      case 'cancel':
        tickets.get(msg.id)?.cancel();
        break;
      case 'stats':
        post({ t: 'stats', id: msg.id, stats: engine.stats() });
        break;
      case 'close':
        void engine.close().finally(() => {
          flush();
          post({ t: 'closed' });
          port!.close();
        });
        break;
    }
  });
}

void main(workerData as WorkerInit);
