/**
 * @module An independent float64 forward pass of the generated decoder, written plainly with loops
 * (it shares only the config and weights with models/decoder/graph.ts), with TempoFit's in-layer
 * retrieval as an option. Batch 1. Tests check the ONNX model against it.
 * @see TempoFit, arXiv:2603.07647
 */
import type { DecoderConfig } from '../../models/decoder/config.ts'
import type { DecoderWeights } from '../../models/decoder/weights.ts'

/** K/V of one layer, [kvHeads, tokens, headDim] flat. */
export interface KV64 {
  key: Float64Array | Float32Array
  value: Float64Array | Float32Array
}

/** One forward step: S new tokens after P past tokens (T = P + S). */
export interface Forward64Input {
  /** Token ids, length S ≥ 1. */
  inputIds: number[]
  /** Absolute positions of the new tokens, length S. */
  positionIds: number[]
  /** Length T: 0 masks that key for every query. */
  attentionMask: number[]
  /** Per layer, each [kvHeads, P, headDim] (P may be 0). */
  past: KV64[]
  /** If given, attnWindow sums attention over the last `obsWindow` queries (i ≥ S − w). */
  obsWindow?: number
  /** TempoFit memory: if given, `tempo.layers` run the retrieval and the output has tempoPrefix. */
  tempo?: Tempo64
}

/** TempoFit's bank for one step (M slots, the same M at every memory layer).
 * @see TempoFit, arXiv:2603.07647 */
export interface Tempo64 {
  /** Memory layers, e.g. [1, 2]. */
  layers: number[]
  /** Per memory layer (same order as `layers`): pre-RoPE keys and values [kvHeads, M, headDim]. */
  bank: KV64[]
  /** [kvHeads, M]: added to the retrieval scores; a slot with −∞ or ≤ −1e8 is empty. */
  bias: ArrayLike<number>
  /** Deliberately wrong variants, only to show that the agreement tests can fail:
   * 'no-rescale' skips the norm-preserving rescale; 'query-to-key' scores the bank with the
   * pre-RoPE query of the first query head of each KV group instead of the current keys. */
  ablation?: 'no-rescale' | 'query-to-key'
}

/** Outputs of one step. */
export interface Forward64Output {
  /** [S, V] */
  logits: Float64Array
  /** Per layer, each [kvHeads, T, headDim]; keys post-RoPE. */
  present: { key: Float64Array; value: Float64Array }[]
  /** Per layer [kvHeads, T]: attention of the last w queries, summed over queries and the query
   * heads of each KV group (only if obsWindow was given). */
  attnWindow?: Float64Array[]
  /** Per layer [kvHeads, T]: the same over all S queries. */
  attnTotal: Float64Array[]
  /** Per layer [S]: L2 norm of each token's attention input (after the input RMSNorm and gain). */
  hiddenNorm: Float64Array[]
  /** Only with input.tempo: per memory layer (order of tempo.layers), this step's pre-RoPE K and V
   * [kvHeads, S, headDim], before residual loading. */
  tempoPrefix?: { key: Float64Array; value: Float64Array }[]
}

/** Score of a masked (query, key) pair, as in the ONNX graph (finite: empty rows are uniform). */
const MASKED = -1e9

/** y [rows, out] = x [rows, inDim] · w [inDim, out]. */
function matmul(x: Float64Array, w: Float32Array, rows: number, inDim: number, out: number) {
  const y = new Float64Array(rows * out)
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < inDim; i++) {
      const xv = x[r * inDim + i]
      for (let o = 0; o < out; o++) y[r * out + o] += xv * w[i * out + o]
    }
  }
  return y
}

/** Row-wise RMSNorm of x [rows, D]: x / sqrt(mean(x²) + eps) · gain. */
function rmsNorm(x: Float64Array, gain: Float32Array, rows: number, D: number, eps: number) {
  const y = new Float64Array(rows * D)
  for (let r = 0; r < rows; r++) {
    let sum = 0
    for (let d = 0; d < D; d++) sum += x[r * D + d] ** 2
    const inv = 1 / Math.sqrt(sum / D + eps)
    for (let d = 0; d < D; d++) y[r * D + d] = x[r * D + d] * inv * gain[d]
  }
  return y
}

/** A bank slot whose bias is at or below this (or −∞) is empty: it gets no weight, and a token
 * whose slots are all empty retrieves 0. */
const EMPTY_BIAS = -1e8
/** ε of the norm-preserving rescale. */
const RESCALE_EPS = 1e-6

/** [S, heads·Dh] token-major → [heads, S, Dh]. */
function headMajor(x: Float64Array, S: number, heads: number, Dh: number): Float64Array {
  const y = new Float64Array(S * heads * Dh)
  for (let i = 0; i < S; i++)
    for (let h = 0; h < heads; h++)
      for (let d = 0; d < Dh; d++) y[(h * S + i) * Dh + d] = x[i * heads * Dh + h * Dh + d]
  return y
}

/** TempoFit at one memory layer, in place on k, v [S, Hkv·Dh] (pre-RoPE): for each KV head and
 * token i, w = softmax over non-empty slots m of (k_i · K_hist[m] / √Dh + bias[m]), context =
 * Σ w_m K_hist[m] (and Σ w_m V_hist[m]), k̃ = k_i + context, k_i ← k̃ · ‖k_i‖ / (‖k̃‖ + ε); the
 * same for v. `q` [S, H·Dh] is only read by the 'query-to-key' ablation. */
function tempoLoad(
  k: Float64Array,
  v: Float64Array,
  q: Float64Array,
  bank: KV64,
  t: Tempo64,
  S: number,
  c: DecoderConfig,
) {
  const { heads: H, kvHeads: Hkv, headDim: Dh } = c
  const M = t.bias.length / Hkv
  const group = H / Hkv
  for (let kh = 0; kh < Hkv; kh++) {
    for (let i = 0; i < S; i++) {
      const at = i * Hkv * Dh + kh * Dh
      const query =
        t.ablation === 'query-to-key'
          ? q.subarray(i * H * Dh + kh * group * Dh, i * H * Dh + (kh * group + 1) * Dh)
          : k.slice(at, at + Dh)
      const weight = new Float64Array(M)
      let best = -Infinity
      for (let m = 0; m < M; m++) {
        const bias = t.bias[kh * M + m]
        if (bias <= EMPTY_BIAS) continue
        let dot = 0
        for (let d = 0; d < Dh; d++) dot += query[d] * bank.key[(kh * M + m) * Dh + d]
        weight[m] = dot / Math.sqrt(Dh) + bias
        best = Math.max(best, weight[m])
      }
      let sum = 0
      for (let m = 0; m < M; m++) {
        weight[m] = t.bias[kh * M + m] <= EMPTY_BIAS ? 0 : Math.exp(weight[m] - best)
        sum += weight[m]
      }
      for (const [x, hist] of [
        [k, bank.key],
        [v, bank.value],
      ] as const) {
        const loaded = new Float64Array(Dh)
        let normBefore = 0
        let normAfter = 0
        for (let d = 0; d < Dh; d++) {
          let context = 0 // stays 0 when every slot is empty (sum = 0)
          for (let m = 0; m < M; m++) {
            if (weight[m] > 0) context += (weight[m] / sum) * hist[(kh * M + m) * Dh + d]
          }
          loaded[d] = x[at + d] + context
          normBefore += x[at + d] ** 2
          normAfter += loaded[d] ** 2
        }
        const rescale = Math.sqrt(normBefore) / (Math.sqrt(normAfter) + RESCALE_EPS)
        const factor = t.ablation === 'no-rescale' ? 1 : rescale
        for (let d = 0; d < Dh; d++) x[at + d] = loaded[d] * factor
      }
    }
  }
}

/** Rotate-half RoPE in place on x [S, heads·Dh] at the given absolute positions. */
function rope(x: Float64Array, positions: number[], heads: number, c: DecoderConfig) {
  const Dh = c.headDim
  const half = Dh / 2
  for (let i = 0; i < positions.length; i++) {
    for (let h = 0; h < heads; h++) {
      const o = i * heads * Dh + h * Dh
      for (let d = 0; d < half; d++) {
        const angle = positions[i] * Math.pow(c.ropeBase, (-2 * d) / Dh)
        const [cos, sin] = [Math.cos(angle), Math.sin(angle)]
        const [a, b] = [x[o + d], x[o + d + half]]
        x[o + d] = a * cos - b * sin
        x[o + d + half] = b * cos + a * sin
      }
    }
  }
}

/** Runs the decoder in float64 (with input.tempo, TempoFit's retrieval at its memory layers,
 * between the K/V projections and RoPE).
 * @throws RangeError if lengths disagree (positionIds vs inputIds, attentionMask vs P + S, a
 * tempo bank vs [kvHeads, M, headDim] with M = bias length / kvHeads).
 * @see TempoFit, arXiv:2603.07647 */
export function forward64(
  c: DecoderConfig,
  w: DecoderWeights,
  input: Forward64Input,
): Forward64Output {
  const { hiddenSize: D, heads: H, kvHeads: Hkv, headDim: Dh, vocabSize: V } = c
  const F = c.intermediateSize
  const S = input.inputIds.length
  const P = input.past.length ? input.past[0].key.length / (Hkv * Dh) : 0
  const T = P + S
  const group = H / Hkv
  if (input.positionIds.length !== S) throw new RangeError('positionIds length ≠ inputIds length')
  if (input.attentionMask.length !== T) throw new RangeError(`attentionMask length ≠ P + S = ${T}`)
  const tempo = input.tempo
  if (tempo) {
    const M = tempo.bias.length / Hkv
    if (!Number.isInteger(M)) throw new RangeError('tempo.bias length is not a multiple of kvHeads')
    if (tempo.bank.length !== tempo.layers.length) throw new RangeError('one tempo bank per layer')
    for (const kv of tempo.bank) {
      if (kv.key.length !== Hkv * M * Dh || kv.value.length !== Hkv * M * Dh)
        throw new RangeError(`tempo bank must be [kvHeads, ${M}, headDim]`)
    }
  }
  const windowStart = input.obsWindow === undefined ? S : S - input.obsWindow
  let x = new Float64Array(S * D)
  for (let i = 0; i < S; i++) {
    for (let d = 0; d < D; d++) x[i * D + d] = w.embed[input.inputIds[i] * D + d]
  }
  const out: Forward64Output = {
    logits: new Float64Array(0),
    present: [],
    attnTotal: [],
    hiddenNorm: [],
  }
  if (input.obsWindow !== undefined) out.attnWindow = []
  if (tempo) out.tempoPrefix = []
  for (let l = 0; l < c.layers; l++) {
    const lw = w.layers[l]
    const h = rmsNorm(x, lw.attnNorm, S, D, c.rmsNormEps)
    const hiddenNorm = new Float64Array(S)
    for (let i = 0; i < S; i++) {
      let sum = 0
      for (let d = 0; d < D; d++) sum += h[i * D + d] ** 2
      hiddenNorm[i] = Math.sqrt(sum)
    }
    const q = matmul(h, lw.wq, S, D, H * Dh)
    const k = matmul(h, lw.wk, S, D, Hkv * Dh)
    const v = matmul(h, lw.wv, S, D, Hkv * Dh)
    const memorySlot = tempo ? tempo.layers.indexOf(l) : -1
    if (tempo && memorySlot >= 0) {
      out.tempoPrefix!.push({ key: headMajor(k, S, Hkv, Dh), value: headMajor(v, S, Hkv, Dh) })
      tempoLoad(k, v, q, tempo.bank[memorySlot], tempo, S, c)
    }
    rope(q, input.positionIds, H, c)
    rope(k, input.positionIds, Hkv, c)
    const key = new Float64Array(Hkv * T * Dh)
    const value = new Float64Array(Hkv * T * Dh)
    for (let kh = 0; kh < Hkv; kh++) {
      for (let j = 0; j < T; j++) {
        for (let d = 0; d < Dh; d++) {
          const at = (kh * T + j) * Dh + d
          const fromPast = (kh * P + j) * Dh + d
          const fromNew = (j - P) * Hkv * Dh + kh * Dh + d
          key[at] = j < P ? input.past[l].key[fromPast] : k[fromNew]
          value[at] = j < P ? input.past[l].value[fromPast] : v[fromNew]
        }
      }
    }
    const attnTotal = new Float64Array(Hkv * T)
    const attnWindow = new Float64Array(Hkv * T)
    const context = new Float64Array(S * H * Dh)
    for (let head = 0; head < H; head++) {
      const kh = Math.floor(head / group)
      for (let i = 0; i < S; i++) {
        const scores = new Float64Array(T)
        for (let j = 0; j < T; j++) {
          let dot = 0
          for (let d = 0; d < Dh; d++)
            dot += q[i * H * Dh + head * Dh + d] * key[(kh * T + j) * Dh + d]
          const allowed = j <= P + i && input.attentionMask[j] !== 0
          scores[j] = allowed ? dot / Math.sqrt(Dh) : MASKED
        }
        const max = Math.max(...scores)
        let sum = 0
        for (let j = 0; j < T; j++) sum += scores[j] = Math.exp(scores[j] - max)
        for (let j = 0; j < T; j++) {
          const p = scores[j] / sum
          attnTotal[kh * T + j] += p
          if (i >= windowStart) attnWindow[kh * T + j] += p
          for (let d = 0; d < Dh; d++) {
            context[i * H * Dh + head * Dh + d] += p * value[(kh * T + j) * Dh + d]
          }
        }
      }
    }
    const attnOut = matmul(context, lw.wo, S, H * Dh, D)
    for (let n = 0; n < S * D; n++) x[n] += attnOut[n]
    const h2 = rmsNorm(x, lw.mlpNorm, S, D, c.rmsNormEps)
    const gate = matmul(h2, lw.wGate, S, D, F)
    const up = matmul(h2, lw.wUp, S, D, F)
    for (let n = 0; n < S * F; n++) gate[n] = (gate[n] / (1 + Math.exp(-gate[n]))) * up[n]
    const down = matmul(gate, lw.wDown, S, F, D)
    for (let n = 0; n < S * D; n++) x[n] += down[n]
    out.present.push({ key, value })
    out.attnTotal.push(attnTotal)
    out.attnWindow?.push(attnWindow)
    out.hiddenNorm.push(hiddenNorm)
  }
  x = rmsNorm(x, w.finalNorm, S, D, c.rmsNormEps)
  out.logits = matmul(x, w.lmHead, S, D, V)
  return out
}
