/**
 * @module The `window` policy: StreamingLLM's attention sinks plus a recent window.
 * Keys are post-RoPE and keep their absolute positions (no re-rotation, unlike the reference,
 * which caches pre-RoPE keys and re-rotates them inside the window).
 */
import type { Policy } from '../types.ts'
import { MAX_TOKENS, readIntParams } from './params.ts'
import { maxPinnedRows } from './pins.ts'
import { keepRows, keepTopScores } from './select.ts'

/**
 * StreamingLLM parameters.
 * - `sinkTokens`: number, default=4 — the first tokens of the memory, always kept (≥ 0).
 * - `recentTokens`: number, default=252 — the newest tokens kept (≥ 1).
 * The budget in tokens is `sinkTokens + recentTokens`.
 */
export interface WindowOptions {
  sinkTokens?: number
  recentTokens?: number
}

const SPEC = {
  sinkTokens: { default: 4, min: 0, max: MAX_TOKENS },
  recentTokens: { default: 252, min: 1, max: MAX_TOKENS },
}

/**
 * Rows kept out of `tokens`: `[0, sinkTokens)` then `[tokens − recentTokens, tokens)`; all rows
 * when `tokens ≤ sinkTokens + recentTokens`.
 * @returns Int32Array `[min(tokens, sinkTokens + recentTokens)]`, ascending
 */
export function windowRows(tokens: number, sinkTokens: number, recentTokens: number): Int32Array {
  const kept = Math.min(tokens, sinkTokens + recentTokens)
  const rows = new Int32Array(kept)
  for (let j = 0; j < kept; j++) rows[j] = j < sinkTokens ? j : tokens - kept + j
  return rows
}

/**
 * Keep the first `sinkTokens` and the last `recentTokens` tokens of the carried memory (memory
 * order = append order, oldest first); evict the middle once the memory exceeds the budget.
 * Pinned rows are kept too and count toward the budget `sinkTokens + recentTokens`: each pin
 * outside the sinks and the recent window evicts one more row of the middle, i.e. the recent
 * window's oldest row (kept = pins ∪ sinks ∪ the newest rows that fit). Pins alone over the
 * budget are all kept (see `keepTopScores`).
 * Positions stay absolute; nextPosition and seq are unchanged.
 * @param options `{ sinkTokens = 4, recentTokens = 252 }`, integers
 * @throws PolicyConfigError naming a bad or unknown parameter
 * @see Xiao et al., "Efficient Streaming Language Models with Attention Sinks", arXiv:2309.17453
 */
export function windowPolicy(options: WindowOptions | unknown = {}): Policy {
  const { sinkTokens, recentTokens } = readIntParams('window', options, SPEC)
  return {
    name: 'window',
    params: { sinkTokens, recentTokens },
    budgetTokens: sinkTokens + recentTokens,
    update(mem) {
      const budget = sinkTokens + recentTokens
      if (mem.tokens <= budget) return mem
      if (maxPinnedRows(mem) === 0)
        return keepRows(mem, windowRows(mem.tokens, sinkTokens, recentTokens))
      const scores = recencyScores(mem, sinkTokens)
      return keepTopScores(
        mem,
        mem.layers.map(() => scores),
        budget,
      )
    },
  }
}

/** Window scores: sinks +Infinity, every other row its index (newer = higher). `[kvHeads, tokens]` */
function recencyScores(mem: { kvHeads: number; tokens: number }, sinkTokens: number): Float32Array {
  const { kvHeads, tokens } = mem
  const scores = new Float32Array(kvHeads * tokens)
  for (let h = 0; h < kvHeads; h++) {
    for (let t = 0; t < tokens; t++) scores[h * tokens + t] = t < sinkTokens ? Infinity : t
  }
  return scores
}
