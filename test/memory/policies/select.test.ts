import { describe, expect, it } from 'vitest'
import { NumericError } from '../../../memory/errors.ts'
import { keepMasked, keepRows, keepTopScores } from '../../../memory/policies/select.ts'
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
