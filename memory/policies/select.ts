/**
 * @module Shared selection: turn per-layer, per-head choices (a row list, keep masks, or scores
 * with a budget) into `gatherTokens`. Scorer policies (SnapKV, H2O, …) only write a score.
 * Kept rows stay in memory order (append order, oldest first) and keep their absolute positions.
 */
import { NumericError } from '../errors.ts'
import { gatherTokens } from '../gather.ts'
import type { SessionMemory } from '../types.ts'

/**
 * Keep the same rows in every layer and head.
 * @param rows Int32Array `[budget]`, strictly ascending indices into `[0, tokens)`
 * @returns the gathered memory (`budget` tokens)
 * @throws RangeError as `gatherTokens`
 */
export function keepRows(mem: SessionMemory, rows: Int32Array): SessionMemory {
  const perHead = new Int32Array(mem.kvHeads * rows.length)
  for (let h = 0; h < mem.kvHeads; h++) perHead.set(rows, h * rows.length)
  return gatherTokens(
    mem,
    mem.layers.map(() => perHead),
  )
}

/**
 * Keep the rows whose mask byte is non-zero, per layer and head.
 * @param masks per layer Uint8Array `[kvHeads, tokens]`; every head of every layer must keep the
 *   same number of rows (one `attention_mask` serves all layers)
 * @throws RangeError if a mask has the wrong length or the kept counts differ
 */
export function keepMasked(mem: SessionMemory, masks: readonly Uint8Array[]): SessionMemory {
  const { kvHeads, tokens } = mem
  let budget = -1
  const keep = masks.map((mask, l) => {
    if (mask.length !== kvHeads * tokens) {
      throw new RangeError(`mask ${l} has ${mask.length} entries, expected [${kvHeads}, ${tokens}]`)
    }
    const rows: number[] = []
    for (let h = 0; h < kvHeads; h++) {
      let kept = 0
      for (let t = 0; t < tokens; t++) if (mask[h * tokens + t]) (rows.push(t), kept++)
      if (budget < 0) budget = kept
      if (kept !== budget)
        throw new RangeError(`mask ${l} head ${h} keeps ${kept} rows, others ${budget}`)
    }
    return Int32Array.from(rows)
  })
  return gatherTokens(mem, keep)
}

/**
 * Per layer and head, keep the `budgetTokens` rows with the highest score (ties: the newer row
 * wins), in memory order. Nothing is evicted when the memory has ≤ budgetTokens tokens.
 * To protect rows (sinks, the observation window), give them `+Infinity`.
 * @param scores per layer Float32Array `[kvHeads, tokens]`, high = keep
 * @param budgetTokens rows to keep per head (≥ 0)
 * @throws NumericError if a score is NaN; RangeError on a length mismatch
 * @see kvpress `ScorerPress` (top-k over `score()`), SnapKV arXiv:2404.14469, H2O arXiv:2306.14048
 */
export function keepTopScores(
  mem: SessionMemory,
  scores: readonly Float32Array[],
  budgetTokens: number,
): SessionMemory {
  const { kvHeads, tokens } = mem
  if (tokens <= budgetTokens) return mem
  const order = new Int32Array(tokens)
  const keep = scores.map((score, l) => {
    if (score.length !== kvHeads * tokens) {
      throw new RangeError(
        `scores ${l} has ${score.length} entries, expected [${kvHeads}, ${tokens}]`,
      )
    }
    const rows = new Int32Array(kvHeads * budgetTokens)
    for (let h = 0; h < kvHeads; h++) {
      const head = score.subarray(h * tokens, (h + 1) * tokens)
      const nan = head.findIndex(Number.isNaN)
      if (nan >= 0) throw new NumericError(`score of layer ${l} head ${h} row ${nan} is NaN`)
      for (let t = 0; t < tokens; t++) order[t] = t
      order.sort((a, b) => head[b] - head[a] || b - a)
      const top = order.subarray(0, budgetTokens).slice().sort()
      rows.set(top, h * budgetTokens)
    }
    return rows
  })
  return gatherTokens(mem, keep)
}
