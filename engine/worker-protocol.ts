/**
 * What crosses between the engine's worker thread and the thread that serves: the messages,
 * and the per-step event batch. One scheduler iteration's events (a token for each of 32
 * sequences, say) travel as ONE message: a small Int32Array of records and one UTF-8 byte
 * buffer, both transferred, not cloned. The receiver decodes each piece of text and zeroes the
 * bytes (they are plaintext), and a transferred buffer leaves no copy behind in the worker.
 */
import { EngineError, type EngineErrorCode } from './errors.js';
import type { EngineOptions, GenerateEvent } from './engine.js';
import type { PlannedRequest } from './plan.js';

/** What the worker needs to open the model: EngineOptions without its callbacks, the admission bounds settled. */
export type WorkerInit = Omit<EngineOptions, 'afterStep' | 'onProgress' | 'maxBatch' | 'maxQueue'> & { maxBatch: number; maxQueue: number };

/** The loaded engine as the serving thread sees it, sent once by the worker. */
export interface WorkerReady {
  model: { id: string; variant: string; digest: string; contextLength: number; manifest: import('./manifest.js').Manifest };
  threads: number;
  decodeMode: 'slot' | 'plain' | 'unbatched';
  padding: 'left' | 'right';
  dtypes: { kv: 'float32' | 'float16'; logits: 'float32' | 'float16' };
  stopTokenIds: number[];
  vocabSize: number;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

export type ToWorker =
  | { t: 'gen'; id: number; plan: PlannedRequest }
  | { t: 'cancel'; id: number }
  | { t: 'stats'; id: number }
  | { t: 'close' };

export type FromWorker =
  | { t: 'ready'; info: WorkerReady }
  | { t: 'failed'; message: string }
  | { t: 'progress'; line: string }
  | { t: 'events'; batch: EventBatch }
  | { t: 'stats'; id: number; stats: import('./engine.js').EngineStats }
  | { t: 'closed' };

/** Record kinds of an event batch. */
const DELTA = 0;
const DONE = 1;
const END = 2;
const FAIL = 3;
/** id, kind, byte start, byte end. */
const RECORD = 4;

export interface EventBatch {
  records: Int32Array;
  bytes: Uint8Array;
  /** done events' numbers and failures' codes, in record order. */
  extra: Array<DoneExtra | FailExtra>;
}

interface DoneExtra {
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
  tokenIds?: number[];
}

interface FailExtra {
  code: EngineErrorCode;
  message: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The worker's side: events gathered during one scheduler iteration. */
export class EventOutbox {
  private ids: number[] = [];
  private kinds: number[] = [];
  private texts: string[] = [];
  private extra: Array<DoneExtra | FailExtra> = [];

  get size(): number {
    return this.ids.length;
  }

  event(id: number, ev: GenerateEvent): void {
    if (ev.type === 'delta') this.add(id, DELTA, ev.text);
    else {
      this.add(id, DONE, '');
      this.extra.push({
        finishReason: ev.finishReason,
        promptTokens: ev.promptTokens,
        completionTokens: ev.completionTokens,
        ...(ev.tokenIds && { tokenIds: [...ev.tokenIds] }),
      });
    }
  }

  end(id: number): void {
    this.add(id, END, '');
  }

  fail(id: number, err: EngineError): void {
    this.add(id, FAIL, '');
    this.extra.push({ code: err.code, message: err.message });
  }

  /** The batch to post (its two buffers to transfer), and an empty outbox. */
  take(): EventBatch {
    const n = this.ids.length;
    const records = new Int32Array(n * RECORD);
    let total = 0;
    for (const t of this.texts) total += t.length * 3;
    const bytes = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const text = this.texts[i]!;
      const start = at;
      if (text.length > 0) at += encoder.encodeInto(text, bytes.subarray(at)).written;
      records[i * RECORD] = this.ids[i]!;
      records[i * RECORD + 1] = this.kinds[i]!;
      records[i * RECORD + 2] = start;
      records[i * RECORD + 3] = at;
    }
    const batch = { records, bytes, extra: this.extra };
    this.ids = [];
    this.kinds = [];
    this.texts = [];
    this.extra = [];
    return batch;
  }

  private add(id: number, kind: number, text: string): void {
    this.ids.push(id);
    this.kinds.push(kind);
    this.texts.push(text);
  }
}

/** Where the serving thread delivers a decoded batch. */
export interface BatchTarget {
  event(id: number, ev: GenerateEvent): void;
  end(id: number): void;
  fail(id: number, err: EngineError): void;
}

/**
 * The serving thread's side: replays a batch into `target`, in order, then zeroes its bytes. A
 * malformed batch (which only a broken worker could send) throws before anything is delivered.
 */
export function deliverBatch(batch: EventBatch, target: BatchTarget): void {
  const { records, bytes, extra } = batch;
  if (!(records instanceof Int32Array) || !(bytes instanceof Uint8Array) || !Array.isArray(extra) || records.length % RECORD !== 0) {
    throw new EngineError('internal', 'the engine thread sent a malformed event batch');
  }
  let wanted = 0;
  for (let i = 0; i < records.length; i += RECORD) {
    const kind = records[i + 1]!;
    const start = records[i + 2]!;
    const end = records[i + 3]!;
    if (kind < DELTA || kind > FAIL || start < 0 || end < start || end > bytes.length) {
      throw new EngineError('internal', 'the engine thread sent a malformed event batch');
    }
    if (kind === DONE || kind === FAIL) wanted++;
  }
  if (wanted !== extra.length) throw new EngineError('internal', 'the engine thread sent a malformed event batch');
  try {
    let x = 0;
    for (let i = 0; i < records.length; i += RECORD) {
      const id = records[i]!;
      switch (records[i + 1]) {
        case DELTA:
          target.event(id, { type: 'delta', text: decoder.decode(bytes.subarray(records[i + 2], records[i + 3])) });
          break;
        case DONE: {
          const d = extra[x++] as DoneExtra;
          target.event(id, {
            type: 'done',
            finishReason: d.finishReason,
            promptTokens: d.promptTokens,
            completionTokens: d.completionTokens,
            ...(d.tokenIds && { tokenIds: d.tokenIds }),
          });
          break;
        }
        case END:
          target.end(id);
          break;
        default: {
          const f = extra[x++] as FailExtra;
          target.fail(id, new EngineError(f.code, f.message));
        }
      }
    }
  } finally {
    bytes.fill(0);
  }
}
