/**
 * @module Reads a decoder's weights back out of its ONNX file, so the fixed-capacity variant of a
 * committed model can be built in code (`buildDecoderOnnx` with `fixed`, for a GPU host's graph
 * capture) from the very weights the model was exported with. Two layouts are understood:
 * - stepkv's builder (graph.ts): initializers `embed`, `layers.{l}.{attn_norm, wq, wk, wv, wo,
 *   mlp_norm, w_gate, w_up, w_down}`, `final_norm`, `lm_head`;
 * - train/export.py's torch export: `dec.blocks.{l}.attn_norm.weight`, `…mlp_norm.weight`,
 *   `dec.final_norm.weight`, `dec.head.bias`, and the linear weights folded into `onnx::MatMul_N`
 *   initializers, named by the MatMul node that reads them (`/wq/MatMul` is layer 0, `/wq_2/MatMul`
 *   layer 2, `/head/MatMul` the action head). ONNX keeps them `[in, out]`, the builder's layout.
 */
import { modelProtoType } from '../onnx/proto.ts'
import type { DecoderConfig } from './config.ts'
import type { DecoderWeights, LayerWeights } from './weights.ts'

interface TensorProto {
  name?: string
  dims?: (number | { toNumber(): number })[]
  data_type?: number
  raw_data?: Uint8Array
  float_data?: number[]
}
interface NodeProto {
  input?: string[]
  name?: string
  op_type?: string
}

const LINEAR = ['wq', 'wk', 'wv', 'wo', 'w_gate', 'w_up', 'w_down'] as const
const FIELD: Record<string, keyof LayerWeights> = {
  attn_norm: 'attnNorm', wq: 'wq', wk: 'wk', wv: 'wv', wo: 'wo', mlp_norm: 'mlpNorm', w_gate: 'wGate', w_up: 'wUp', w_down: 'wDown',
}

/** A float32 initializer's values (raw little-endian bytes or `float_data`), copied. */
function floats(t: TensorProto): Float32Array {
  if (t.data_type !== 1) throw new Error(`initializer '${t.name}' is not float32 (data type ${t.data_type})`)
  if (t.raw_data?.byteLength) {
    const raw = t.raw_data
    const out = new Float32Array(raw.byteLength / 4)
    new Uint8Array(out.buffer).set(raw)
    return out
  }
  return Float32Array.from(t.float_data ?? [])
}

/**
 * The weights of a decoder ONNX file (either layout above).
 * @param bytes the model file
 * @param config its architecture (sizes checked against every weight)
 * @returns weights in the builder's layout; `embed` empty when the graph has none (an
 *   `inputs_embeds` model), `lmHeadBias` when the head has a bias
 * @throws Error naming the first weight that is missing or has the wrong number of values
 */
export function readDecoderWeights(bytes: Uint8Array, config: DecoderConfig): DecoderWeights {
  const type = modelProtoType()
  const model = type.toObject(type.decode(bytes), { defaults: false }) as { graph?: { initializer?: TensorProto[]; node?: NodeProto[] } }
  const inits = new Map<string, TensorProto>()
  for (const t of model.graph?.initializer ?? []) if (t.name) inits.set(t.name, t)
  // weight name → initializer, under the builder's names
  const named = new Map<string, TensorProto>()
  for (const [name, t] of inits) {
    let m: RegExpMatchArray | null
    if ((m = name.match(/^dec\.blocks\.(\d+)\.(attn_norm|mlp_norm)\.weight$/))) named.set(`layers.${m[1]}.${m[2]}`, t)
    else if (name === 'dec.final_norm.weight') named.set('final_norm', t)
    else if (name === 'dec.head.bias') named.set('lm_head_bias', t)
    else named.set(name, t)
  }
  for (const node of model.graph?.node ?? []) {
    if (node.op_type !== 'MatMul' || !node.name) continue
    const w = node.input?.find((i) => inits.has(i) && i.startsWith('onnx::'))
    if (!w) continue
    let m: RegExpMatchArray | null
    if ((m = node.name.match(/^\/(wq|wk|wv|wo|w_gate|w_up|w_down)(?:_(\d+))?\/MatMul$/))) named.set(`layers.${Number(m[2] ?? 0)}.${m[1]}`, inits.get(w)!)
    else if (node.name === '/head/MatMul') named.set('lm_head', inits.get(w)!)
  }
  const { vocabSize: V, hiddenSize: D, heads: H, kvHeads: Hkv, headDim: Dh, intermediateSize: F } = config
  const get = (name: string, size: number): Float32Array => {
    const t = named.get(name)
    if (!t) throw new Error(`weight '${name}' not found in the model`)
    const a = floats(t)
    if (a.length !== size) throw new Error(`weight '${name}' has ${a.length} values, expected ${size}`)
    return a
  }
  const sizes: Record<string, number> = { attn_norm: D, mlp_norm: D, wq: D * H * Dh, wk: D * Hkv * Dh, wv: D * Hkv * Dh, wo: H * Dh * D, w_gate: D * F, w_up: D * F, w_down: F * D }
  const layers = Array.from({ length: config.layers }, (_, l) => {
    const w = {} as LayerWeights
    for (const part of ['attn_norm', 'mlp_norm', ...LINEAR]) w[FIELD[part]] = get(`layers.${l}.${part}`, sizes[part])
    return w
  })
  return {
    embed: named.has('embed') ? get('embed', V * D) : new Float32Array(0),
    layers,
    finalNorm: get('final_norm', D),
    lmHead: get('lm_head', D * V),
    ...(named.has('lm_head_bias') && { lmHeadBias: get('lm_head_bias', V) }),
  }
}
