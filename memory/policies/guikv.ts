/**
 * @module The `guikv` policy: SnapKV's window attention, plus spatial saliency (hidden-state norms)
 * on the current screenshot's visual tokens, minus temporal redundancy (earlier screenshots' visual
 * keys that the current screenshot's key subspace already explains). Uniform budget per layer.
 */
import { basisOfRows, DEPENDENT_TOLERANCE, residualNorms } from '../linalg.ts'
import { KIND_MASK, TokenKind, type Policy, type SessionMemory, type StepInfo } from '../types.ts'
import { MAX_TOKENS, readIntParams } from './params.ts'
import { keepTopScores } from './select.ts'
import { avgPoolSame, checkWindowParams } from './snapkv.ts'
import { prefixTokensOf, stepPort } from './step-ports.ts'

/**
 * GUI-KV parameters.
 * - `budgetTokens` : integer, default=256 — rows kept per head in every layer (tokens); uniform
 *   across layers, as the paper found best.
 * - `observationWindow` : integer, default=8 — w: the last rows, always kept, whose queries score
 *   the keys (the reference scripts' window 8); a step of S < w tokens uses w = S.
 * - `kernelSize` : integer, default=5 — odd width of the average pooling along tokens.
 * - `alpha` : number, default=2 — α, weight of the spatial saliency (scripts; class default 0.1).
 * - `temperature` : number, default=3.5 — T of the saliency softmax (scripts; class default 1).
 * - `subspaceRank` : integer, default=32 — most basis vectors of the current screenshot's keys.
 * - `queryGroupSize` : integer, default=1 — query heads per KV head of the model. `attn_window`
 *   sums over a KV group's query heads; it is divided by this to give the reference's per-group
 *   mean, the scale α is relative to.
 */
export interface GUIKVOptions {
  budgetTokens?: number
  observationWindow?: number
  kernelSize?: number
  alpha?: number
  temperature?: number
  subspaceRank?: number
  queryGroupSize?: number
}

const SPEC = {
  budgetTokens: { default: 256, min: 1, max: MAX_TOKENS },
  observationWindow: { default: 8, min: 1, max: MAX_TOKENS },
  kernelSize: { default: 5, min: 1, max: MAX_TOKENS },
  alpha: { default: 2, min: 0, max: 1e6, real: true },
  temperature: { default: 3.5, min: 1e-3, max: 1e6, real: true },
  subspaceRank: { default: 32, min: 1, max: 4096 },
  queryGroupSize: { default: 1, min: 1, max: 1024 },
}
/** Every GUI-KV parameter, defaults filled in (as `policy.params`). */
export type GUIKVParams = { [K in keyof typeof SPEC]: number }

/**
 * Spatial saliency of the current screenshot's tokens: `z = (r − mean) / (std + 1e-8)`,
 * `S = softmax(z / temperature)`; std with Bessel's correction (n − 1, as `torch.std`), 0 for one
 * token (S = [1]).
 * @param norms `[n]` L2 norms r of the tokens' attention inputs
 * @returns Float64Array `[n]`, summing to 1 (empty for n = 0)
 * @see GUI-KV, arXiv:2510.00536 (spatial saliency guidance)
 */
export function spatialSaliency(norms: ArrayLike<number>, temperature: number): Float64Array {
  const n = norms.length
  let mean = 0
  for (let i = 0; i < n; i++) mean += norms[i] / n
  let squares = 0
  for (let i = 0; i < n; i++) squares += (norms[i] - mean) ** 2
  const std = n > 1 ? Math.sqrt(squares / (n - 1)) : 0
  const logits = Float64Array.from(norms, (r) => (r - mean) / (std + 1e-8) / temperature)
  const max = logits.reduce((a, b) => Math.max(a, b), -Infinity)
  const out = logits.map((x) => Math.exp(x - max))
  const sum = out.reduce((a, b) => a + b, 0)
  return out.map((x) => x / sum)
}

/**
 * Temporal redundancy of one head: ρ_j = ‖k_j − Q Qᵀ k_j‖₂ for each previous-screenshot key k_j,
 * Q = the first r = min(subspaceRank, n, d) columns of a thin QR of the current screenshot's keys
 * as a `[d, n]` matrix (no centring; rank deficiency: see `orthonormalBasis`).
 * A key in the span has ρ = 0 exactly: when Q spans the whole key space (r = headDim, e.g. the
 * default rank 32 with 32-dimensional heads) every ρ is 0 and none is computed, and a computed
 * ρ_j ≤ `DEPENDENT_TOLERANCE` · ‖k_j‖ (the tolerance under which the basis itself counts a vector
 * as dependent) is set to 0. Floating-point rounding noise (≈ 1e-16 · ‖k‖) would otherwise decide
 * which keys count as most redundant: measured on the robot suite, that noise ranking evicted
 * arbitrary carried rows each step (agreement on memory-dependent steps at 25 % / 10 %, with the
 * robot-carried weights of before the eighth session: 94.1 % / 89.6 % with the noise, 99.2 % /
 * 95.2 % with the exact zeros, whose ties `guiKVScores` breaks oldest first; README, robot fidelity).
 * @param keys Float32Array `[kvHeads, tokens, headDim]` of one layer (post-RoPE)
 * @param current, previous row indices of head `head` (current / earlier screenshots' visual rows)
 * @returns Float64Array `[previous.length]`, ≥ 0
 * @see GUI-KV, arXiv:2510.00536 (temporal redundancy scoring)
 */
export function temporalResiduals(
  keys: Float32Array,
  head: number,
  tokens: number,
  headDim: number,
  current: readonly number[],
  previous: readonly number[],
  subspaceRank: number,
): Float64Array {
  const startOf = (t: number) => (head * tokens + t) * headDim
  const basis = basisOfRows(keys, Int32Array.from(current, startOf), headDim, subspaceRank)
  if (basis.rank === headDim) return new Float64Array(previous.length)
  const rho = residualNorms(basis, keys, Int32Array.from(previous, startOf))
  previous.forEach((t, j) => {
    let sum = 0
    for (let d = startOf(t), end = d + headDim; d < end; d++) sum += keys[d] * keys[d]
    if (rho[j] <= DEPENDENT_TOLERANCE * Math.sqrt(sum)) rho[j] = 0
  })
  return rho
}

/**
 * GUI-KV scores of one layer of the grown memory (P carried + S new rows per head), per KV head:
 * pooled window attention of rows before the window (as `snapKVScores`) / queryGroupSize;
 * + α · saliency on this step's visual rows (those inside the window are kept anyway); := 0 for
 * the ⌊(1 − budgetTokens / tokens) · N_prev⌋ carried visual rows of smallest residual (ties: older
 * first), when this step and the memory both hold visual rows.
 * @param attnWindow Float32Array `[kvHeads, tokens]`; hiddenNorm Float32Array `[S]`
 * @param prefixTokens S; windowTokens w = min(observationWindow, S): the last w rows get +Infinity
 * @returns Float32Array `[kvHeads, tokens]`, high = keep
 * @see GUI-KV, arXiv:2510.00536
 */
export function guiKVScores(
  mem: SessionMemory,
  layer: number,
  attnWindow: Float32Array,
  hiddenNorm: Float32Array,
  prefixTokens: number,
  windowTokens: number,
  p: GUIKVParams,
): Float32Array {
  const { kvHeads, tokens, headDim } = mem
  const { keys, kinds } = mem.layers[layer]
  const carried = tokens - prefixTokens
  const scored = tokens - windowTokens
  const out = new Float32Array(kvHeads * tokens).fill(Infinity)
  const visual = (h: number, from: number, to: number) => {
    const rows: number[] = []
    for (let t = from; t < to; t++)
      if ((kinds[h * tokens + t] & KIND_MASK) === TokenKind.visual) rows.push(t)
    return rows
  }
  for (let h = 0; h < kvHeads; h++) {
    const score = avgPoolSame(attnWindow.subarray(h * tokens, h * tokens + scored), p.kernelSize)
    for (let t = 0; t < scored; t++) score[t] /= p.queryGroupSize
    const current = visual(h, carried, tokens)
    const saliency = spatialSaliency(
      Float64Array.from(current, (t) => hiddenNorm[t - carried]),
      p.temperature,
    )
    current.forEach((t, i) => t < scored && (score[t] += p.alpha * saliency[i]))
    const previous = visual(h, 0, carried)
    if (current.length > 0 && previous.length > 0) {
      const rho = temporalResiduals(keys, h, tokens, headDim, current, previous, p.subspaceRank)
      // floor((1 − budget / promptTokens) · N_prev), in integers (no float rounding at the floor)
      const zeroed = Math.floor(((tokens - p.budgetTokens) * previous.length) / tokens)
      const order = previous.map((_, i) => i).sort((a, b) => rho[a] - rho[b] || a - b)
      for (const i of order.slice(0, Math.max(0, zeroed))) score[previous[i]] = 0
    }
    out.set(score, h * tokens)
  }
  return out
}

/**
 * GUI-KV over the carried memory: after each step, per layer and KV head (GQA kept: scores are
 * per KV head, never expanded to query heads) keep the last w = min(observationWindow, S) rows and
 * the `budgetTokens − w` other rows with the highest score, where score = pooled window attention
 * / queryGroupSize, + α · saliency on this step's visual rows, := 0 for the
 * ⌊(1 − budgetTokens / promptTokens) · N_prev⌋ earlier visual rows of smallest residual ρ (ties:
 * older first). promptTokens = P + S, the grown memory's rows: the paper's budget is a fraction of
 * the prompt, and budgetTokens / promptTokens is that fraction at this step. N_prev counts the
 * head's carried visual rows. Temporal scoring needs visual rows in both this step and the memory.
 * Pinned rows are always kept and count toward the budget (all pins are kept even past it).
 * Positions stay absolute; nextPosition and seq are unchanged.
 * @param options `GUIKVOptions`
 * @throws PolicyConfigError naming a bad or unknown parameter (kernelSize even, or
 *   observationWindow > budgetTokens)
 * @see Huang et al., "GUI-KV: Efficient GUI Agents via KV Cache with Spatio-Temporal Awareness",
 *   arXiv:2510.00536
 */
export function guiKVPolicy(options: GUIKVOptions | unknown = {}): Policy {
  const params = readIntParams('guikv', options, SPEC)
  checkWindowParams('guikv', params)
  return {
    name: 'guikv',
    params,
    budgetTokens: params.budgetTokens,
    observationWindow: params.observationWindow,
    requires: ['attnWindow', 'hiddenNorm'],
    readsKeys: true,
    update(mem: SessionMemory, step: StepInfo): SessionMemory {
      const S = prefixTokensOf(mem, step)
      const window = Math.min(params.observationWindow, S)
      if (mem.tokens <= params.budgetTokens) return mem
      const attn = stepPort('guikv', mem, step, 'attnWindow')
      const norms = stepPort('guikv', mem, step, 'hiddenNorm')
      const scores = mem.layers.map((_, l) =>
        guiKVScores(mem, l, attn[l], norms[l], S, window, params),
      )
      return keepTopScores(mem, scores, params.budgetTokens)
    },
  }
}
