import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { NumericError } from '../../../memory/errors.ts'
import {
  keepMasked,
  keepRows,
  keepTopScores,
  topScoreRows,
} from '../../../memory/policies/select.ts'
import { keptTokens } from '../../../memory/policies/pins.ts'
import { PINNED } from '../../../memory/types.ts'
import { fixturePosition, makeMemory } from '../fixtures.ts'

const positionsOf = (rows: number[]) => rows.map(fixturePosition)

describe('shared selection', () => {
  const mem = makeMemory({ layers: 1, kvHeads: 2, headDim: 2, tokens: 5 })

  it('keepRows keeps the same rows in every head', () => {
    expect([...keepRows(mem, Int32Array.of(1, 4)).layers[0].positions]).toEqual(
      positionsOf([1, 4, 1, 4]),
    )
  })

  it('keepMasked keeps masked rows per head and needs equal counts', () => {
    const mask = Uint8Array.of(1, 0, 1, 0, 0, /* head 1 */ 0, 0, 0, 1, 1)
    expect([...keepMasked(mem, [mask]).layers[0].positions]).toEqual(positionsOf([0, 2, 3, 4]))
    expect(() => keepMasked(mem, [Uint8Array.of(1, 1, 1, 0, 0, 0, 0, 0, 1, 1)])).toThrow(
      /head 1 keeps 2 rows, others 3/,
    )
  })

  it('keepTopScores keeps the top budget per head in memory order, newer row winning ties', () => {
    // head 0 scores 5, 1, 4, 1, 3 → top 3 = rows 0 (5), 2 (4), 4 (3)
    // head 1 scores 2, 2, 2, 0, 2 → four tied at 2: the newest three = rows 1, 2, 4
    const scores = Float32Array.of(5, 1, 4, 1, 3, 2, 2, 2, 0, 2)
    const kept = keepTopScores(mem, [scores], 3)
    expect([...kept.layers[0].positions]).toEqual(positionsOf([0, 2, 4, 1, 2, 4]))
    expect(keepTopScores(mem, [scores], 5)).toBe(mem)
    const nan = scores.slice()
    nan[7] = NaN
    expect(() => keepTopScores(mem, [nan], 3)).toThrow(NumericError)
  })
})

describe('topScoreRows against a sort by the documented order', () => {
  // Reference: per head sort rows by (pinned first, higher score, newer row), take keptTokens,
  // return them ascending. Scores from a small set (many ties, ±0, ±∞), some rows pinned.
  const value = fc.constantFrom(0, -0, 1, 2, 2.5, -3, Infinity, -Infinity, 1e-30)
  it('property: the same rows, every budget', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 32 }),
        fc.array(fc.tuple(value, fc.nat(9)), { minLength: 90, maxLength: 90 }),
        (kvHeads, tokens, budget, drawn) => {
          const mem = makeMemory({ layers: 1, kvHeads, headDim: 1, tokens })
          const cells = drawn.slice(0, kvHeads * tokens)
          const score = Float32Array.from(cells, ([x]) => x)
          mem.layers[0].kinds = Uint8Array.from(
            cells,
            ([, roll], i) => (roll === 0 ? PINNED : 0) | i % 3,
          )
          const kept = keptTokens(mem, budget)
          const rows = topScoreRows(mem, [score], budget)
          if (kept >= tokens) {
            expect(rows).toBeUndefined()
            return
          }
          for (let h = 0; h < kvHeads; h++) {
            const at = (t: number) => score[h * tokens + t]
            const pinned = (t: number) => (mem.layers[0].kinds[h * tokens + t] & PINNED ? 1 : 0)
            const order = Array.from({ length: tokens }, (_, t) => t).sort(
              (a, b) =>
                pinned(b) - pinned(a) || (at(b) === at(a) ? 0 : at(b) > at(a) ? 1 : -1) || b - a,
            )
            const expected = order.slice(0, kept).sort((a, b) => a - b)
            expect([...rows![0].subarray(h * kept, (h + 1) * kept)]).toEqual(expected)
          }
        },
      ),
      { numRuns: 2000 },
    )
  })
})
