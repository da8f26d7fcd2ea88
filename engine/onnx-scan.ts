/**
 * Reads, from an ONNX graph file, the two facts the loader needs before ONNX
 * Runtime sees it: which external data files its tensors name (they must be
 * hashed into the manifest and must lie inside the model directory), and
 * which operators it uses (a GroupQueryAttention graph needs another cache
 * layout). It walks the protobuf through a positioned reader and never reads
 * a tensor's payload, so a graph with gigabytes of embedded weights is scanned
 * without being held in memory.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { EngineError } from './errors.js';

/** Bytes [pos, pos + len) of the file (fewer only at its end). */
export type ByteReader = (pos: number, len: number) => Uint8Array;

export interface GraphScan {
  /** External data locations, as the graph records them, in first-use order. */
  readonly externalFiles: readonly string[];
  /** Operators used, as "domain:op_type" ("" domain is the ONNX standard one), subgraphs included. */
  readonly ops: ReadonlySet<string>;
}

const bad = (file: string, what: string) => new EngineError('model_invalid', `${file}: ${what}`);

interface Field {
  readonly field: number;
  readonly wire: number;
  /** Payload [start, end) for wire type 2; the varint's value for wire type 0. */
  readonly start: number;
  readonly end: number;
  readonly value: bigint;
}

class Walker {
  constructor(private readonly read: ByteReader, private readonly file: string) {}

  private varint(pos: number, end: number): [bigint, number] {
    const bytes = this.read(pos, Math.min(10, end - pos));
    let result = 0n;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) return [BigInt.asUintN(64, result), pos + i + 1];
    }
    throw bad(this.file, 'truncated or malformed protobuf');
  }

  /** Top-level fields of the message in [start, end). */
  *fields(start: number, end: number): Generator<Field> {
    let pos = start;
    while (pos < end) {
      const [tag, p1] = this.varint(pos, end);
      const field = Number(tag >> 3n);
      const wire = Number(tag & 7n);
      let f: Field;
      switch (wire) {
        case 0: {
          const [v, p2] = this.varint(p1, end);
          f = { field, wire, start: p1, end: p2, value: v };
          break;
        }
        case 1:
          f = { field, wire, start: p1, end: p1 + 8, value: 0n };
          break;
        case 2: {
          const [len, p2] = this.varint(p1, end);
          if (len > BigInt(end - p2)) throw bad(this.file, 'protobuf field runs past its message');
          f = { field, wire, start: p2, end: p2 + Number(len), value: len };
          break;
        }
        case 5:
          f = { field, wire, start: p1, end: p1 + 4, value: 0n };
          break;
        default:
          throw bad(this.file, 'unsupported protobuf wire type');
      }
      if (field === 0 || f.end > end) throw bad(this.file, 'malformed protobuf');
      yield f;
      pos = f.end;
    }
  }

  string(f: Field): string {
    if (f.end - f.start > 4096) throw bad(this.file, 'a name in the graph is longer than 4096 bytes');
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.read(f.start, f.end - f.start));
    } catch {
      throw bad(this.file, 'a name in the graph is not valid UTF-8');
    }
  }
}

// Field numbers of onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, SparseTensorProto).
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_SPARSE_INITIALIZER = 15;
const NODE_ATTRIBUTE = 5;
const NODE_OP_TYPE = 4;
const NODE_DOMAIN = 7;
const ATTR_TENSOR = 5;
const ATTR_GRAPH = 6;
const ATTR_TENSORS = 10;
const ATTR_GRAPHS = 11;
const ATTR_SPARSE_TENSOR = 22;
const ATTR_SPARSE_TENSORS = 23;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const SPARSE_VALUES = 1;
const SPARSE_INDICES = 2;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const LOCATION_EXTERNAL = 1n;
/** Subgraphs (If/Loop bodies) nest; real exports stay shallow. */
const MAX_DEPTH = 16;

export function scanGraph(read: ByteReader, size: number, file: string): GraphScan {
  const w = new Walker(read, file);
  const externalFiles: string[] = [];
  const ops = new Set<string>();
  const len = (f: Field) => f.wire === 2;

  const tensor = (start: number, end: number) => {
    let external = false;
    let location: string | null = null;
    for (const f of w.fields(start, end)) {
      if (f.field === TENSOR_DATA_LOCATION && f.wire === 0) external = f.value === LOCATION_EXTERNAL;
      if (f.field === TENSOR_EXTERNAL_DATA && len(f)) {
        let key: string | null = null;
        let value: string | null = null;
        for (const e of w.fields(f.start, f.end)) {
          if (e.field === ENTRY_KEY && len(e)) key = w.string(e);
          if (e.field === ENTRY_VALUE && len(e)) value = w.string(e);
        }
        if (key === 'location') location = value;
      }
    }
    if (!external) return;
    if (location === null) throw bad(file, 'a tensor is stored externally but names no location');
    if (!externalFiles.includes(location)) externalFiles.push(location);
  };
  const sparse = (start: number, end: number) => {
    for (const f of w.fields(start, end)) {
      if ((f.field === SPARSE_VALUES || f.field === SPARSE_INDICES) && len(f)) tensor(f.start, f.end);
    }
  };
  const graph = (start: number, end: number, depth: number): void => {
    if (depth > MAX_DEPTH) throw bad(file, 'subgraphs nest too deeply');
    for (const f of w.fields(start, end)) {
      if (!len(f)) continue;
      if (f.field === GRAPH_INITIALIZER) tensor(f.start, f.end);
      else if (f.field === GRAPH_SPARSE_INITIALIZER) sparse(f.start, f.end);
      else if (f.field === GRAPH_NODE) node(f.start, f.end, depth);
    }
  };
  const node = (start: number, end: number, depth: number) => {
    let op = '';
    let domain = '';
    for (const f of w.fields(start, end)) {
      if (!len(f)) continue;
      if (f.field === NODE_OP_TYPE) op = w.string(f);
      else if (f.field === NODE_DOMAIN) domain = w.string(f);
      else if (f.field === NODE_ATTRIBUTE) {
        for (const a of w.fields(f.start, f.end)) {
          if (!len(a)) continue;
          if (a.field === ATTR_TENSOR || a.field === ATTR_TENSORS) tensor(a.start, a.end);
          else if (a.field === ATTR_SPARSE_TENSOR || a.field === ATTR_SPARSE_TENSORS) sparse(a.start, a.end);
          else if (a.field === ATTR_GRAPH || a.field === ATTR_GRAPHS) graph(a.start, a.end, depth + 1);
        }
      }
    }
    // ONNX treats "ai.onnx" and "" as the same domain.
    ops.add(`${domain === 'ai.onnx' ? '' : domain}:${op}`);
  };

  let graphs = 0;
  for (const f of w.fields(0, size)) {
    if (f.field === MODEL_GRAPH && len(f)) {
      graphs++;
      graph(f.start, f.end, 0);
    }
  }
  if (graphs !== 1) throw bad(file, 'not an ONNX model (no graph)');
  return { externalFiles, ops };
}

export function scanGraphBytes(bytes: Uint8Array, file: string): GraphScan {
  return scanGraph((pos, n) => bytes.subarray(pos, pos + n), bytes.length, file);
}

/** Scans a graph file through positioned reads (a small window cached), without loading it. */
export function scanGraphFile(path: string, file: string): GraphScan {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const WINDOW = 64 * 1024;
    let winStart = -1;
    let win = new Uint8Array(0);
    const read: ByteReader = (pos, n) => {
      if (n > WINDOW) {
        const out = new Uint8Array(n);
        const got = readSync(fd, out, 0, n, pos);
        return out.subarray(0, got);
      }
      if (winStart < 0 || pos < winStart || pos + n > winStart + win.length) {
        const buf = new Uint8Array(WINDOW);
        const got = readSync(fd, buf, 0, WINDOW, pos);
        win = buf.subarray(0, got);
        winStart = pos;
      }
      return win.subarray(pos - winStart, pos - winStart + n);
    };
    return scanGraph(read, size, file);
  } finally {
    closeSync(fd);
  }
}
