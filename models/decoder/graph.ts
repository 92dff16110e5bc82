/**
 * @module Builds the ONNX graph of a generated decoder (see ARCHITECTURE.md "Model contract"):
 * input_ids/position_ids/attention_mask/past_key_values in; logits, present K/V and the optional
 * policy ports (obs_window → attn_window, attn_total, hidden_norm) out; with `tempoLayers`, also
 * TempoFit's bank inputs and prefix outputs (tempo.ts). Standard ai.onnx ops only.
 */
import { absMaxOf, attr, GraphBuilder, maxAll } from '../onnx/builder.ts'
import { checkDecoderConfig, type DecoderConfig } from './config.ts'
import {
  TEMPO_BIAS,
  tempoBankNames,
  tempoLoad,
  tempoPrefixNames,
  tempoShared,
  type TempoShared,
} from './tempo.ts'
import type { DecoderWeights, LayerWeights } from './weights.ts'

/** Score given to a masked (query, key) pair before Softmax: finite, so no NaN on empty rows. */
export const MASKED_SCORE = -1e9

const TO_FLOAT = attr.int(1)
const TO_BOOL = attr.int(9)
const TO_DOUBLE = attr.int(11)

/** Tensors shared by every layer. */
interface Shared {
  /** RoPE tables [B, 1, S, Dh] float32 (angles computed in float64 from absolute positions). */
  cos: string
  sin: string
  /** Which (query, key) pairs may attend [B, 1, S, T] bool: causal AND attention_mask (the
   * contract's graph); absent in the fixed-capacity variant, which adds `bias` instead. */
  allowed?: string
  /** Added to the scores [1, 1, S, T] float32: 0 = attend, MASKED_SCORE = masked (the
   * fixed-capacity variant's `attention_bias` input). */
  bias?: string
  /** 1 for the last obs_window queries, else 0: [1, 1, 1, S] float32 (absent when no
   * `attn_window` is built). */
  windowWeight?: string
  /** Whether an optional per-layer output is built (the fixed variant may leave some out). */
  wants: (port: OptionalPort) => boolean
  /** false in the fixed TempoFit variant: no past K/V inputs, no `present` outputs (a TempoFit
   * step carries no K/V); absent = true. */
  carried?: boolean
  /** float32 scalars: MASKED_SCORE (with `allowed`) and the RMSNorm epsilon. */
  maskedScore?: string
  eps: string
  /** When set (the fixed variant's `kvAbsMax`), each block adds the max |x| `[1, 1, 1, 1]` of every
   * row it stores: the new `present` rows, or a TempoFit layer's `tempo_prefix` rows. */
  storedMaxima?: string[]
}


function f32(g: GraphBuilder, name: string, data: Float32Array, dims: number[]): string {
  return g.initializer(name, { dtype: 'float32', dims, data })
}

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · gain. x [B, S, D] → [B, S, D]. */
function rmsNorm(g: GraphBuilder, x: string, gain: string, eps: string): string {
  const square = g.op('Mul', [x, x])
  const meanSquare = g.op('ReduceMean', [square], { axes: attr.ints([-1]), keepdims: attr.int(1) })
  const rms = g.op('Sqrt', [g.op('Add', [meanSquare, eps])])
  return g.op('Mul', [g.op('Div', [x, rms]), gain])
}

/** [B, S, heads·Dh] → [B, heads, S, Dh]. */
function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  const split = g.op('Reshape', [x, g.int64([0, 0, heads, headDim])])
  return g.op('Transpose', [split], { perm: attr.ints([0, 2, 1, 3]) })
}

/** Rotate-half RoPE: x·cos + concat(−x2, x1)·sin. x [B, h, S, Dh] → [B, h, S, Dh]. */
function rope(g: GraphBuilder, x: string, s: Shared, headDim: number): string {
  const half = headDim / 2
  const axis = g.int64([3])
  const x1 = g.op('Slice', [x, g.int64([0]), g.int64([half]), axis])
  const x2 = g.op('Slice', [x, g.int64([half]), g.int64([headDim]), axis])
  const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: attr.int(3) })
  return g.op('Add', [g.op('Mul', [x, s.cos]), g.op('Mul', [rotated, s.sin])])
}

/** GQA: [B, Hkv, T, Dh] → [B, H, T, Dh], query head h reads KV head ⌊h / (H/Hkv)⌋. */
function expandKv(g: GraphBuilder, kv: string, c: DecoderConfig): string {
  const group = c.heads / c.kvHeads
  const unsqueezed = g.op('Unsqueeze', [kv, g.int64([2])])
  const expanded = g.op('Expand', [unsqueezed, g.int64([1, 1, group, 1, 1])])
  return g.op('Reshape', [expanded, g.int64([0, c.heads, -1, c.headDim])])
}

/** Sums attention probabilities [B, H, Q, T] over queries and the query heads of each KV group
 * → [B, Hkv, T]. */
function groupSum(g: GraphBuilder, probs: string, kvHeads: number): string {
  const grouped = g.op('Reshape', [probs, g.int64([0, kvHeads, -1, 0])])
  return g.op('ReduceSum', [grouped, g.int64([2])], { keepdims: attr.int(0) })
}

function sharedTensors(g: GraphBuilder, c: DecoderConfig, inputName: string): Shared {
  const mask = 'attention_mask'
  const zero = g.int64(0)
  const one = g.int64(1)
  const seq = g.op('Gather', [g.op('Shape', [inputName]), one], { axis: attr.int(0) })
  const total = g.op('Gather', [g.op('Shape', [mask]), one], { axis: attr.int(0) })
  const past = g.op('Sub', [total, seq])
  // RoPE angles [B, S, Dh] = position · inv_freq, duplicated over both halves, in float64.
  const half = c.headDim / 2
  const invFreq = Float64Array.from(
    { length: half },
    (_, i) => c.ropeBase ** ((-2 * i) / c.headDim),
  )
  const invFreqName = g.initializer('rope_inv_freq', {
    dtype: 'float64',
    dims: [half],
    data: invFreq,
  })
  const positions = g.op('Cast', ['position_ids'], { to: TO_DOUBLE })
  const freqs = g.op('Mul', [g.op('Unsqueeze', [positions, g.int64([2])]), invFreqName])
  const angles = g.op('Concat', [freqs, freqs], { axis: attr.int(-1) })
  const table = (fn: string) =>
    g.op('Unsqueeze', [g.op('Cast', [g.op(fn, [angles])], { to: TO_FLOAT }), g.int64([1])])
  // Causal: key j ≤ query position P + i. Key mask: attention_mask[b, j] ≠ 0.
  const keyIndex = g.op('Unsqueeze', [g.op('Range', [zero, total, one]), g.int64([0])])
  const queryIndex = g.op('Unsqueeze', [g.op('Range', [past, total, one]), g.int64([1])])
  const causal = g.op('Not', [g.op('Greater', [keyIndex, queryIndex])])
  const keyOk = g.op('Unsqueeze', [g.op('Cast', [mask], { to: TO_BOOL }), g.int64([1, 2])])
  // Observation window: queries i ≥ S − w.
  const windowStart = g.op('Sub', [seq, 'obs_window'])
  const inWindow = g.op('Not', [g.op('Less', [g.op('Range', [zero, seq, one]), windowStart])])
  const windowFloat = g.op('Cast', [inWindow], { to: TO_FLOAT })
  const windowWeight = g.op('Reshape', [windowFloat, g.int64([1, 1, 1, -1])])
  return {
    cos: table('Cos'),
    sin: table('Sin'),
    allowed: g.op('And', [causal, keyOk]),
    windowWeight,
    maskedScore: g.float32(MASKED_SCORE, 'masked_score'),
    eps: g.float32(c.rmsNormEps, 'rms_norm_eps'),
    wants: () => true,
  }
}

/** The fixed-capacity variant's shared tensors: the tables the host computes (`staticTables` in
 * gpu/static-step.ts) come in as float32 inputs, so no integer or float64 arithmetic is left in the
 * graph (ORT's WebGPU EP places int64 shape math and float64 on the CPU EP, which graph capture
 * refuses). */
function staticShared(g: GraphBuilder, c: DecoderConfig, S: number, T: number, ports: readonly OptionalPort[]): Shared {
  const Dh = c.headDim
  g.input('rope_cos', 'float32', [1, 1, S, Dh])
  g.input('rope_sin', 'float32', [1, 1, S, Dh])
  g.input('attention_bias', 'float32', [1, 1, S, T])
  const wants = (p: OptionalPort) => ports.includes(p)
  if (wants('attn_window')) g.input('window_weight', 'float32', [1, 1, 1, S])
  return {
    cos: 'rope_cos',
    sin: 'rope_sin',
    bias: 'attention_bias',
    ...(wants('attn_window') && { windowWeight: 'window_weight' }),
    eps: g.float32(c.rmsNormEps, 'rms_norm_eps'),
    wants,
  }
}

/** A graph output still to declare: name, dims, and the tensor that holds it. */
type PendingOutput = [name: string, dims: (number | string)[], tensor: string]

/** One pre-norm block. x [B, S, D] → [B, S, D]; pushes its present/attn/hidden_norm outputs (and
 * tempo_prefix at a memory layer, which `tempo` marks: K-to-K retrieval then runs on the pre-RoPE
 * K/V before RoPE, see tempo.ts). */
function block(
  g: GraphBuilder,
  c: DecoderConfig,
  l: number,
  w: LayerWeights,
  x: string,
  s: Shared,
  outs: PendingOutput[],
  tempo?: TempoShared,
): string {
  const { hiddenSize: D, heads: H, kvHeads: Hkv, headDim: Dh, intermediateSize: F } = c
  const p = `layers.${l}.`
  const weight = (name: string, data: Float32Array, dims: number[]) => f32(g, p + name, data, dims)
  const h = rmsNorm(g, x, weight('attn_norm', w.attnNorm, [D]), s.eps)
  const hiddenNorm = s.wants('hidden_norm') ? g.op('ReduceL2', [h], { axes: attr.ints([-1]), keepdims: attr.int(0) }) : undefined
  const proj = (name: string, data: Float32Array, out: number) =>
    g.op('MatMul', [h, weight(name, data, [D, out])])
  const q = rope(g, splitHeads(g, proj('wq', w.wq, H * Dh), H, Dh), s, Dh)
  let k: string
  let v: string
  const prefixOuts: PendingOutput[] = []
  if (tempo) {
    const kPre = splitHeads(g, proj('wk', w.wk, Hkv * Dh), Hkv, Dh)
    const vPre = splitHeads(g, proj('wv', w.wv, Hkv * Dh), Hkv, Dh)
    const loaded = tempoLoad(g, l, kPre, vPre, tempo)
    k = rope(g, loaded.key, s, Dh)
    v = loaded.value
    const names = tempoPrefixNames(l)
    s.storedMaxima?.push(absMaxOf(g, kPre), absMaxOf(g, vPre))
    prefixOuts.push(
      [names.key, ['batch', Hkv, 'seq', Dh], kPre],
      [names.value, ['batch', Hkv, 'seq', Dh], vPre],
    )
  } else {
    // Kept in this node order so models without TempoFit ports stay byte-identical.
    k = rope(g, splitHeads(g, proj('wk', w.wk, Hkv * Dh), Hkv, Dh), s, Dh)
    v = splitHeads(g, proj('wv', w.wv, Hkv * Dh), Hkv, Dh)
  }
  const carried = s.carried ?? true
  if (carried) s.storedMaxima?.push(absMaxOf(g, k), absMaxOf(g, v))
  const presentK = carried ? g.op('Concat', [`past_key_values.${l}.key`, k], { axis: attr.int(2) }) : k
  const presentV = carried ? g.op('Concat', [`past_key_values.${l}.value`, v], { axis: attr.int(2) }) : v
  const keysT = g.op('Transpose', [expandKv(g, presentK, c)], { perm: attr.ints([0, 1, 3, 2]) })
  const scores = g.op('Mul', [g.op('MatMul', [q, keysT]), g.float32(1 / Math.sqrt(Dh))])
  const masked = s.bias ? g.op('Add', [scores, s.bias]) : g.op('Where', [s.allowed!, scores, s.maskedScore!])
  const probs = g.op('Softmax', [masked], { axis: attr.int(-1) })
  const context = g.op('MatMul', [probs, expandKv(g, presentV, c)])
  const perm = g.op('Transpose', [context], { perm: attr.ints([0, 2, 1, 3]) })
  const merged = g.op('Reshape', [perm, g.int64([0, 0, H * Dh])])
  const x1 = g.op('Add', [x, g.op('MatMul', [merged, weight('wo', w.wo, [H * Dh, D])])])
  // SwiGLU MLP: down(silu(gate(h2)) · up(h2)).
  const h2 = rmsNorm(g, x1, weight('mlp_norm', w.mlpNorm, [D]), s.eps)
  const gate = g.op('MatMul', [h2, weight('w_gate', w.wGate, [D, F])])
  const up = g.op('MatMul', [h2, weight('w_up', w.wUp, [D, F])])
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up])
  const down = g.op('MatMul', [act, weight('w_down', w.wDown, [F, D])])
  const windowProbs = s.windowWeight ? g.op('MatMul', [s.windowWeight, probs]) : undefined
  outs.push(
    ...(carried
      ? ([
          [`present.${l}.key`, ['batch', Hkv, 'total', Dh], presentK],
          [`present.${l}.value`, ['batch', Hkv, 'total', Dh], presentV],
        ] as PendingOutput[])
      : []),
    ...(windowProbs ? [[`attn_window.${l}`, ['batch', Hkv, 'total'], groupSum(g, windowProbs, Hkv)] as PendingOutput] : []),
    ...(s.wants('attn_total') ? [[`attn_total.${l}`, ['batch', Hkv, 'total'], groupSum(g, probs, Hkv)] as PendingOutput] : []),
    ...(hiddenNorm ? [[`hidden_norm.${l}`, ['batch', 'seq'], hiddenNorm] as PendingOutput] : []),
    ...prefixOuts,
  )
  return g.op('Add', [x1, down])
}

/**
 * How `buildDecoderOnnx` lays out the graph's inputs.
 * - `input`: 'ids' (default): `input_ids [B, S]` int64 through the `embed` table; 'embeds':
 *   `inputs_embeds [B, S, D]` float32 (the trained agent models: an encoder makes the prefix, the
 *   weights hold no embedding table).
 * - `fixed`: the fixed-capacity float-table variant for a GPU host with graph capture: every shape
 *   fixed (batch 1, `seq` S new tokens, `capacity` C past slots, T = C + S); `position_ids`,
 *   `attention_mask` and `obs_window` are replaced by the tables `rope_cos`, `rope_sin`
 *   `[1, 1, S, Dh]`, `attention_bias [1, 1, S, T]` (0 = attend, MASKED_SCORE = masked: causal and
 *   empty slots) and `window_weight [1, 1, 1, S]` (1 on the last obs_window queries),
 *   which `staticTables` (gpu/static-step.ts) computes; past inputs
 *   `[1, Hkv, C, Dh]`. Same outputs, fixed dims, except that `outputs` may leave out optional
 *   per-layer ports a policy does not read (`window_weight` goes with `attn_window`). With TempoFit
 *   layers it is the fixed TempoFit variant: `bank` slots per memory layer (`tempo.{l}.key|value`
 *   `[1, Hkv, bank, Dh]`, `tempo_bias [1, Hkv, 1, bank]`, MASKED_SCORE on empty slots), capacity
 *   0 and no carried K/V: no past inputs, no `present` outputs; the null-slot tensors are constants.
 *   `kvAbsMax` adds the scalar output `kv_absmax` (`KV_ABSMAX_OUTPUT`): max |x| of the rows the
 *   step stores (a float16 memory's overflow check).
 */
export interface DecoderBuildOptions {
  input?: 'ids' | 'embeds'
  fixed?: { seq: number; capacity: number; outputs?: readonly OptionalPort[]; bank?: number; kvAbsMax?: boolean }
}

/** The fixed variant's scalar output with `kvAbsMax`: the largest |x| of the rows the step adds to
 * the memory (new `present` rows; a TempoFit graph: `tempo_prefix` rows), for a float16 memory's
 * overflow check before they are stored. */
export const KV_ABSMAX_OUTPUT = 'kv_absmax'

/** The per-layer outputs a policy may read besides `present` (the contract's optional ports). */
export type OptionalPort = 'attn_window' | 'attn_total' | 'hidden_norm'
export const OPTIONAL_PORTS: readonly OptionalPort[] = ['attn_window', 'attn_total', 'hidden_norm']

/** Builds the decoder as an ONNX model (opset 17, IR 8).
 * Inputs: input_ids [batch, seq] int64, position_ids [batch, seq] int64 (absolute),
 * attention_mask [batch, total] int64 (0 = masked key), past_key_values.{l}.key|value
 * [batch, kvHeads, past, headDim] float32 (past may be 0), obs_window [] int64 scalar.
 * Outputs: logits [batch, seq, vocab], present.{l}.key|value [batch, kvHeads, total, headDim]
 * (keys post-RoPE), attn_window.{l} and attn_total.{l} [batch, kvHeads, total], hidden_norm.{l}
 * [batch, seq]. total = past + seq.
 * With `config.tempoLayers` non-empty, TempoFit ports are added (after obs_window, and after each
 * memory layer's other outputs): inputs tempo.{l}.key|value [batch, kvHeads, memory, headDim]
 * float32 (pre-RoPE bank, memory M may be 0) for each memory layer l and one tempo_bias
 * [batch, kvHeads, 1, memory] float32 (Frame-Gap Temporal Bias; −∞ or ≤ −1e9 on empty slots);
 * outputs tempo_prefix.{l}.key|value [batch, kvHeads, seq, headDim] (this step's pre-RoPE K/V,
 * before residual loading). present K/V at a memory layer hold the loaded K̂ (post-RoPE) and V̂.
 * A TempoFit runtime carries no past (it feeds past_key_values with past = 0: the bank is the
 * memory); the past ports stay for contract compatibility.
 * `options` (DecoderBuildOptions) switch to `inputs_embeds` and to the fixed-capacity float-table
 * variant (whose TempoFit form has no past ports).
 * @throws RangeError if the config is invalid (see checkDecoderConfig), `options.fixed` is not
 *   integers (seq ≥ 1, capacity ≥ 0), names an unknown output, has TempoFit layers without
 *   `bank` ≥ 1 and capacity 0 or `bank` without them, or input 'ids' has no embed table.
 * @see TempoFit, arXiv:2603.07647 */
export function buildDecoderOnnx(config: DecoderConfig, weights: DecoderWeights, options: DecoderBuildOptions = {}): Uint8Array {
  checkDecoderConfig(config)
  const { vocabSize: V, hiddenSize: D, kvHeads: Hkv, headDim: Dh } = config
  const tempoLayers = config.tempoLayers ?? []
  const { input = 'ids', fixed } = options
  if (fixed) {
    for (const [k, v] of Object.entries({ seq: fixed.seq, capacity: fixed.capacity }))
      if (!Number.isInteger(v) || v < (k === 'seq' ? 1 : 0)) throw new RangeError(`fixed.${k} must be an integer ≥ ${k === 'seq' ? 1 : 0}, got ${v}`)
    for (const p of fixed.outputs ?? []) if (!OPTIONAL_PORTS.includes(p)) throw new RangeError(`fixed.outputs: unknown port '${p}'`)
    if (tempoLayers.length && !(Number.isInteger(fixed.bank) && fixed.bank! >= 1 && fixed.capacity === 0))
      throw new RangeError(`the fixed TempoFit variant needs fixed.bank (slots, integer ≥ 1) and fixed.capacity 0 (no carried K/V), got bank ${fixed.bank}, capacity ${fixed.capacity}`)
    if (!tempoLayers.length && fixed.bank !== undefined) throw new RangeError('fixed.bank needs TempoFit layers')
  }
  if (input === 'ids' && !weights.embed?.length) throw new RangeError("input 'ids' needs the embed table")
  // symbolic dims, or their fixed values
  const sizes: Record<string, number> = fixed ? { batch: 1, seq: fixed.seq, past: fixed.capacity, total: fixed.capacity + fixed.seq, ...(fixed.bank && { memory: fixed.bank }) } : {}
  // the fixed TempoFit variant carries no K/V: no past inputs, no present outputs
  const carried = !(fixed && tempoLayers.length)
  const dim = (d: number | string) => (typeof d === 'string' && d in sizes ? sizes[d] : d)
  const dims = (ds: (number | string)[]) => ds.map(dim)
  const g = new GraphBuilder('stepkv_decoder')
  const inputName = input === 'ids' ? 'input_ids' : 'inputs_embeds'
  if (input === 'ids') g.input('input_ids', 'int64', dims(['batch', 'seq']))
  else g.input('inputs_embeds', 'float32', dims(['batch', 'seq', D]))
  let shared: Shared | undefined
  if (fixed) shared = { ...staticShared(g, config, fixed.seq, fixed.capacity + fixed.seq, fixed.outputs ?? OPTIONAL_PORTS), carried, ...(fixed.kvAbsMax && { storedMaxima: [] }) }
  else {
    g.input('position_ids', 'int64', ['batch', 'seq'])
    g.input('attention_mask', 'int64', ['batch', 'total'])
  }
  for (let l = 0; carried && l < config.layers; l++) {
    g.input(`past_key_values.${l}.key`, 'float32', dims(['batch', Hkv, 'past', Dh]))
    g.input(`past_key_values.${l}.value`, 'float32', dims(['batch', Hkv, 'past', Dh]))
  }
  if (!fixed) g.input('obs_window', 'int64', [])
  for (const l of tempoLayers) {
    const bank = tempoBankNames(l)
    g.input(bank.key, 'float32', dims(['batch', Hkv, 'memory', Dh]))
    g.input(bank.value, 'float32', dims(['batch', Hkv, 'memory', Dh]))
  }
  if (tempoLayers.length) g.input(TEMPO_BIAS, 'float32', dims(['batch', Hkv, 1, 'memory']))
  shared ??= sharedTensors(g, config, inputName)
  const tempo = tempoLayers.length ? tempoShared(g, config, fixed?.seq) : undefined
  let x = input === 'ids' ? g.op('Gather', [f32(g, 'embed', weights.embed, [V, D]), 'input_ids'], { axis: attr.int(0) }) : 'inputs_embeds'
  const outs: PendingOutput[] = []
  for (let l = 0; l < config.layers; l++) {
    const memoryLayer = tempoLayers.includes(l) ? tempo : undefined
    x = block(g, config, l, weights.layers[l], x, shared, outs, memoryLayer)
  }
  const final = rmsNorm(g, x, f32(g, 'final_norm', weights.finalNorm, [D]), shared.eps)
  let logits = g.op('MatMul', [final, f32(g, 'lm_head', weights.lmHead, [D, V])])
  if (weights.lmHeadBias) {
    // The fixed variant subtracts the negated bias (the same float result): ORT fuses MatMul + Add
    // into Reshape → Gemm → Reshape, and a Reshape into a bound output is a buffer copy that WebGPU
    // graph capture does not record, so every replay would return the first step's logits
    // (measured on the H200).
    if (fixed) logits = g.op('Sub', [logits, f32(g, 'lm_head_bias_negated', weights.lmHeadBias.map((b) => -b), [V])])
    else logits = g.op('Add', [logits, f32(g, 'lm_head_bias', weights.lmHeadBias, [V])])
  }
  // the fixed variant names the producing nodes' outputs directly (no Identity: ORT's WebGPU EP has
  // no Identity kernel, and graph capture needs every node on it)
  const output = fixed ? g.outputDirect.bind(g) : g.output.bind(g)
  output('logits', 'float32', dims(['batch', 'seq', V]), logits)
  for (const [name, ds, tensor] of outs) output(name, 'float32', dims(ds), tensor)
  const maxima = shared.storedMaxima
  if (maxima?.length) output(KV_ABSMAX_OUTPUT, 'float32', [], maxAll(g, maxima))
  const doc = fixed ? `stepkv decoder, fixed capacity (S ${fixed.seq}, C ${fixed.capacity})` : 'stepkv generated decoder (synthetic weights)'
  const tempoDoc = `; TempoFit ports at layers [${tempoLayers.join(', ')}]`
  return g.toBytes({ docString: tempoLayers.length ? doc + tempoDoc : doc })
}
