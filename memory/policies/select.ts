/**
 * @module Shared selection: turn per-layer, per-head choices (a row list, keep masks, or scores
 * with a budget) into `gatherTokens`. Scorer policies (SnapKV, H2O, …) only write a score.
 * Kept rows stay in memory order (append order, oldest first) and keep their absolute positions.
 * `keepTopScores` keeps pinned rows (pins.ts) first; `keepRows`/`keepMasked` keep exactly the
 * rows they are given.
 */
import { NumericError } from '../errors.ts'
import { gatherTokens } from '../gather.ts'
import { PINNED, type SessionMemory } from '../types.ts'
import { keptTokens } from './pins.ts'

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
 * Pinned rows (kind with the `PINNED` bit) are always kept and count toward the budget: they take
 * their slots first, then the rows by score (so with pins + protected rows over the budget, the
 * newest protected rows win). If the pins of some head alone exceed the budget, every head keeps
 * `keptTokens(mem, budgetTokens)` > budgetTokens rows (all pins, the rest by score).
 * @param scores per layer Float32Array `[kvHeads, tokens]`, high = keep
 * @param budgetTokens rows to keep per head (≥ 0)
 * @returns the gathered memory of `keptTokens(mem, budgetTokens)` tokens (`mem` itself when
 *   nothing is evicted)
 * @throws NumericError if a score is NaN; RangeError on a length mismatch
 * @see kvpress `ScorerPress` (top-k over `score()`), SnapKV arXiv:2404.14469, H2O arXiv:2306.14048
 */
export function keepTopScores(
  mem: SessionMemory,
  scores: readonly Float32Array[],
  budgetTokens: number,
): SessionMemory {
  const rows = topScoreRows(mem, scores, budgetTokens)
  return rows ? gatherTokens(mem, rows) : mem
}

/**
 * The rows `keepTopScores` keeps, without gathering them.
 * @returns per layer Int32Array `[kvHeads, keptTokens]`, ascending per head; undefined when
 *   nothing is evicted
 * @throws as `keepTopScores`
 */
export function topScoreRows(
  mem: SessionMemory,
  scores: readonly Float32Array[],
  budgetTokens: number,
): Int32Array[] | undefined {
  const { kvHeads, tokens } = mem
  const kept = keptTokens(mem, budgetTokens)
  if (kept >= tokens) return undefined
  const free = new Float64Array(tokens) // scores of the head's unpinned rows
  return scores.map((score, l) => {
    if (score.length !== kvHeads * tokens) {
      throw new RangeError(
        `scores ${l} has ${score.length} entries, expected [${kvHeads}, ${tokens}]`,
      )
    }
    const kinds = mem.layers[l].kinds
    const rows = new Int32Array(kvHeads * kept)
    for (let h = 0; h < kvHeads; h++) {
      const head = score.subarray(h * tokens, (h + 1) * tokens)
      const pins = kinds.subarray(h * tokens, (h + 1) * tokens)
      const nan = head.findIndex(Number.isNaN)
      if (nan >= 0) throw new NumericError(`score of layer ${l} head ${h} row ${nan} is NaN`)
      // Pinned rows first (kept ≥ every head's pins), then the `wanted` best unpinned rows by
      // score, the newer of equal scores first: all above the threshold score and the newest
      // of those at it. (±0 compare equal; +∞ ties with +∞.)
      let unpinned = 0
      for (let t = 0; t < tokens; t++) if (!(pins[t] & PINNED)) free[unpinned++] = head[t] + 0
      const wanted = kept - (tokens - unpinned)
      const threshold = wanted > 0 ? free.subarray(0, unpinned).sort()[unpinned - wanted] : Infinity
      let above = 0
      for (let t = 0; t < tokens; t++) if (!(pins[t] & PINNED) && head[t] > threshold) above++
      let atThreshold = wanted - above // the newest rows scoring exactly `threshold`
      let from = tokens
      for (let t = tokens - 1; t >= 0 && atThreshold > 0; t--) {
        if (!(pins[t] & PINNED) && head[t] === threshold) (atThreshold--, (from = t))
      }
      let at = h * kept
      for (let t = 0; t < tokens; t++) {
        if (pins[t] & PINNED || head[t] > threshold || (head[t] === threshold && t >= from))
          rows[at++] = t
      }
    }
    return rows
  })
}
