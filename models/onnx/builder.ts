/**
 * @module A small ONNX graph builder: declare inputs/outputs (with symbolic dims), add initializers
 * and nodes in topological order, then serialize a ModelProto with `toBytes()`.
 */
import { ATTRIBUTE_TYPE, DATA_TYPE, modelProtoType, type OnnxDtype } from './proto.ts'

/** A constant tensor. `data` length must equal the product of `dims` (`[]` = scalar, 1 element). */
export interface TensorInit {
  dtype: 'float32' | 'float64' | 'int64'
  dims: number[]
  data: Float32Array | Float64Array | BigInt64Array | number[]
}

/** A node attribute value; build one with `attr.int(…)`, `attr.ints(…)` and friends. */
export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorInit }

/** Attribute constructors: ONNX distinguishes int from float, so the kind is explicit. */
export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  ints: (value: number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: number[]): AttrValue => ({ kind: 'floats', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (value: TensorInit): AttrValue => ({ kind: 'tensor', value }),
}

/** Options of `toBytes`. Defaults: opset 17 (ai.onnx), IR version 8, producer 'stepkv'. */
export interface ModelOptions {
  opset?: number
  irVersion?: number
  producerName?: string
  docString?: string
}

type Dims = (number | string)[]

function valueInfo(name: string, dtype: OnnxDtype, dims: Dims) {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }))
  return { name, type: { tensor_type: { elem_type: DATA_TYPE[dtype], shape: { dim } } } }
}

/** Serializes a TensorInit as a TensorProto with little-endian `raw_data`.
 * @throws RangeError if the data length disagrees with the dims. */
export function tensorProto(name: string, t: TensorInit) {
  const count = t.dims.reduce((a, b) => a * b, 1)
  if (t.data.length !== count) {
    throw new RangeError(
      `tensor ${name}: dims [${t.dims}] need ${count} values, got ${t.data.length}`,
    )
  }
  const width = t.dtype === 'float32' ? 4 : 8
  const raw = new Uint8Array(count * width)
  const view = new DataView(raw.buffer)
  for (let i = 0; i < count; i++) {
    const v = t.data[i]
    if (t.dtype === 'float32') view.setFloat32(i * 4, Number(v), true)
    else if (t.dtype === 'float64') view.setFloat64(i * 8, Number(v), true)
    else view.setBigInt64(i * 8, BigInt(v), true)
  }
  return { name, dims: t.dims, data_type: DATA_TYPE[t.dtype], raw_data: raw }
}

function attributeProto(name: string, a: AttrValue) {
  const type = ATTRIBUTE_TYPE[a.kind]
  switch (a.kind) {
    case 'int':
      return { name, type, i: a.value }
    case 'float':
      return { name, type, f: a.value }
    case 'ints':
      return { name, type, ints: a.value }
    case 'floats':
      return { name, type, floats: a.value }
    case 'string':
      return { name, type, s: new TextEncoder().encode(a.value) }
    case 'tensor':
      return { name, type, t: tensorProto(name, a.value) }
  }
}

/** Builds one ONNX graph. Nodes must be added in topological order (each input defined before). */
export class GraphBuilder {
  readonly name: string
  private readonly used = new Set<string>()
  private readonly nodes: object[] = []
  private readonly inputs: object[] = []
  private readonly outputs: object[] = []
  private readonly initializers: object[] = []
  private readonly int64Cache = new Map<string, string>()

  constructor(name: string) {
    this.name = name
  }

  /** Returns `prefix` if unused, else `prefix_1`, `prefix_2`, …, and reserves it. */
  uniqueName(prefix: string): string {
    let name = prefix
    for (let i = 1; this.used.has(name); i++) name = `${prefix}_${i}`
    this.used.add(name)
    return name
  }

  /** Reserves an exact name. @throws Error if a value or node already has it. */
  private reserve(name: string): void {
    if (this.used.has(name)) throw new Error(`graph name already used: ${name}`)
    this.used.add(name)
  }

  /** Declares a graph input; dims are numbers (fixed) or strings (symbolic). @returns its name
   * @throws Error if the name is taken. */
  input(name: string, dtype: OnnxDtype, dims: Dims): string {
    this.reserve(name)
    this.inputs.push(valueInfo(name, dtype, dims))
    return name
  }

  /** Declares a graph output named `name` whose value is the tensor `from` (through Identity).
   * @throws Error if the name is taken. */
  output(name: string, dtype: OnnxDtype, dims: Dims, from: string): void {
    this.op('Identity', [from], {}, name)
    this.outputs.push(valueInfo(name, dtype, dims))
  }

  /**
   * Declares a graph output named `name` as the tensor `from` itself, with no Identity node: `from`
   * is renamed to `name` in every node added so far (call it after `from`'s last consumer). For
   * graphs whose every node must sit on one execution provider (ORT's WebGPU EP has no Identity
   * kernel, and graph capture refuses a graph with any node elsewhere).
   * @throws Error if `name` is taken, or `from` is a graph input, an initializer or no node's output
   */
  outputDirect(name: string, dtype: OnnxDtype, dims: Dims, from: string): void {
    const nodes = this.nodes as { input: string[]; output: string[] }[]
    if (!nodes.some((n) => n.output.includes(from))) throw new Error(`outputDirect: '${from}' is not a node output`)
    this.reserve(name)
    for (const n of nodes) {
      n.input = n.input.map((x) => (x === from ? name : x))
      n.output = n.output.map((x) => (x === from ? name : x))
    }
    this.outputs.push(valueInfo(name, dtype, dims))
  }

  /** Adds a constant tensor (initializer). @returns its unique name */
  initializer(prefix: string, t: TensorInit): string {
    const name = this.uniqueName(prefix)
    this.initializers.push(tensorProto(name, t))
    return name
  }

  /** An int64 constant (shared between uses): a scalar for a number, a 1-D tensor for an array. */
  int64(values: number | number[]): string {
    const key = JSON.stringify(values)
    let name = this.int64Cache.get(key)
    if (name === undefined) {
      const scalar = typeof values === 'number'
      const data = scalar ? [values] : values
      name = this.initializer('const_i64', {
        dtype: 'int64',
        dims: scalar ? [] : [data.length],
        data,
      })
      this.int64Cache.set(key, name)
    }
    return name
  }

  /** A float32 scalar constant. */
  float32(value: number, prefix = 'const_f32'): string {
    return this.initializer(prefix, { dtype: 'float32', dims: [], data: Float32Array.of(value) })
  }

  /** Adds a node with one output. @returns the output name (`outName` if given, else unique)
   * @throws Error if `outName` is taken. */
  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outName?: string,
  ): string {
    return this.opN(opType, inputs, 1, attrs, outName ? [outName] : undefined)[0]
  }

  /** Adds a node with `count` outputs, named `outNames` if given, else unique.
   * @returns the output names
   * @throws Error if one of `outNames` is taken. */
  opN(
    opType: string,
    inputs: string[],
    count: number,
    attrs: Record<string, AttrValue> = {},
    outNames?: string[],
  ): string[] {
    const output =
      outNames ?? Array.from({ length: count }, () => this.uniqueName(opType.toLowerCase()))
    if (outNames) for (const n of outNames) this.reserve(n)
    const attribute = Object.entries(attrs).map(([k, v]) => attributeProto(k, v))
    this.nodes.push({
      name: this.uniqueName(`${opType}_node`),
      op_type: opType,
      input: inputs,
      output,
      attribute,
    })
    return output
  }

  /** Serializes the ModelProto. @returns the .onnx bytes (deterministic for the same calls) */
  toBytes({
    opset = 17,
    irVersion = 8,
    producerName = 'stepkv',
    docString,
  }: ModelOptions = {}): Uint8Array {
    const Model = modelProtoType()
    const graph = {
      name: this.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    }
    const model = {
      ir_version: irVersion,
      producer_name: producerName,
      doc_string: docString,
      graph,
      opset_import: [{ domain: '', version: opset }],
    }
    const message = Model.fromObject(model)
    const err = Model.verify(message)
    if (err) throw new Error(`invalid ModelProto: ${err}`)
    return Model.encode(message).finish()
  }
}

/** Most inputs one `maxAll` Concat takes: with its output, within WebGPU's default 8 storage
 * buffers per shader stage (ORT's WebGPU Concat of 8 inputs broke the whole submit on the H200). */
const MAX_CONCAT = 4

/**
 * The largest element of several tensors of equal rank whose dims are all 1 (e.g. `ReduceMax`
 * with keepdims), as a scalar: Concat along axis 0 and ReduceMax, in a tree of Concats of at most
 * 4 inputs (ORT's WebGPU EP has no variadic `Max`, and one Concat of 8 inputs exceeded the device's
 * storage buffers per shader stage: it invalidated every dispatch submitted with it).
 * @param xs tensor names, at least one
 * @returns the name of a scalar `[]` float tensor
 * @throws RangeError when `xs` is empty
 */
export function maxAll(g: GraphBuilder, xs: readonly string[]): string {
  if (!xs.length) throw new RangeError('maxAll needs at least one tensor')
  let level = [...xs]
  while (level.length > 1) {
    const next: string[] = []
    for (let i = 0; i < level.length; i += MAX_CONCAT) {
      const part = level.slice(i, i + MAX_CONCAT)
      next.push(part.length === 1 ? part[0] : g.op('ReduceMax', [g.op('Concat', part, { axis: attr.int(0) })], { keepdims: attr.int(1) }))
    }
    level = next
  }
  return g.op('ReduceMax', [level[0]], { keepdims: attr.int(0) })
}

/** Stands in for NaN in `absMaxOf` (ORT's CPU `ReduceMax` skips NaN): above every float16 value. */
export const NAN_ABSMAX = 3e38

/** max |x| of `x` as a `[1]` tensor, `NAN_ABSMAX` when any element is NaN or ±∞: the terms a
 * float16 memory's `kv_absmax` reduces with `maxAll` (`gpu/kv-gather.ts` `checkHalfAbsMax`).
 * Both reductions run first (`ReduceMax(|x|)`, and `ReduceSum(x · 0)`, which is NaN exactly when
 * some element is not finite: ORT's CPU `ReduceMax` skips NaN), and the NaN test (`Equal`, `Where`)
 * sees only scalars: on the full tensor, ORT's transpose optimizer pushed the `Transpose` that
 * makes `x` through `Equal` into bool `Transpose` nodes, which the WebGPU EP has no kernel for, so
 * they fell to the CPU and a captured graph could not be created (H200, session 6). */
export function absMaxOf(g: GraphBuilder, x: string): string {
  const max = g.op('ReduceMax', [g.op('Abs', [x])], { keepdims: attr.int(0) })
  const poison = g.op('ReduceSum', [g.op('Mul', [x, g.float32(0)])], { keepdims: attr.int(0) })
  const term = g.op('Where', [g.op('Equal', [poison, poison]), max, g.float32(NAN_ABSMAX)])
  return g.op('Reshape', [term, g.int64([1])])
}

