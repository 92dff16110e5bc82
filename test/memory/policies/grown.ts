/**
 * @module A "grown" memory (P carried rows + S new rows per head, as `appendPrefix` leaves it) built
 * from plain arrays, for policy tests: positions 10 + row, carried rows from frame 1, new rows
 * from frame 2.
 */
import type { SessionMemory } from '../../../memory/types.ts'

/** What `grownMemory` builds. Rows are shared by heads unless `keys` differ per head. */
export interface GrownSpec {
  /** `[head][row][dim]` keys; values are the keys negated. */
  keys: number[][][]
  /** kind code per row (shared by heads), `[tokens]`. */
  kinds: number[]
  /** S, the new rows at the end. */
  prefixTokens: number
  layers?: number
}

/** Build the grown memory of `spec` (every layer identical). */
export function grownMemory({ keys, kinds, prefixTokens, layers = 1 }: GrownSpec): SessionMemory {
  const kvHeads = keys.length
  const tokens = kinds.length
  const headDim = keys[0][0].length
  const layer = () => {
    const flat = new Float32Array(keys.flat(2))
    return {
      keys: flat,
      values: flat.map((x) => -x),
      positions: Int32Array.from({ length: kvHeads * tokens }, (_, i) => 10 + (i % tokens)),
      frames: Int32Array.from({ length: kvHeads * tokens }, (_, i) =>
        i % tokens < tokens - prefixTokens ? 1 : 2,
      ),
      kinds: Uint8Array.from({ length: kvHeads * tokens }, (_, i) => kinds[i % tokens]),
    }
  }
  return {
    model: { id: 'tiny-test', sha256: 'a'.repeat(64) },
    layers: Array.from({ length: layers }, layer),
    kvHeads,
    headDim,
    tokens,
    nextPosition: 10 + tokens,
    seq: 2,
  }
}

/** Kept rows of one layer and head, read back from positions (position = 10 + row). */
export function keptRows(mem: SessionMemory, layer = 0, head = 0): number[] {
  const { positions } = mem.layers[layer]
  return [...positions.subarray(head * mem.tokens, (head + 1) * mem.tokens)].map((p) => p - 10)
}

/** Reference selection in plain numbers: per head, the `budget` best rows (score desc, newer row
 * first on ties), ascending. `scores` `[head][row]`, protected rows given `Infinity`. */
export function referenceTop(scores: number[][], budget: number): number[][] {
  return scores.map((row) =>
    row
      .map((score, t) => ({ score, t }))
      .sort((a, b) => (b.score === a.score ? b.t - a.t : b.score - a.score))
      .slice(0, budget)
      .map(({ t }) => t)
      .sort((a, b) => a - b),
  )
}
