/**
 * Pinned tokens in the shared selector and the window policy, worked by hand.
 */
import { describe, expect, it } from 'vitest'
import { keptTokens, maxPinnedRows } from '../../../memory/policies/pins.ts'
import { keepTopScores } from '../../../memory/policies/select.ts'
import { windowPolicy } from '../../../memory/policies/window.ts'
import { PINNED, type SessionMemory } from '../../../memory/types.ts'
import { fixturePosition, makeMemory } from '../fixtures.ts'

/** `makeMemory` with the given rows of each head pinned (`[head][rows]`), in every layer. */
function pinned(mem: SessionMemory, rows: number[][]): SessionMemory {
  const layers = mem.layers.map((layer) => {
    const kinds = layer.kinds.slice()
    rows.forEach((head, h) => head.forEach((t) => (kinds[h * mem.tokens + t] |= PINNED)))
    return { ...layer, kinds }
  })
  return { ...mem, layers }
}

const rowsOf = (mem: SessionMemory, l = 0) =>
  Array.from({ length: mem.kvHeads }, (_, h) =>
    [...mem.layers[l].positions.subarray(h * mem.tokens, (h + 1) * mem.tokens)].map(
      (p) => (p - 10) / 2,
    ),
  )

describe('pinned tokens', () => {
  const mem = makeMemory({ layers: 1, kvHeads: 2, headDim: 2, tokens: 6 })
  // head 0 scores 5, 1, 4, 1, 3, 0; head 1 scores 0, 1, 2, 3, 4, 5
  const scores = Float32Array.of(5, 1, 4, 1, 3, 0, 0, 1, 2, 3, 4, 5)

  it('keepTopScores keeps pins first, counting them toward the budget', () => {
    // budget 3, row 5 pinned in head 0 and row 0 in head 1:
    // head 0: 5 (pin) + top 2 of the rest: 0 (5), 2 (4); head 1: 0 (pin) + 5, 4
    const kept = keepTopScores(pinned(mem, [[5], [0]]), [scores], 3)
    expect(rowsOf(kept)).toEqual([
      [0, 2, 5],
      [0, 4, 5],
    ])
    // kinds keep their PINNED bit through the gather
    expect(kept.layers[0].kinds[2]).toBe((5 % 3) | PINNED)
  })

  it('keeps every pin when pins alone exceed the budget, the same count in every head', () => {
    // budget 2; head 0 pins 1, 3, 5 (3 pins) → every head keeps 3 rows; head 1 pins row 2
    // only and fills the rest by score: 5, 4
    const mem2 = pinned(mem, [[1, 3, 5], [2]])
    expect(maxPinnedRows(mem2)).toBe(3)
    expect(keptTokens(mem2, 2)).toBe(3)
    expect(keptTokens(mem2, 8)).toBe(6)
    const kept = keepTopScores(mem2, [scores], 2)
    expect(kept.tokens).toBe(3)
    expect(rowsOf(kept)).toEqual([
      [1, 3, 5],
      [2, 4, 5],
    ])
  })

  it('without pins, keepTopScores is unchanged (protected rows: the newest win)', () => {
    const protectedScores = Float32Array.of(Infinity, 0, Infinity, 0, Infinity, 0, 1, 1, 1, 1, 1, 1)
    expect(rowsOf(keepTopScores(mem, [protectedScores], 2))).toEqual([
      [2, 4],
      [4, 5],
    ])
  })

  it('window: a pin outside sinks + recent evicts the oldest recent row', () => {
    // 10 tokens, sinks 2, recent 3 → [0, 1, 7, 8, 9]; pin row 4 → [0, 1, 4, 8, 9]
    const ten = makeMemory({ layers: 2, kvHeads: 2, headDim: 1, tokens: 10 })
    const policy = windowPolicy({ sinkTokens: 2, recentTokens: 3 })
    const kept = policy.update(pinned(ten, [[4], [4]]), { seq: 3, prefixTokens: 1 })
    for (const l of [0, 1])
      expect(rowsOf(kept, l)).toEqual([
        [0, 1, 4, 8, 9],
        [0, 1, 4, 8, 9],
      ])
    // a pin inside the window changes nothing
    const inside = policy.update(pinned(ten, [[8], [1]]), { seq: 3, prefixTokens: 1 })
    expect(rowsOf(inside)).toEqual([
      [0, 1, 7, 8, 9],
      [0, 1, 7, 8, 9],
    ])
    // pins over the budget: all 6 kept, sinks and window evicted
    const many = pinned(ten, [
      [2, 3, 4, 5, 6, 7],
      [2, 3, 4, 5, 6, 7],
    ])
    expect(rowsOf(policy.update(many, { seq: 3, prefixTokens: 1 }))[0]).toEqual([2, 3, 4, 5, 6, 7])
    expect(kept.layers[0].positions[2]).toBe(fixturePosition(4))
  })
})
