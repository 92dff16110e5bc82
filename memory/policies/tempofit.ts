/**
 * @module TempoFit: a layer-wise FIFO bank of the last N frames' pre-RoPE prefix K/V at the
 * model's memory layers, read by K-to-K retrieval inside the graph with a Frame-Gap Temporal Bias.
 * No past KV is carried: each step prefills its prefix fresh, and history enters only through the
 * bank fed to the model's `tempo.{l}.key|value` and `tempo_bias` inputs.
 */
import { PolicyConfigError } from '../errors.ts'
import { appendPrefix, concatRows } from '../session.ts'
import type { Policy, SessionMemory, StepInfo } from '../types.ts'
import { keepRows } from './select.ts'

/**
 * TempoFit parameters.
 * - `frames` : integer, default=8 — N, frames kept in the FIFO (paper ablation: 4 → 95.2 %,
 *   8 → 96.6 %, 16 → 96.2 % on LIBERO-Long).
 * - `beta` : number, default=auto — β, bias strength. Unpublished in the paper; `auto` picks
 *   β = 1/m₀ so that one frame of gap costs one logit on the steepest head. Within [1e-6, 1e6].
 * - `tokenScale` : number, default=1 — α, the token-scale factor. The paper ties it to S (prefix
 *   tokens per frame) without giving the formula; α = 1 measures the gap in frames. Within [1e-6, 1e6].
 * The memory layers are fixed by the model export (`manifest.tempoLayers`, default the middle third).
 */
export interface TempoFitOptions {
  frames?: number
  beta?: number
  tokenScale?: number
}

/** ALiBi-style per-KV-head slopes `m_h = 2^(−8(h+1)/H)`, h = 0…H−1 (Press et al., arXiv:2108.12409). */
export function alibiSlopes(kvHeads: number): Float64Array {
  return Float64Array.from({ length: kvHeads }, (_, h) => 2 ** ((-8 * (h + 1)) / kvHeads))
}

/**
 * Frame-Gap Temporal Bias of every bank slot for the step `seq`:
 * `B[h, j] = −β · m_h · |seq − τ_j| · α`, τ_j the frame (step seq) slot j came from.
 * Slots are all real (the bank holds exactly M tokens); the GPU host's fixed bank slots add
 * MASKED_SCORE (−1e9) for empty ones (`residentStaticTempoStep`: the graph's null slot then takes
 * their weight, as with −∞).
 * @param bank the TempoFit bank (any memory layer: all share frames)
 * @returns Float32Array `[kvHeads, M]` (fed as `tempo_bias [1, kvHeads, 1, M]`)
 * @see TempoFit, arXiv:2603.07647 (§ Frame-Gap Temporal Bias)
 */
export function tempoBias(
  bank: SessionMemory,
  seq: number,
  options: { beta?: number; tokenScale?: number } = {},
): Float32Array {
  const { kvHeads, tokens } = bank
  const slopes = alibiSlopes(kvHeads)
  const beta = options.beta ?? 1 / slopes[0]
  const alpha = options.tokenScale ?? 1
  const out = new Float32Array(kvHeads * tokens)
  if (tokens === 0) return out
  const frames = bank.layers[0].frames
  for (let h = 0; h < kvHeads; h++)
    for (let j = 0; j < tokens; j++)
      out[h * tokens + j] = -beta * slopes[h] * Math.abs(seq - frames[h * tokens + j]) * alpha
  return out
}

/**
 * `tempoBias` with β and the token-scale factor α read from a `tempofit` policy's params (`beta`:
 * a number, else the default 1 / m_0; `tokenScale`: default 1). @returns as `tempoBias`
 */
export function tempoBiasFor(bank: SessionMemory, seq: number, params: Readonly<Record<string, unknown>>): Float32Array {
  return tempoBias(bank, seq, { beta: typeof params.beta === 'number' ? params.beta : undefined, tokenScale: Number(params.tokenScale ?? 1) })
}

function positive(name: string, value: unknown, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value)))
    throw new PolicyConfigError(
      `tempofit policy parameter '${name}' must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`,
      { policy: 'tempofit', parameter: name },
    )
  return value
}

/** β and α within [1e-6, 1e6]: the bias −β·m_h·gap·α then stays finite in float32 for every
 * bank size (≤ 1024 frames); outside it a float32 bias overflows to −∞ (the bank silently unread)
 * or underflows to denormals. @throws PolicyConfigError */
function scale(name: string, value: number): number {
  if (value < 1e-6 || value > 1e6)
    throw new PolicyConfigError(`tempofit policy parameter '${name}' must be within [1e-6, 1e6], got ${value}`, { policy: 'tempofit', parameter: name })
  return value
}

/**
 * The TempoFit bank policy. `update(bank, step)` pushes this step's pre-RoPE prefix K/V
 * (`step.tempoPrefix`, one `[kvHeads, S, headDim]` pair per memory layer) and drops frames older
 * than the last `frames` steps. Bank positions are a running token counter (metadata only: the
 * bank is pre-RoPE).
 * @throws PolicyConfigError for a bad or unknown parameter
 * @see TempoFit, arXiv:2603.07647
 */
export function tempofitPolicy(options: TempoFitOptions | unknown = {}): Policy {
  const given = (options ?? {}) as Record<string, unknown>
  if (typeof given !== 'object' || Array.isArray(given))
    throw new PolicyConfigError('tempofit policy parameters must be a plain object', { policy: 'tempofit' })
  for (const key of Object.keys(given))
    if (!['frames', 'beta', 'tokenScale'].includes(key))
      throw new PolicyConfigError(`tempofit policy has no parameter '${key}' (known: frames, beta, tokenScale)`, {
        policy: 'tempofit',
        parameter: key,
      })
  const frames = given.frames === undefined ? 8 : positive('frames', given.frames, true)
  if (frames > 1024) throw new PolicyConfigError('tempofit frames must be ≤ 1024', { parameter: 'frames' })
  const beta = given.beta === undefined || given.beta === 'auto' ? undefined : scale('beta', positive('beta', given.beta, false))
  const tokenScale = given.tokenScale === undefined ? 1 : scale('tokenScale', positive('tokenScale', given.tokenScale, false))
  return {
    name: 'tempofit',
    params: { frames, beta: beta ?? 'auto', tokenScale },
    memory: 'tempo',
    requires: ['tempo'],
    update(bank: SessionMemory, step: StepInfo): SessionMemory {
      const prefix = step.tempoPrefix
      if (!prefix || prefix.length !== bank.layers.length)
        throw new RangeError(`tempofit needs tempoPrefix for ${bank.layers.length} memory layers`)
      const S = step.prefixTokens
      const present = bank.layers.map((layer, l) => ({
        key: concatRows(layer.keys, prefix[l].key, bank.kvHeads, bank.tokens, S, bank.headDim),
        value: concatRows(layer.values, prefix[l].value, bank.kvHeads, bank.tokens, S, bank.headDim),
      }))
      const positions = Int32Array.from({ length: S }, (_, i) => bank.nextPosition + i)
      const kinds = step.kinds ?? new Uint8Array(S)
      const grown = appendPrefix(bank, present, { seq: step.seq, positions, kinds })
      const oldest = step.seq - frames + 1
      const f = grown.layers[0].frames
      const rows: number[] = []
      for (let j = 0; j < grown.tokens; j++) if (f[j] >= oldest) rows.push(j)
      return rows.length === grown.tokens ? grown : keepRows(grown, Int32Array.from(rows))
    },
  }
}
