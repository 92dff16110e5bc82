/**
 * TempoFit bank policy: FIFO over frames and the Frame-Gap Temporal Bias, against values worked by
 * hand.
 */
import { describe, expect, it } from 'vitest'
import { PolicyConfigError } from '../../../memory/errors.ts'
import { alibiSlopes, tempoBias, tempofitPolicy } from '../../../memory/policies/tempofit.ts'
import { emptyMemory } from '../../../memory/session.ts'
import type { SessionMemory } from '../../../memory/types.ts'

const kvHeads = 2
const headDim = 2
const bank0 = (): SessionMemory => ({
  ...emptyMemory({ model: { id: 'm', sha256: 'a'.repeat(64) }, layers: 2, kvHeads, headDim }),
  layerIds: [1, 2],
})

/** A step's pre-RoPE prefix K/V whose every element encodes (layer, step, head, token). */
function prefixOf(seq: number, S: number) {
  return [0, 1].map((l) => {
    const key = new Float32Array(kvHeads * S * headDim)
    for (let h = 0; h < kvHeads; h++)
      for (let i = 0; i < S; i++)
        for (let d = 0; d < headDim; d++) key[(h * S + i) * headDim + d] = 1000 * l + 100 * seq + 10 * h + i + d / 10
    return { key, value: key.map((x) => -x) }
  })
}

describe('tempofit bank', () => {
  it('ALiBi slopes m_h = 2^(−8(h+1)/H)', () => {
    expect([...alibiSlopes(2)]).toEqual([1 / 16, 1 / 256])
    expect([...alibiSlopes(4)]).toEqual([1 / 4, 1 / 16, 1 / 64, 1 / 256])
  })

  it('keeps the last N frames in FIFO order with their K/V rows', () => {
    const policy = tempofitPolicy({ frames: 2 })
    let bank = bank0()
    const sizes = [3, 2, 4]
    sizes.forEach((S, i) => {
      bank = policy.update(bank, { seq: i + 1, prefixTokens: S, tempoPrefix: prefixOf(i + 1, S) })
    })
    // Frames 2 (2 tokens) and 3 (4 tokens) remain; frame 1 was dropped.
    expect(bank.tokens).toBe(6)
    expect([...bank.layers[0].frames.subarray(0, 6)]).toEqual([2, 2, 3, 3, 3, 3])
    expect([...bank.layers[0].positions.subarray(0, 6)]).toEqual([3, 4, 5, 6, 7, 8])
    expect(bank.nextPosition).toBe(9)
    expect(bank.layerIds).toEqual([1, 2])
    // Head 1, third kept row = step 3, token 0, layer 1: 1000 + 300 + 10 + 0 (+ d/10).
    const row = (1 * 6 + 2) * headDim
    expect([...bank.layers[1].keys.subarray(row, row + 2)].map((x) => +x.toFixed(3))).toEqual([1310, 1310.1])
    expect(bank.layers[1].values[row]).toBeCloseTo(-1310, 3)
  })

  it('computes the Frame-Gap Temporal Bias −β·m_h·|t − τ|·α', () => {
    const policy = tempofitPolicy({ frames: 8 })
    let bank = bank0()
    ;[2, 1, 1].forEach((S, i) => {
      bank = policy.update(bank, { seq: i + 1, prefixTokens: S, tempoPrefix: prefixOf(i + 1, S) })
    })
    // Frames [1, 1, 2, 3] seen from step 4: gaps [3, 3, 2, 1]. β auto = 1/m₀ = 16:
    // head 0 pays one logit per frame, head 1 (m = 1/256) a sixteenth.
    expect([...tempoBias(bank, 4)]).toEqual([-3, -3, -2, -1, -0.1875, -0.1875, -0.125, -0.0625])
    expect([...tempoBias(bank, 4, { beta: 4, tokenScale: 0.5 })]).toEqual([-0.375, -0.375, -0.25, -0.125, -3 / 128, -3 / 128, -2 / 128, -1 / 128])
    expect(tempoBias(bank0(), 1).length).toBe(0)
  })

  it('validates parameters once at construction', () => {
    expect(() => tempofitPolicy({ frames: 0 })).toThrow(PolicyConfigError)
    expect(() => tempofitPolicy({ frames: 2.5 })).toThrow(/'frames' must be a positive integer/)
    expect(() => tempofitPolicy({ beta: -1 })).toThrow(/'beta'/)
    expect(() => tempofitPolicy({ window: 3 })).toThrow(/no parameter 'window'/)
    expect(tempofitPolicy({}).params).toEqual({ frames: 8, beta: 'auto', tokenScale: 1 })
  })
})
