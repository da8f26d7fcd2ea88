/**
 * Exposes the per-step key/value tensors of a decoder graph as extra graph
 * outputs, so a decode step can fetch only the new cache column instead of
 * the whole `present.*` cache (onnxruntime-node copies every fetched output
 * into a fresh JS buffer; for a batch of 16 that copy was a third of a step).
 *
 * The computation is unchanged: the graph gets additional *outputs* naming
 * tensors it already computes (the second input of the Concat that produces
 * each `present.*`), nothing else. The edit is a strict, bounds-checked
 * protobuf rewrite of ModelProto.graph.output; any structure it does not
 * recognise makes it return null and the engine keeps the plain path.
 */
import { EngineError } from './errors.js';

interface Field {
  field: number;
  wire: number;
  /** Start of the whole field (tag) and of its payload. */
  start: number;
  payloadStart: number;
  end: number;
}

/** A varint as a 64-bit unsigned value and the position after it. */
function readVarintBig(buf: Uint8Array, pos: number): [bigint, number] {
  let result = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new EngineError('model_invalid', 'onnx/model.onnx: truncated protobuf');
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return [BigInt.asUintN(64, result), pos];
  }
  throw new EngineError('model_invalid', 'onnx/model.onnx: bad protobuf varint');
}

/** A varint used as a tag or length: must fit a safe integer. */
function readVarint(buf: Uint8Array, pos: number): [number, number] {
  const [v, p] = readVarintBig(buf, pos);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EngineError('model_invalid', 'onnx/model.onnx: protobuf length too large');
  return [Number(v), p];
}

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Top-level fields of one protobuf message in buf[start, end). */
function fields(buf: Uint8Array, start: number, end: number): Field[] {
  const out: Field[] = [];
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    const [tag, p1] = readVarint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    let payloadStart = p1;
    let next: number;
    switch (wire) {
      case 0:
        next = readVarintBig(buf, p1)[1];
        break;
      case 1:
        next = p1 + 8;
        break;
      case 2: {
        const [len, p2] = readVarint(buf, p1);
        payloadStart = p2;
        next = p2 + len;
        break;
      }
      case 5:
        next = p1 + 4;
        break;
      default:
        throw new EngineError('model_invalid', 'onnx/model.onnx: unsupported protobuf wire type');
    }
    if (field === 0 || next > end) throw new EngineError('model_invalid', 'onnx/model.onnx: malformed protobuf');
    out.push({ field, wire, start: fieldStart, payloadStart, end: next });
    pos = next;
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const str = (buf: Uint8Array, f: Field) => utf8.decode(buf.subarray(f.payloadStart, f.end));

function lengthDelimited(field: number, payload: Uint8Array | number[]): number[] {
  return [...encodeVarint(field * 8 + 2), ...encodeVarint(payload.length), ...payload];
}

/** ModelProto's one GraphProto field (7) and its own fields, or null when there is not exactly one. */
function theGraph(model: Uint8Array): { g: Field; graph: Field[] } | null {
  const graphFields = fields(model, 0, model.length).filter((f) => f.field === 7 && f.wire === 2);
  if (graphFields.length !== 1) return null;
  const g = graphFields[0];
  return { g, graph: fields(model, g.payloadStart, g.end) };
}

/** The model with its graph field's payload replaced by `parts` (in order); everything else as it was. */
function withGraphPayload(model: Uint8Array, g: Field, parts: readonly Uint8Array[]): Uint8Array {
  const graphLen = parts.reduce((n, p) => n + p.length, 0);
  const header = encodeVarint(7 * 8 + 2).concat(encodeVarint(graphLen));
  const out = new Uint8Array(g.start + header.length + graphLen + (model.length - g.end));
  out.set(model.subarray(0, g.start), 0);
  let o = g.start;
  out.set(header, o);
  o += header.length;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  out.set(model.subarray(g.end), o);
  return out;
}

export interface StepOutputs {
  /** Graph bytes with the extra outputs. */
  readonly model: Uint8Array;
  /** Per layer: the name of the new key / value tensor ([batch, heads, seq, headDim]). */
  readonly newKeys: readonly string[];
  readonly newValues: readonly string[];
}

/**
 * For each `present.*` name, finds the Concat producing it (past ++ new
 * along the sequence axis) and adds its second input as a graph output.
 */
export function exposeStepOutputs(
  model: Uint8Array,
  presentKeys: readonly string[],
  presentValues: readonly string[],
  pastKeys: readonly string[],
  pastValues: readonly string[],
): StepOutputs | null {
  try {
    const found = theGraph(model);
    if (!found) return null;
    const { g, graph } = found;
    // producer of each output name: [op_type, inputs, attributes present]
    const producer = new Map<string, { op: string; inputs: string[]; axis: number | null }>();
    for (const nf of graph) {
      if (nf.field !== 1 || nf.wire !== 2) continue;
      const node = fields(model, nf.payloadStart, nf.end);
      const inputs = node.filter((f) => f.field === 1 && f.wire === 2).map((f) => str(model, f));
      const outputs = node.filter((f) => f.field === 2 && f.wire === 2).map((f) => str(model, f));
      const opField = node.find((f) => f.field === 4 && f.wire === 2);
      const domain = node.find((f) => f.field === 7 && f.wire === 2);
      if (!opField || (domain && str(model, domain) !== '')) continue;
      const op = str(model, opField);
      let axis: number | null = null;
      for (const af of node) {
        if (af.field !== 5 || af.wire !== 2) continue;
        const attr = fields(model, af.payloadStart, af.end);
        const name = attr.find((f) => f.field === 1 && f.wire === 2);
        const i = attr.find((f) => f.field === 3 && f.wire === 0);
        if (name && i && str(model, name) === 'axis') {
          // int64 in two's complement: -2 arrives as 2^64 - 2.
          const v = BigInt.asIntN(64, readVarintBig(model, i.payloadStart)[0]);
          axis = v >= -8n && v <= 8n ? Number(v) : null;
        }
      }
      for (const o of outputs) producer.set(o, { op, inputs, axis });
    }
    const pick = (present: string, past: string): string | null => {
      const p = producer.get(present);
      if (!p || p.op !== 'Concat' || p.inputs.length !== 2 || p.inputs[0] !== past) return null;
      if (p.axis !== 2 && p.axis !== -2) return null;
      return p.inputs[1];
    };
    const newKeys: string[] = [];
    const newValues: string[] = [];
    for (let l = 0; l < presentKeys.length; l++) {
      const k = pick(presentKeys[l], pastKeys[l]);
      const v = pick(presentValues[l], pastValues[l]);
      if (!k || !v) return null;
      newKeys.push(k);
      newValues.push(v);
    }
    const existing = new Set(
      graph.filter((f) => f.field === 12 && f.wire === 2).map((f) => {
        const vi = fields(model, f.payloadStart, f.end).find((x) => x.field === 1 && x.wire === 2);
        return vi ? str(model, vi) : '';
      }),
    );
    const enc = new TextEncoder();
    const extra: number[] = [];
    for (const name of [...newKeys, ...newValues]) {
      if (existing.has(name)) continue;
      existing.add(name);
      extra.push(...lengthDelimited(12, lengthDelimited(1, enc.encode(name))));
    }
    const out = withGraphPayload(model, g, [model.subarray(g.payloadStart, g.end), Uint8Array.from(extra)]);
    return { model: out, newKeys, newValues };
  } catch {
    return null;
  }
}

/**
 * The graph without the outputs named `names` (GraphProto.output entries), or null when any of
 * them is not an output or the structure is not what this rewrite knows. With the full
 * `present.*` caches no longer outputs, ONNX Runtime drops the Concat nodes that built them:
 * a slot-mode step, which fetches only the new column, no longer pays for a copy of the whole
 * cache it never reads (15-25% of a batch-16 to batch-32 step on the bundled model).
 */
export function dropGraphOutputs(model: Uint8Array, names: readonly string[]): Uint8Array | null {
  try {
    const found = theGraph(model);
    if (!found) return null;
    const { g, graph } = found;
    const drop = new Set(names);
    const dropped = new Set<string>();
    const kept: Field[] = [];
    for (const f of graph) {
      if (f.field === 12 && f.wire === 2) {
        const nameField = fields(model, f.payloadStart, f.end).find((x) => x.field === 1 && x.wire === 2);
        const name = nameField ? str(model, nameField) : '';
        if (drop.has(name)) {
          if (dropped.has(name)) return null; // listed twice: not a graph this rewrite understands
          dropped.add(name);
          continue;
        }
      }
      kept.push(f);
    }
    if (dropped.size !== drop.size) return null;
    return withGraphPayload(model, g, kept.map((f) => model.subarray(f.start, f.end)));
  } catch {
    return null;
  }
}
