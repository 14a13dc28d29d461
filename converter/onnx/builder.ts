/**
 * A small typed ONNX graph builder. Building a graph is separate from running it: the converter uses this,
 * the workers only load the bytes it produces.
 *
 * Every value has a stable name (`dec.l3.attn.q`), so any intermediate can be exposed and compared.
 */
import { AttributeType, DataType, type DataTypeName, ModelProto } from "./proto.ts";

/** A named value in the graph. */
export interface Value {
  readonly name: string;
}

export type Dim = number | string;
export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

/** Where large initializers go: an external weight file that the graph references by offset. */
export interface WeightSink {
  /** Appends one tensor's bytes and returns where they were written. */
  append(tensor: { name: string; type: DataTypeName; dims: readonly number[] }, bytes: Uint8Array): {
    location: string;
    offset: number;
    length: number;
  };
}

interface NodeSpec {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain: string;
  attribute: object[];
}

export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly inputs: object[] = [];
  private readonly outputs: object[] = [];
  private readonly initializers: object[] = [];
  private readonly used = new Set<string>();
  private readonly opsets = new Map<string, number>([["", 21]]);

  constructor(
    readonly name: string,
    private readonly sink: WeightSink | null,
  ) {}

  /** Declares a graph input. */
  input(name: string, type: DataTypeName, dims: readonly Dim[]): Value {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, dims));
    return { name };
  }

  /** Declares `value` as a graph output under `name` (through an Identity when the names differ). */
  output(value: Value, name: string, type: DataTypeName, dims: readonly Dim[]): void {
    const out = value.name === name ? value : this.op("Identity", [value], {}, name);
    this.outputs.push(valueInfo(out.name, type, dims));
  }

  /** A weight: raw little-endian bytes of `type` with shape `dims`, written to the weight sink. */
  weight(name: string, type: DataTypeName, dims: readonly number[], bytes: Uint8Array): Value {
    return this.initializer(name, type, dims, bytes, this.sink);
  }

  private initializer(name: string, type: DataTypeName, dims: readonly number[], bytes: Uint8Array, sink: WeightSink | null): Value {
    this.claim(name);
    const tensor: Record<string, unknown> = { name, dataType: DataType[type], dims: [...dims] };
    if (sink) {
      const at = sink.append({ name, type, dims }, bytes);
      tensor.dataLocation = 1; // EXTERNAL
      tensor.externalData = [
        { key: "location", value: at.location },
        { key: "offset", value: String(at.offset) },
        { key: "length", value: String(at.length) },
      ];
    } else {
      tensor.rawData = bytes;
    }
    this.initializers.push(tensor);
    return { name };
  }

  /** A small float32 constant (scalars, shapes of masks): always inline. */
  constF32(name: string, values: readonly number[], dims: readonly number[] = [values.length]): Value {
    return this.initializer(this.fresh(name), "FLOAT", dims, bytesOf(Float32Array.from(values)), null);
  }

  /** A small int64 constant (shapes, axes). */
  constI64(name: string, values: readonly number[]): Value {
    return this.initializer(this.fresh(name), "INT64", [values.length], bytesOf(BigInt64Array.from(values.map(BigInt))), null);
  }

  /** Adds a node with one output named `out` (made unique) and returns that output. */
  op(opType: string, inputs: readonly (Value | null)[], attrs: Record<string, AttrValue> = {}, out?: string, domain = ""): Value {
    return this.opN(opType, inputs, 1, attrs, out ?? opType.toLowerCase(), domain)[0];
  }

  /** Adds a node with `count` outputs named `out.0`, `out.1`, … */
  opN(
    opType: string,
    inputs: readonly (Value | null)[],
    count: number,
    attrs: Record<string, AttrValue>,
    out: string,
    domain = "",
  ): Value[] {
    if (domain && !this.opsets.has(domain)) this.opsets.set(domain, 1);
    const names = count === 1 ? [this.unique(out)] : Array.from({ length: count }, (_, i) => this.unique(`${out}.${i}`));
    this.nodes.push({
      input: inputs.map((v) => (v ? v.name : "")),
      output: names,
      name: `${names[0]}/${opType}`,
      opType,
      domain,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return names.map((name) => ({ name }));
  }

  /** Serialises the model (IR version 10). */
  toBytes(docString = ""): Uint8Array {
    const model = ModelProto.create({
      irVersion: 10,
      producerName: "paligemma-edge",
      producerVersion: "1",
      docString,
      opsetImport: [...this.opsets].map(([domain, version]) => ({ domain, version })),
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
    return ModelProto.encode(model).finish();
  }

  private claim(name: string): void {
    if (this.used.has(name)) throw new Error(`graph ${this.name}: duplicate value name ${name}`);
    this.used.add(name);
  }

  /** A name not used yet (not claimed: the caller claims it). */
  private fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    return name;
  }

  private unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

function valueInfo(name: string, type: DataTypeName, dims: readonly Dim[]): object {
  const dim = dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: DataType[type], shape: { dim } } } };
}

function attribute(name: string, v: AttrValue): object {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use {float} for non-integers`);
    return { name, type: AttributeType.INT, i: v };
  }
  if (typeof v === "string") return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  if ("float" in v) return { name, type: AttributeType.FLOAT, f: v.float };
  return { name, type: AttributeType.FLOATS, floats: v.floats };
}

/** The bytes of a typed array (a view, not a copy). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
