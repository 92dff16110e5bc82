/**
 * @module The `h2o` policy: Heavy-Hitter Oracle. Per head, a running score of the attention each
 * carried key has received, kept in `LayerMemory.scores` across steps; keep the heavy hitters and
 * the recent tokens. A forgetting factor < 1 turns it into A2SF's decayed accumulation.
 */
import { PolicyConfigError } from '../errors.ts'
import type { LayerMemory, Policy, SessionMemory, StepInfo } from '../types.ts'
import { MAX_TOKENS, readIntParams } from './params.ts'
import { keepTopScores } from './select.ts'
import { prefixTokensOf, stepPort } from './step-ports.ts'

/**
 * H2O / A2SF parameters.
 * - `budgetTokens` : integer, default=256 — rows kept per head in every layer (tokens).
 * - `recentTokens` : integer, default=⌊budgetTokens / 2⌋ — the newest rows, always kept; the rest
 *   of the budget goes to heavy hitters (the paper's 10 % heavy + 10 % recent is an even split).
 *   0 … budgetTokens.
 * - `forgetting` : number, default=1 — decay applied to the carried score once per step, in
 *   0 … 1; 1 is plain H2O, < 1 is A2SF.
 */
export interface H2OOptions {
  budgetTokens?: number
  recentTokens?: number
  forgetting?: number
}

const SPEC = {
  budgetTokens: { default: 256, min: 1, max: MAX_TOKENS },
  recentTokens: { default: 0, min: 0, max: MAX_TOKENS }, // placeholder: default is budget-relative
  forgetting: { default: 1, min: 0, max: 1, real: true },
}

/**
 * One step of the running score of one layer: per head, carried row t gets
 * `forgetting · previous[t] + attnTotal[t]`, a new row (the last S) starts at 0 and gets
 * `attnTotal[t]`. After n steps a key's score is `Σ_steps forgetting^(n − step) · A_step(key)`,
 * A2SF's `Σ_q α^{n−q} S_{q,k}` with α applied per step: `attn_total` sums a step's queries, so
 * within a step every query weighs 1.
 * @param layer the grown layer; `scores` Float32Array `[kvHeads, tokens]` (its last S rows per
 *   head are ignored) or absent (all 0: a first step, or a memory from another policy)
 * @param attnTotal Float32Array `[kvHeads, tokens]`, attention mass from all of the step's queries
 * @returns Float32Array `[kvHeads, tokens]`
 * @throws RangeError if `layer.scores` has the wrong length
 * @see A2SF, arXiv:2407.20485; H2O, arXiv:2306.14048
 */
export function accumulateScores(
  layer: LayerMemory,
  attnTotal: Float32Array,
  kvHeads: number,
  tokens: number,
  prefixTokens: number,
  forgetting: number,
): Float32Array {
  const previous = layer.scores
  if (previous && previous.length !== kvHeads * tokens) {
    throw new RangeError(`scores has ${previous.length} entries, expected [${kvHeads}, ${tokens}]`)
  }
  const carried = tokens - prefixTokens
  const out = new Float32Array(kvHeads * tokens)
  for (let h = 0; h < kvHeads; h++) {
    for (let t = h * tokens; t < (h + 1) * tokens; t++) {
      const old = previous && t - h * tokens < carried ? previous[t] : 0
      out[t] = forgetting * old + attnTotal[t]
    }
  }
  return out
}

/**
 * H2O over the carried memory: after each step, per layer and head keep the last `recentTokens`
 * rows and the `budgetTokens − recentTokens` other rows with the highest running score. Pinned
 * rows are always kept and count toward the budget (all pins are kept even past it; see
 * `keepTopScores`). The running score is stored in `LayerMemory.scores` and gathered with the kept
 * rows. Positions stay absolute; nextPosition and seq are unchanged.
 * @param options `H2OOptions`
 * @throws PolicyConfigError naming a bad or unknown parameter (`recentTokens` > `budgetTokens`)
 * @see Zhang et al., "H2O: Heavy-Hitter Oracle", arXiv:2306.14048; A2SF, arXiv:2407.20485
 */
export function h2oPolicy(options: H2OOptions | unknown = {}): Policy {
  const read = readIntParams('h2o', options, SPEC)
  const { budgetTokens, forgetting } = read
  const given = (options ?? {}) as H2OOptions
  const recentTokens =
    given.recentTokens === undefined ? Math.floor(budgetTokens / 2) : read.recentTokens
  if (recentTokens > budgetTokens) {
    throw new PolicyConfigError(
      `h2o policy parameter 'recentTokens' (${recentTokens}) must not exceed budgetTokens (${budgetTokens})`,
      { policy: 'h2o', parameter: 'recentTokens', value: recentTokens },
    )
  }
  return {
    name: 'h2o',
    params: { budgetTokens, recentTokens, forgetting },
    budgetTokens,
    requires: ['attnTotal'],
    update(mem: SessionMemory, step: StepInfo): SessionMemory {
      const S = prefixTokensOf(mem, step)
      const { kvHeads, tokens } = mem
      const attn = stepPort('h2o', mem, step, 'attnTotal')
      const layers = mem.layers.map((layer, l) => ({
        ...layer,
        scores: accumulateScores(layer, attn[l], kvHeads, tokens, S, forgetting),
      }))
      const scored = { ...mem, layers }
      if (tokens <= budgetTokens) return scored
      const ranks = layers.map(({ scores }) => {
        const rank = scores.slice()
        for (let h = 0; h < kvHeads; h++) {
          rank.fill(Infinity, (h + 1) * tokens - Math.min(recentTokens, tokens), (h + 1) * tokens)
        }
        return rank
      })
      return keepTopScores(scored, ranks, budgetTokens)
    },
  }
}
