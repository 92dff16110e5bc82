import { describe, expect, it } from 'vitest'
import { PolicyConfigError } from '../../../memory/errors.ts'
import { windowPolicy, windowRows } from '../../../memory/policies/window.ts'
import { appendPrefix, emptyMemory } from '../../../memory/session.ts'
import { fixturePosition, kvValue, makeMemory } from '../fixtures.ts'

describe('window policy (StreamingLLM)', () => {
  it('keeps sinks and the recent window: 10 tokens, sinks 2, recent 3 → rows [0, 1, 7, 8, 9]', () => {
    // Worked by hand: budget 5 < 10 tokens; sinks are rows 0, 1; the last 3 are rows 7, 8, 9.
    const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 10 })
    const kept = windowPolicy({ sinkTokens: 2, recentTokens: 3 }).update(mem, {
      seq: 3,
      prefixTokens: 2,
    })
    expect(kept.tokens).toBe(5)
    const rows = [0, 1, 7, 8, 9]
    for (const layer of kept.layers) {
      // positions unchanged: 10 + 2t for the kept rows, for each of the 2 heads
      expect([...layer.positions]).toEqual([...rows, ...rows].map(fixturePosition))
    }
    expect(kept.layers[1].keys[(1 * 5 + 2) * 4 + 3]).toBe(kvValue(1, 1, 7, 3)) // head 1, kept row 2 = token 7
    expect([kept.nextPosition, kept.seq]).toEqual([mem.nextPosition, mem.seq])
  })

  it('evicts nothing at or under the budget', () => {
    const mem = makeMemory({ tokens: 5 })
    expect(
      windowPolicy({ sinkTokens: 2, recentTokens: 3 }).update(mem, { seq: 2, prefixTokens: 1 }),
    ).toBe(mem)
    expect([...windowRows(4, 2, 3)]).toEqual([0, 1, 2, 3])
    expect([...windowRows(6, 0, 3)]).toEqual([3, 4, 5])
  })

  it('streams: one token per step at positions 0…19 leaves positions [0, 1, 17, 18, 19]', () => {
    const policy = windowPolicy({ sinkTokens: 2, recentTokens: 3 })
    let mem = emptyMemory({ model: { id: 'm', sha256: 's' }, layers: 1, kvHeads: 1, headDim: 1 })
    for (let step = 1; step <= 20; step++) {
      const rows = mem.tokens + 1
      const key = new Float32Array(rows)
      key.set(mem.layers[0].keys)
      key[rows - 1] = step // the token's key is its step number
      const present = [{ key, value: key.slice() }]
      const positions = Int32Array.of(step - 1)
      mem = appendPrefix(mem, present, { seq: step, positions, kinds: Uint8Array.of(0) })
      mem = policy.update(mem, { seq: step, prefixTokens: 1 })
      expect(mem.tokens).toBe(Math.min(step, 5))
    }
    expect([...mem.layers[0].positions]).toEqual([0, 1, 17, 18, 19])
    expect([...mem.layers[0].keys]).toEqual([1, 2, 18, 19, 20])
    expect([...mem.layers[0].frames]).toEqual([1, 2, 18, 19, 20])
    expect(mem.nextPosition).toBe(20)
  })

  it('has the paper defaults and refuses bad parameters', () => {
    expect(windowPolicy().params).toEqual({ sinkTokens: 4, recentTokens: 252 })
    expect(windowPolicy({ recentTokens: 60 }).params).toEqual({ sinkTokens: 4, recentTokens: 60 })
    for (const params of [
      { sinkTokens: -1 },
      { sinkTokens: 1.5 },
      { recentTokens: 0 },
      { sinkTokens: '4' },
    ]) {
      expect(() => windowPolicy(params)).toThrow(PolicyConfigError)
    }
    expect(() => windowPolicy({ recentTokens: 0 })).toThrow(
      "parameter 'recentTokens' must be an integer in 1…",
    )
    expect(() => windowPolicy({ sinks: 4 })).toThrow(
      "window policy has no parameter 'sinks' (known: sinkTokens, recentTokens)",
    )
  })
})
