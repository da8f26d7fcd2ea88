/**
 * Binary HTTP (RFC 9292): known- and indeterminate-length requests and responses, informational (1xx)
 * responses, trailers, padding and truncation; plus an incremental indeterminate-length response encoder
 * and decoder, which is how a streamed (SSE) answer travels inside chunked OHTTP.
 *
 * Field names and values are byte strings; they surface as JS strings with one char per byte (latin1,
 * like fetch's ByteString), so no byte is lost or reinterpreted. Decoding is strict: names are
 * lowercase tokens (so no pseudo-fields), values carry no control characters and no surrounding
 * whitespace (RFC 9110 section 5.5), non-zero padding is an
 * error, and every length is checked against what remains and against TransportLimits.
 */
import { ByteQueue, concat, encodeVarint, peekVarint, Reader, EMPTY } from './bytes.js';
import { TransportError } from './errors.js';
import { resolveLimits, type TransportLimits } from './limits.js';

export type Field = [name: string, value: string];

export interface BhttpRequest {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  headers: Field[];
  content: Uint8Array;
  trailers: Field[];
}

export interface InformationalResponse {
  status: number;
  headers: Field[];
}

export interface BhttpResponse {
  informational: InformationalResponse[];
  status: number;
  headers: Field[];
  content: Uint8Array;
  trailers: Field[];
}

export type Framing = 'known' | 'indeterminate';

export interface EncodeOptions {
  /** Indeterminate-length framing (default: known-length). */
  indeterminate?: boolean;
  /** Zero bytes appended after the message (RFC 9292 section 3.8). */
  padding?: number;
  /** Omit trailing empty sections (RFC 9292 section 3.8 truncation). */
  truncate?: boolean;
}

const FRAMING_KNOWN_REQUEST = 0;
const FRAMING_KNOWN_RESPONSE = 1;
const FRAMING_INDETERMINATE_REQUEST = 2;
const FRAMING_INDETERMINATE_RESPONSE = 3;

// ---------------------------------------------------------------- byte strings and validation

function latin1Bytes(s: string, what: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new TransportError('invalid_argument', `${what} has a character outside one byte`);
    out[i] = c;
  }
  return out;
}

function latin1String(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, i + 4096));
  return s;
}

// RFC 9110 tchar, lowercase only (RFC 9292 section 3.5 requires lowercase names).
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
const TCHAR_ANY_CASE = TCHAR.slice();
for (let c = 65; c <= 90; c++) TCHAR_ANY_CASE[c] = 1;

function validName(b: Uint8Array): boolean {
  if (b.length === 0) return false;
  for (let i = 0; i < b.length; i++) if (!TCHAR[b[i]]) return false;
  return true;
}

/** RFC 9110 section 5.5 field-value: VCHAR, obs-text, and SP/HTAB inside (never at either end); no controls. */
function validValue(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  if (b.length > 0) {
    const first = b[0];
    const last = b[b.length - 1];
    if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  }
  return true;
}

function validMethod(b: Uint8Array): boolean {
  if (b.length === 0) return false;
  for (let i = 0; i < b.length; i++) if (!TCHAR_ANY_CASE[b[i]]) return false;
  return true;
}

/** Scheme, authority, path: visible ASCII only (no spaces, no controls). */
function validVisible(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] < 0x21 || b[i] > 0x7e) return false;
  return true;
}

// ---------------------------------------------------------------- encoding

function encodeFieldLines(fields: readonly Field[] | undefined): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (const [name, value] of fields ?? []) {
    const n = latin1Bytes(name, 'field name');
    const v = latin1Bytes(value, 'field value');
    if (!validName(n)) throw new TransportError('invalid_argument', 'field name is not a lowercase token');
    if (!validValue(v)) throw new TransportError('invalid_argument', 'field value has forbidden characters');
    parts.push(encodeVarint(n.length), n, encodeVarint(v.length), v);
  }
  return parts;
}

function encodeFieldSection(fields: readonly Field[] | undefined, indeterminate: boolean): Uint8Array {
  const lines = concat(...encodeFieldLines(fields));
  return indeterminate ? concat(lines, Uint8Array.of(0)) : concat(encodeVarint(lines.length), lines);
}

function encodeContent(content: Uint8Array | undefined, indeterminate: boolean): Uint8Array {
  const c = content ?? EMPTY;
  if (!indeterminate) return concat(encodeVarint(c.length), c);
  return c.length === 0 ? Uint8Array.of(0) : concat(encodeVarint(c.length), c, Uint8Array.of(0));
}

/** Header, content and trailer sections, with RFC 9292 truncation of trailing empty ones if asked. */
function encodeSections(headers: readonly Field[] | undefined, content: Uint8Array | undefined,
  trailers: readonly Field[] | undefined, opts: EncodeOptions): Uint8Array[] {
  const ind = !!opts.indeterminate;
  const sections = [encodeFieldSection(headers, ind), encodeContent(content, ind), encodeFieldSection(trailers, ind)];
  if (opts.truncate) {
    const empties = [!(headers?.length), !(content?.length), !(trailers?.length)];
    while (sections.length > 0 && empties[sections.length - 1]) sections.pop();
  }
  const padding = opts.padding ?? 0;
  if (!Number.isSafeInteger(padding) || padding < 0) throw new TransportError('invalid_argument', 'padding must be a non-negative integer');
  if (padding > 0) sections.push(new Uint8Array(padding));
  return sections;
}

function controlItem(s: string, what: string, check: (b: Uint8Array) => boolean): Uint8Array {
  const b = latin1Bytes(s, what);
  if (!check(b)) throw new TransportError('invalid_argument', `${what} has forbidden characters`);
  return concat(encodeVarint(b.length), b);
}

export function encodeRequest(req: Partial<BhttpRequest> & Pick<BhttpRequest, 'method' | 'path'>, opts: EncodeOptions = {}): Uint8Array {
  const framing = opts.indeterminate ? FRAMING_INDETERMINATE_REQUEST : FRAMING_KNOWN_REQUEST;
  return concat(
    encodeVarint(framing),
    controlItem(req.method, 'method', validMethod),
    controlItem(req.scheme ?? 'https', 'scheme', (b) => b.length > 0 && validVisible(b)),
    controlItem(req.authority ?? '', 'authority', validVisible),
    controlItem(req.path, 'path', (b) => b.length > 0 && validVisible(b)),
    ...encodeSections(req.headers, req.content, req.trailers, opts),
  );
}

function checkStatus(status: number, informational: boolean): void {
  const ok = Number.isInteger(status) && (informational ? status >= 100 && status <= 199 : status >= 200 && status <= 599);
  if (!ok) throw new TransportError('invalid_argument', informational ? 'informational status must be 1xx' : 'final status must be 200..599');
}

export function encodeResponse(res: Partial<BhttpResponse> & Pick<BhttpResponse, 'status'>, opts: EncodeOptions = {}): Uint8Array {
  const ind = !!opts.indeterminate;
  const parts: Uint8Array[] = [encodeVarint(ind ? FRAMING_INDETERMINATE_RESPONSE : FRAMING_KNOWN_RESPONSE)];
  for (const info of res.informational ?? []) {
    checkStatus(info.status, true);
    parts.push(encodeVarint(info.status), encodeFieldSection(info.headers, ind));
  }
  checkStatus(res.status, false);
  parts.push(encodeVarint(res.status), ...encodeSections(res.headers, res.content, res.trailers, opts));
  return concat(...parts);
}

// ---------------------------------------------------------------- decoding

/** Per-message decoding state: limits and the running field count. */
class FieldBudget {
  count = 0;
  constructor(readonly limits: TransportLimits) {}
  take(): void {
    if (++this.count > this.limits.maxFieldCount) throw new TransportError('too_large', 'too many fields');
  }
}

function readFieldLine(r: Reader, budget: FieldBudget, nameLength?: number): Field {
  const max = budget.limits.maxFieldLength;
  const nlen = nameLength ?? r.varint();
  if (nlen > max) throw new TransportError('too_large', 'field name exceeds limit');
  const name = r.bytes(nlen);
  const value = r.lengthPrefixed(max);
  if (!validName(name)) throw new TransportError('malformed', 'field name is not a lowercase token');
  if (!validValue(value)) throw new TransportError('malformed', 'field value has forbidden characters');
  budget.take();
  return [latin1String(name), latin1String(value)];
}

function readFieldSection(r: Reader, ind: boolean, budget: FieldBudget): Field[] {
  const fields: Field[] = [];
  if (ind) {
    for (;;) {
      const nlen = r.varint();
      if (nlen === 0) return fields;
      fields.push(readFieldLine(r, budget, nlen));
    }
  }
  const len = r.varint();
  const sub = r.sub(len);
  while (!sub.done) fields.push(readFieldLine(sub, budget));
  return fields;
}

function readContent(r: Reader, ind: boolean): Uint8Array {
  if (!ind) return r.bytes(r.varint()).slice();
  const chunks: Uint8Array[] = [];
  for (;;) {
    const len = r.varint();
    if (len === 0) return concat(...chunks);
    chunks.push(r.bytes(len));
  }
}

function readControlItem(r: Reader, limits: TransportLimits, what: string, check: (b: Uint8Array) => boolean): string {
  const b = r.lengthPrefixed(limits.maxFieldLength);
  if (!check(b)) throw new TransportError('malformed', `${what} is invalid`);
  return latin1String(b);
}

/** Whatever is left after the last section must be zero padding. */
function checkPadding(r: Reader): void {
  const rest = r.rest();
  for (let i = 0; i < rest.length; i++) if (rest[i] !== 0) throw new TransportError('malformed', 'non-zero padding');
}

/** Header, content and trailer sections, each of which may be truncated away at a section boundary. */
function readSections(r: Reader, ind: boolean, budget: FieldBudget): { headers: Field[]; content: Uint8Array; trailers: Field[] } {
  const headers = r.done ? [] : readFieldSection(r, ind, budget);
  const content = r.done ? new Uint8Array(0) : readContent(r, ind);
  const trailers = r.done ? [] : readFieldSection(r, ind, budget);
  checkPadding(r);
  return { headers, content, trailers };
}

export function decodeRequest(bytes: Uint8Array, limits?: Partial<TransportLimits>): BhttpRequest & { framing: Framing } {
  const lim = resolveLimits(limits);
  if (bytes.length > lim.maxRequestSize) throw new TransportError('too_large', 'request exceeds limit');
  const r = new Reader(bytes);
  const framing = r.varint();
  if (framing !== FRAMING_KNOWN_REQUEST && framing !== FRAMING_INDETERMINATE_REQUEST) {
    throw new TransportError('malformed', 'not a Binary HTTP request');
  }
  const ind = framing === FRAMING_INDETERMINATE_REQUEST;
  const method = readControlItem(r, lim, 'method', validMethod);
  const scheme = readControlItem(r, lim, 'scheme', (b) => b.length > 0 && validVisible(b));
  const authority = readControlItem(r, lim, 'authority', validVisible);
  const path = readControlItem(r, lim, 'path', (b) => b.length > 0 && validVisible(b));
  const sections = readSections(r, ind, new FieldBudget(lim));
  return { framing: ind ? 'indeterminate' : 'known', method, scheme, authority, path, ...sections };
}

export function decodeResponse(bytes: Uint8Array, limits?: Partial<TransportLimits>): BhttpResponse & { framing: Framing } {
  const lim = resolveLimits(limits);
  if (bytes.length > lim.maxResponseSize) throw new TransportError('too_large', 'response exceeds limit');
  const r = new Reader(bytes);
  const framing = r.varint();
  if (framing !== FRAMING_KNOWN_RESPONSE && framing !== FRAMING_INDETERMINATE_RESPONSE) {
    throw new TransportError('malformed', 'not a Binary HTTP response');
  }
  const ind = framing === FRAMING_INDETERMINATE_RESPONSE;
  const budget = new FieldBudget(lim);
  const informational: InformationalResponse[] = [];
  for (;;) {
    const status = r.varint();
    if (status >= 100 && status <= 199) {
      // An informational response is always followed by more, so its header section cannot be truncated away.
      informational.push({ status, headers: readFieldSection(r, ind, budget) });
      continue;
    }
    if (status < 200 || status > 599) throw new TransportError('malformed', 'invalid status code');
    return { framing: ind ? 'indeterminate' : 'known', informational, status, ...readSections(r, ind, budget) };
  }
}

// ---------------------------------------------------------------- incremental indeterinate-length response

/**
 * Writes one indeterminate-length response piece by piece: `informational()`* then `head()`, `body()`*,
 * `end()`. Each call returns the bytes to send now (the first call includes the framing indicator), so
 * a streamed event can be sealed and flushed the moment it exists.
 */
export class BhttpResponseStreamEncoder {
  #state: 'start' | 'body' | 'done' = 'start';
  #framed = false;

  #frame(parts: Uint8Array[]): Uint8Array {
    if (!this.#framed) {
      this.#framed = true;
      parts.unshift(encodeVarint(FRAMING_INDETERMINATE_RESPONSE));
    }
    return concat(...parts);
  }

  informational(status: number, headers: readonly Field[] = []): Uint8Array {
    if (this.#state !== 'start') throw new TransportError('state', 'informational response after the final head');
    checkStatus(status, true);
    return this.#frame([encodeVarint(status), encodeFieldSection(headers, true)]);
  }

  head(status: number, headers: readonly Field[] = []): Uint8Array {
    if (this.#state !== 'start') throw new TransportError('state', 'head written twice');
    checkStatus(status, false);
    const out = this.#frame([encodeVarint(status), encodeFieldSection(headers, true)]);
    this.#state = 'body';
    return out;
  }

  /** One content chunk. An empty chunk returns no bytes (a zero length would end the content). */
  body(chunk: Uint8Array): Uint8Array {
    if (this.#state !== 'body') throw new TransportError('state', 'body outside head..end');
    if (chunk.length === 0) return new Uint8Array(0);
    return concat(encodeVarint(chunk.length), chunk);
  }

  end(trailers: readonly Field[] = []): Uint8Array {
    if (this.#state !== 'body') throw new TransportError('state', 'end before head or twice');
    this.#state = 'done';
    return concat(Uint8Array.of(0), encodeFieldSection(trailers, true));
  }
}

export type BhttpResponseEvent =
  | { type: 'informational'; status: number; headers: Field[] }
  | { type: 'head'; status: number; headers: Field[] }
  | { type: 'body'; chunk: Uint8Array }
  | { type: 'end'; trailers: Field[] };

type DecoderState = 'framing' | 'status' | 'interim-fields' | 'head-fields' | 'content' | 'trailers' | 'padding' | 'known';

/**
 * Incremental response decoder. `push(bytes)` returns the events completed by those bytes; `end()` is
 * called when the input is over and fails with 'truncated' unless the message ended at a point RFC 9292
 * allows. Indeterminate-length responses are decoded as they arrive; a known-length response is
 * buffered (within maxResponseSize) and decoded at `end()`.
 */
export class BhttpResponseStreamDecoder {
  readonly #limits: TransportLimits;
  readonly #budget: FieldBudget;
  readonly #q = new ByteQueue();
  #total = 0;
  #state: DecoderState = 'framing';
  #status = 0;
  #fields: Field[] = [];
  #sectionStarted = false;
  #finished = false;
  #failed = false;

  constructor(limits?: Partial<TransportLimits>) {
    this.#limits = resolveLimits(limits);
    this.#budget = new FieldBudget(this.#limits);
  }

  push(bytes: Uint8Array): BhttpResponseEvent[] {
    if (this.#finished) throw new TransportError('state', 'decoder already ended');
    if (this.#failed) throw new TransportError('state', 'decoder failed earlier');
    this.#total += bytes.length;
    if (this.#total > this.#limits.maxResponseSize) return this.#fail(new TransportError('too_large', 'response exceeds limit'));
    this.#q.push(bytes);
    try {
      return this.#drain();
    } catch (e) {
      return this.#fail(e);
    }
  }

  end(): BhttpResponseEvent[] {
    if (this.#finished) throw new TransportError('state', 'decoder already ended');
    if (this.#failed) throw new TransportError('state', 'decoder failed earlier');
    this.#finished = true;
    try {
      return this.#finish();
    } catch (e) {
      this.#failed = true;
      throw e;
    }
  }

  #fail(e: unknown): never {
    this.#failed = true;
    this.#q.clear();
    throw e instanceof TransportError ? e : new TransportError('malformed', 'invalid Binary HTTP response');
  }

  #finish(): BhttpResponseEvent[] {
    if (this.#state === 'known') {
      const res = decodeResponse(this.#q.takeAll(), this.#limits);
      const events: BhttpResponseEvent[] = res.informational.map((i) => ({ type: 'informational' as const, ...i }));
      events.push({ type: 'head', status: res.status, headers: res.headers });
      if (res.content.length) events.push({ type: 'body', chunk: res.content });
      events.push({ type: 'end', trailers: res.trailers });
      return events;
    }
    // RFC 9292 section 3.8: after the final status, a message may end at any section boundary.
    const clean = this.#q.length === 0 && !this.#sectionStarted;
    switch (this.#state) {
      case 'padding':
        return [];
      case 'head-fields':
        if (clean) return [{ type: 'head', status: this.#status, headers: [] }, { type: 'end', trailers: [] }];
        break;
      case 'content':
      case 'trailers':
        if (clean) return [{ type: 'end', trailers: [] }];
        break;
    }
    throw new TransportError('truncated', 'response ended early');
  }

  /** Bytes in the next complete field line, or undefined if it has not fully arrived. Limits apply first. */
  #fieldLineLength(nameLen: { value: number; length: number }): number | undefined {
    const max = this.#limits.maxFieldLength;
    if (nameLen.value > max) throw new TransportError('too_large', 'field name exceeds limit');
    const valueAt = nameLen.length + nameLen.value;
    const head = this.#q.peek(valueAt + 8);
    const valueLen = peekVarint(head, valueAt);
    if (!valueLen) return undefined;
    if (valueLen.value > max) throw new TransportError('too_large', 'field value exceeds limit');
    const total = valueAt + valueLen.length + valueLen.value;
    return this.#q.length >= total ? total : undefined;
  }

  /** Parses every complete element queued; stops when the next one is incomplete. */
  #drain(): BhttpResponseEvent[] {
    const events: BhttpResponseEvent[] = [];
    const q = this.#q;
    for (;;) {
      if (this.#state === 'known') return events; // buffered whole, decoded at end()
      if (this.#state === 'padding') {
        const rest = q.takeAll();
        for (let i = 0; i < rest.length; i++) if (rest[i] !== 0) throw new TransportError('malformed', 'non-zero padding');
        return events;
      }
      const v = q.peekVarint();
      if (!v) return events;
      switch (this.#state) {
        case 'framing':
          if (v.value === FRAMING_KNOWN_RESPONSE) {
            this.#state = 'known'; // keep everything, framing indicator included
            continue;
          }
          if (v.value !== FRAMING_INDETERMINATE_RESPONSE) throw new TransportError('malformed', 'not a Binary HTTP response');
          q.skip(v.length);
          this.#state = 'status';
          continue;
        case 'status':
          q.skip(v.length);
          if (v.value >= 100 && v.value <= 199) this.#state = 'interim-fields';
          else if (v.value >= 200 && v.value <= 599) this.#state = 'head-fields';
          else throw new TransportError('malformed', 'invalid status code');
          this.#status = v.value;
          this.#fields = [];
          this.#sectionStarted = false;
          continue;
        case 'content':
          if (v.value === 0) {
            q.skip(v.length);
            this.#state = 'trailers';
            this.#fields = [];
            this.#sectionStarted = false;
            continue;
          }
          if (v.value > this.#limits.maxResponseSize) throw new TransportError('too_large', 'content chunk exceeds limit');
          if (q.length < v.length + v.value) return events;
          q.skip(v.length);
          this.#sectionStarted = true;
          events.push({ type: 'body', chunk: q.take(v.value) });
          continue;
        default:
          break;
      }
      // A field line or the terminator of an interim, head or trailer section.
      if (v.value === 0) {
        q.skip(v.length);
        const fields = this.#fields;
        this.#fields = [];
        this.#sectionStarted = false;
        if (this.#state === 'interim-fields') {
          events.push({ type: 'informational', status: this.#status, headers: fields });
          this.#state = 'status';
        } else if (this.#state === 'head-fields') {
          events.push({ type: 'head', status: this.#status, headers: fields });
          this.#state = 'content';
        } else {
          events.push({ type: 'end', trailers: fields });
          this.#state = 'padding';
        }
        continue;
      }
      const len = this.#fieldLineLength(v);
      if (len === undefined) return events;
      this.#fields.push(readFieldLine(new Reader(q.take(len)), this.#budget));
      this.#sectionStarted = true;
    }
  }
}
