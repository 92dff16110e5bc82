/**
 * @module TempoFit's in-layer memory for the generated decoder: K-to-K retrieval from a bank of
 * earlier frames' pre-RoPE prefix K/V, residual loading and a norm-preserving rescale, between the
 * K/V projections and RoPE of a memory layer. Standard ai.onnx ops only; adds no weights.
 * @see TempoFit, arXiv:2603.07647
 */
import { attr, type GraphBuilder } from '../onnx/builder.ts'
import type { DecoderConfig } from './config.ts'

/** ε of the norm-preserving rescale K̂_i = K̃_i · ‖K_t,i‖ / (‖K̃_i‖ + ε) (the same for V). It only
 * guards ‖K̃_i‖ = 0; with an empty bank it shrinks a token by the factor ‖K_t,i‖ / (‖K_t,i‖ + ε),
 * 1 − O(1e-7) for the O(1–10) norms of real keys. */
export const TEMPO_EPS = 1e-6

/** Score of the implicit null slot (key = value = 0) the softmax always sees beside the bank. A
 * bank slot whose biased score is at least ~104 above it (exp underflows in float32) leaves the
 * null slot weight exactly 0; when every slot is empty (bias −∞ or ≤ −1e9, the contract's
 * values) or M = 0, the null slot takes all the weight and the retrieval gives exactly 0: no
 * softmax over an empty axis, no −∞ − (−∞) = NaN, no uniform average over masked slots. */
export const TEMPO_NULL_SCORE = -1e8

/** Tensors shared by the memory layers, built once per graph. */
export interface TempoShared {
  /** TEMPO_NULL_SCORE broadcast to [B, Hkv, S, 1]. */
  nullScore: string
  /** Zeros [B, Hkv, 1, Dh]: the null slot's key and value. */
  nullRow: string
  /** float32 scalars 1/√Dh and TEMPO_EPS. */
  scale: string
  eps: string
}

/** Input names of layer l's bank: pre-RoPE keys and values [batch, kvHeads, memory, headDim]. */
export const tempoBankNames = (l: number) => ({ key: `tempo.${l}.key`, value: `tempo.${l}.value` })

/** Output names of layer l's prefix K/V: pre-RoPE, before residual loading [batch, kvHeads, seq,
 * headDim]. */
export const tempoPrefixNames = (l: number) => ({
  key: `tempo_prefix.${l}.key`,
  value: `tempo_prefix.${l}.value`,
})

/** The bias input [batch, kvHeads, 1, memory] float32, shared by all memory layers (one M). */
export const TEMPO_BIAS = 'tempo_bias'

/** Builds the shared tensors from the shapes of `input_ids` and `tempo_bias`; with `fixedSeq` (the
 * fixed-capacity variant: batch 1, S = fixedSeq) as constants, no shape arithmetic. */
export function tempoShared(g: GraphBuilder, c: DecoderConfig, fixedSeq?: number): TempoShared {
  if (fixedSeq !== undefined)
    return {
      nullScore: g.initializer('tempo_null_scores', { dtype: 'float32', dims: [1, c.kvHeads, fixedSeq, 1], data: new Float32Array(c.kvHeads * fixedSeq).fill(TEMPO_NULL_SCORE) }),
      nullRow: g.initializer('tempo_null_row', { dtype: 'float32', dims: [1, c.kvHeads, 1, c.headDim], data: new Float32Array(c.kvHeads * c.headDim) }),
      scale: g.float32(1 / Math.sqrt(c.headDim), 'tempo_scale'),
      eps: g.float32(TEMPO_EPS, 'tempo_eps'),
    }
  const biasShape = g.op('Shape', [TEMPO_BIAS])
  const batchHeads = g.op('Slice', [biasShape, g.int64([0]), g.int64([2])])
  const seq = g.op('Slice', [g.op('Shape', ['input_ids']), g.int64([1]), g.int64([2])])
  const scoreShape = g.op('Concat', [batchHeads, seq, g.int64([1])], { axis: attr.int(0) })
  const rowShape = g.op('Concat', [batchHeads, g.int64([1, c.headDim])], { axis: attr.int(0) })
  return {
    nullScore: g.op('Expand', [g.float32(TEMPO_NULL_SCORE, 'tempo_null_score'), scoreShape]),
    nullRow: g.op('Expand', [g.float32(0, 'tempo_zero'), rowShape]),
    scale: g.float32(1 / Math.sqrt(c.headDim), 'tempo_scale'),
    eps: g.float32(TEMPO_EPS, 'tempo_eps'),
  }
}

/** x · ‖ref‖ / (‖x‖ + ε) per token (L2 over the last axis). x, ref [B, Hkv, S, Dh] → same. */
function rescaleToNorm(g: GraphBuilder, x: string, ref: string, eps: string): string {
  const norm = (t: string) =>
    g.op('ReduceL2', [t], { axes: attr.ints([-1]), keepdims: attr.int(1) })
  return g.op('Mul', [x, g.op('Div', [norm(ref), g.op('Add', [norm(x), eps])])])
}

/** TempoFit at memory layer l, per KV head, with K_t/V_t this step's pre-RoPE keys/values:
 * W = softmax(K_t · K_histᵀ / √Dh + tempo_bias) [S, M] (K-to-K: the current keys are the queries),
 * K_ctx = W · K_hist, V_ctx = W · V_hist, K̃ = K_t + K_ctx, Ṽ = V_t + V_ctx, then per token
 * K̂_i = K̃_i · ‖K_t,i‖ / (‖K̃_i‖ + TEMPO_EPS) and the same for V. The softmax also sees a null
 * slot (TEMPO_NULL_SCORE) so an empty or fully masked bank contributes exactly 0.
 * @param k pre-RoPE keys K_t [B, Hkv, S, Dh]
 * @param v values V_t [B, Hkv, S, Dh]
 * @returns K̂ (pre-RoPE: RoPE comes after, at the current positions) and V̂, [B, Hkv, S, Dh]
 * @see TempoFit, arXiv:2603.07647 */
export function tempoLoad(
  g: GraphBuilder,
  l: number,
  k: string,
  v: string,
  s: TempoShared,
): { key: string; value: string } {
  const bank = tempoBankNames(l)
  const bankKeysT = g.op('Transpose', [bank.key], { perm: attr.ints([0, 1, 3, 2]) })
  const raw = g.op('Mul', [g.op('MatMul', [k, bankKeysT]), s.scale])
  const scores = g.op('Add', [raw, TEMPO_BIAS]) // [B, Hkv, S, M]
  const withNull = g.op('Concat', [s.nullScore, scores], { axis: attr.int(-1) })
  const weights = g.op('Softmax', [withNull], { axis: attr.int(-1) }) // [B, Hkv, S, 1 + M]
  const context = (bankPart: string) => {
    const rows = g.op('Concat', [s.nullRow, bankPart], { axis: attr.int(2) }) // [B, Hkv, 1 + M, Dh]
    return g.op('MatMul', [weights, rows])
  }
  const kTilde = g.op('Add', [k, context(bank.key)])
  const vTilde = g.op('Add', [v, context(bank.value)])
  return { key: rescaleToNorm(g, kTilde, k, s.eps), value: rescaleToNorm(g, vTilde, v, s.eps) }
}
