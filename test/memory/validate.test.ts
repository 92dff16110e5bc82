import { describe, expect, it } from 'vitest'
import { KIND_MASK, PINNED, TokenKind, type SessionMemory } from '../../memory/types.ts'
import { firstNonFiniteNewRows, isTokenKindCode, memoryProblem, shapeProblem } from '../../memory/validate.ts'
import { makeMemory } from './fixtures.ts'

/** A copy of `mem` with layer `l` changed by `edit`. */
function withLayer(
  mem: SessionMemory,
  l: number,
  edit: (layer: SessionMemory['layers'][number]) => void,
): SessionMemory {
  const layers = mem.layers.map((layer) => ({ ...layer }))
  edit(layers[l])
  return { ...mem, layers }
}

describe('kind codes', () => {
  it('accepts a TokenKind with or without PINNED and nothing else', () => {
    const valid = Object.values(TokenKind).flatMap((kind) => [kind, kind | PINNED])
    for (let code = -1; code <= 256; code++) {
      expect(isTokenKindCode(code)).toBe(valid.includes(code))
    }
    expect(isTokenKindCode(1.5)).toBe(false)
    expect(KIND_MASK | PINNED).toBe(0xff)
  })

  it('lets memoryProblem accept pinned kinds and name other codes', () => {
    const mem = makeMemory({ tokens: 3 })
    expect(
      memoryProblem(
        withLayer(mem, 1, (l) => (l.kinds = Uint8Array.from([0x81, 0, 2, 0x80, 1, 0x82]))),
      ),
    ).toBe(undefined)
    expect(
      memoryProblem(withLayer(mem, 1, (l) => (l.kinds = Uint8Array.from([0, 0, 0, 0x43, 0, 0])))),
    ).toBe('layer 1 head 1 row 0: unknown token kind 67')
  })
})

describe('scores and layerIds invariants', () => {
  const mem = makeMemory({ layers: 2, kvHeads: 2, tokens: 3, scores: true })

  it('accepts scores in every layer or in none', () => {
    expect(memoryProblem(mem)).toBe(undefined)
    expect(memoryProblem(makeMemory())).toBe(undefined)
    expect(shapeProblem(withLayer(mem, 1, (l) => delete l.scores))).toBe(
      'layer 1 lacks scores: every layer has them or none does',
    )
    const one = makeMemory({ tokens: 3 })
    expect(shapeProblem(withLayer(one, 0, (l) => (l.scores = new Float32Array(6))))).toBe(
      'layer 1 lacks scores: every layer has them or none does',
    )
    expect(shapeProblem(withLayer(one, 1, (l) => (l.scores = new Float32Array(6))))).toBe(
      'layer 1 has scores: every layer has them or none does',
    )
  })

  it('checks the scores length, type and finiteness', () => {
    expect(shapeProblem(withLayer(mem, 1, (l) => (l.scores = new Float32Array(5))))).toBe(
      'layer 1 scores has 5 elements, expected 6',
    )
    expect(shapeProblem(withLayer(mem, 0, (l) => (l.scores = new Float64Array(6) as never)))).toBe(
      'layer 0 scores must be a Float32Array',
    )
    for (const bad of [NaN, Infinity, -Infinity]) {
      const scores = new Float32Array(6)
      scores[4] = bad
      expect(memoryProblem(withLayer(mem, 1, (l) => (l.scores = scores)))).toBe(
        `layer 1 scores[4] is ${bad}`,
      )
    }
  })

  it('checks layerIds: one per stored layer, integers ≥ 0, strictly increasing', () => {
    expect(memoryProblem(makeMemory({ layerIds: [1, 2] }))).toBe(undefined)
    expect(shapeProblem({ ...mem, layerIds: [1] })).toBe(
      'layerIds has 1 entries, memory has 2 layers',
    )
    for (const layerIds of [
      [2, 1],
      [1, 1],
      [-1, 0],
      [0, 1.5],
    ]) {
      expect(shapeProblem({ ...mem, layerIds })).toMatch(/layerIds must be integers ≥ 0/)
    }
    expect(shapeProblem({ ...mem, layerIds: 'all' as never })).toBe(
      'layerIds must be an array of layer indices',
    )
  })
})

describe('firstNonFiniteNewRows', () => {
  // [heads 3, P 4 + S 2, headDim 5]: every index, NaN or −Inf placed alone, against a plain scan
  // that knows which rows are new.
  const [H, P, S, D] = [3, 4, 2, 5]
  it('finds a bad value only in the S new rows of a head, at its index into the whole tensor', () => {
    for (let i = 0; i < H * (P + S) * D; i++)
      for (const bad of [NaN, -Infinity]) {
        const kv = Float32Array.from({ length: H * (P + S) * D }, (_, j) => j / 7)
        kv[i] = bad
        const row = Math.floor(i / D) % (P + S)
        expect(firstNonFiniteNewRows(kv, H, P, S, D)).toBe(row >= P ? i : -1)
      }
  })
  it('returns the first bad index over heads in order', () => {
    const kv = new Float32Array(H * (P + S) * D)
    kv[(2 * (P + S) + P) * D] = Infinity
    kv[(1 * (P + S) + P + 1) * D + 4] = NaN
    expect(firstNonFiniteNewRows(kv, H, P, S, D)).toBe((1 * (P + S) + P + 1) * D + 4)
  })
})
