import { describe, expect, it } from 'vitest'
import {
  FeedError,
  ModelMismatchError,
  NumericError,
  SeqConflictError,
} from '../../memory/errors.ts'
import {
  appendPrefix,
  checkMemoryAgainstModel,
  emptyMemory,
  gatherTokens,
  memoryBytes,
  summary,
  type PresentKV,
} from '../../memory/session.ts'
import { PINNED, TokenKind } from '../../memory/types.ts'
import { kvValue, makeMemory, scoreValue } from './fixtures.ts'

const MODEL = { id: 'tiny', sha256: 'b'.repeat(64) }

/** present.{l}.key|value `[kvHeads, rows, headDim]` filled with kvValue(l, h, row, d). */
function present(layers: number, kvHeads: number, rows: number, headDim: number): PresentKV[] {
  return Array.from({ length: layers }, (_, l) => {
    const key = new Float32Array(kvHeads * rows * headDim)
    const value = new Float32Array(kvHeads * rows * headDim)
    for (let h = 0; h < kvHeads; h++)
      for (let t = 0; t < rows; t++)
        for (let d = 0; d < headDim; d++) {
          key[(h * rows + t) * headDim + d] = kvValue(l, h, t, d)
          value[(h * rows + t) * headDim + d] = kvValue(l, h, t, d, true)
        }
    return { key, value }
  })
}

const prefix = (
  seq: number,
  positions: number[],
  kinds: number[] = positions.map(() => TokenKind.text),
) => ({
  seq,
  positions: Int32Array.from(positions),
  kinds: Uint8Array.from(kinds),
})

describe('emptyMemory', () => {
  it('has no tokens, position 0, seq 0 and zero-length arrays', () => {
    const mem = emptyMemory({ model: MODEL, layers: 3, kvHeads: 2, headDim: 8 })
    expect(mem).toMatchObject({
      tokens: 0,
      nextPosition: 0,
      seq: 0,
      kvHeads: 2,
      headDim: 8,
      model: MODEL,
    })
    expect(mem.layers).toHaveLength(3)
    for (const layer of mem.layers)
      for (const array of Object.values(layer)) expect(array.length).toBe(0)
    expect(() => emptyMemory({ model: MODEL, layers: 0, kvHeads: 2, headDim: 8 })).toThrow(/layers/)
  })
})

describe('appendPrefix', () => {
  // Two steps, 2 layers, 2 KV heads, headDim 2: step 1 brings 3 tokens at positions 5, 6, 7
  // (visual, visual, text); step 2 brings 2 at positions 8, 9 (text, proprio).
  const empty = emptyMemory({ model: MODEL, layers: 2, kvHeads: 2, headDim: 2 })
  const first = appendPrefix(empty, present(2, 2, 3, 2), prefix(1, [5, 6, 7], [1, 1, 0]))
  const second = appendPrefix(first, present(2, 2, 5, 2), prefix(2, [8, 9], [0, 2]))

  it('appends rows and per-head metadata, sets seq and nextPosition', () => {
    expect(summary(first)).toEqual({ tokensPerLayer: [3, 3], nextPosition: 8, seq: 1 })
    expect(summary(second)).toEqual({ tokensPerLayer: [5, 5], nextPosition: 10, seq: 2 })
    for (const layer of second.layers) {
      expect([...layer.positions]).toEqual([5, 6, 7, 8, 9, 5, 6, 7, 8, 9])
      expect([...layer.frames]).toEqual([1, 1, 1, 2, 2, 1, 1, 1, 2, 2])
      expect([...layer.kinds]).toEqual([1, 1, 0, 0, 2, 1, 1, 0, 0, 2])
    }
    // layer 1, head 1, token 4, dim 1 sits at ((1 · 5) + 4) · 2 + 1 = 19
    expect(second.layers[1].keys[19]).toBe(10_000 + 1000 + 4 + 1 / 64)
    expect(second.layers[1].values[19]).toBe(-(10_000 + 1000 + 4 + 1 / 64))
  })

  it('copies present and leaves the input memory alone', () => {
    const kv = present(2, 2, 3, 2)
    const mem = appendPrefix(empty, kv, prefix(1, [0, 1, 2]))
    kv[0].key[0] = 99
    expect(mem.layers[0].keys[0]).toBe(0)
    expect(first.tokens).toBe(3)
    expect(empty.tokens).toBe(0)
  })

  it.each([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
  ])('refuses %s in present, naming layer, head and token', (_, bad) => {
    const kv = present(2, 2, 5, 2)
    kv[1].value[(1 * 5 + 3) * 2 + 1] = bad // layer 1, head 1, token 3
    const run = () => appendPrefix(first, kv, prefix(2, [8, 9]))
    expect(run).toThrow(NumericError)
    expect(run).toThrow(`present.1.value is ${bad} at head 1, token 3`)
  })

  it.each([
    ['repeat', [8, 8]],
    ['decrease', [9, 8]],
    ['start before nextPosition', [7, 9]],
  ])('refuses positions that %s', (_, positions) => {
    expect(() => appendPrefix(first, present(2, 2, 5, 2), prefix(2, positions))).toThrow(FeedError)
  })

  it('refuses a seq that does not advance, and unknown kinds', () => {
    expect(() => appendPrefix(first, present(2, 2, 5, 2), prefix(1, [8, 9]))).toThrow(
      SeqConflictError,
    )
    expect(() => appendPrefix(first, present(2, 2, 5, 2), prefix(2, [8, 9], [0, 7]))).toThrow(
      /kinds\[1\] = 7/,
    )
  })

  it('refuses present of the wrong length, naming the layer and both lengths', () => {
    const kv = present(2, 2, 5, 2)
    kv[1].key = new Float32Array(2 * 4 * 2) // P+S = 4 rows instead of 5
    const run = () => appendPrefix(first, kv, prefix(2, [8, 9]))
    expect(run).toThrow(ModelMismatchError)
    expect(run).toThrow(/present\.1\.key has 16 values, expected 20/)
    expect(() => appendPrefix(first, present(3, 2, 5, 2), prefix(2, [8, 9]))).toThrow(
      /3 layers, memory has 2/,
    )
  })

  it('keeps nextPosition when a step brings no tokens', () => {
    const mem = appendPrefix(first, present(2, 2, 3, 2), prefix(2, []))
    expect(summary(mem)).toEqual({ tokensPerLayer: [3, 3], nextPosition: 8, seq: 2 })
  })

  describe('with adopt', () => {
    it('takes the arrays without copying and gives the memory a copy would', () => {
      const kv = present(2, 2, 5, 2)
      const adopted = appendPrefix(first, kv, prefix(2, [8, 9], [0, 2]), { adopt: true })
      expect(adopted).toEqual(second)
      adopted.layers.forEach((layer, l) => {
        expect(layer.keys).toBe(kv[l].key)
        expect(layer.values).toBe(kv[l].value)
      })
    })

    it('refuses NaN/±Inf in the new rows, naming layer, head and token; the carried rows are not scanned', () => {
      const kv = present(2, 2, 5, 2)
      kv[1].key[(1 * 5 + 4) * 2] = -Infinity // layer 1, head 1, token 4: a new row
      const run = () => appendPrefix(first, kv, prefix(2, [8, 9]), { adopt: true })
      expect(run).toThrow(NumericError)
      expect(run).toThrow('present.1.key is -Infinity at head 1, token 4')
      const carried = present(2, 2, 5, 2)
      carried[0].value[(1 * 5 + 2) * 2 + 1] = NaN // head 1, token 2: a carried row
      expect(appendPrefix(first, carried, prefix(2, [8, 9]), { adopt: true }).tokens).toBe(5)
      expect(() => appendPrefix(first, carried, prefix(2, [8, 9]))).toThrow('present.0.value is NaN at head 1, token 2')
    })

    it('refuses arrays that share an ArrayBuffer (keys and values, or layers, would alias)', () => {
      const kv = present(2, 2, 5, 2)
      const shared = new Float32Array(kv[0].key.length * 2)
      kv[0].key = shared.subarray(0, kv[0].key.length)
      kv[0].value = shared.subarray(kv[0].key.length)
      expect(() => appendPrefix(first, kv, prefix(2, [8, 9]), { adopt: true })).toThrow(/ArrayBuffer of its own/)
      const same = present(2, 2, 5, 2)
      same[1].key = same[0].key
      expect(() => appendPrefix(first, same, prefix(2, [8, 9]), { adopt: true })).toThrow(TypeError)
    })
  })
})

describe('gatherTokens', () => {
  // 5 tokens (positions 10, 12, 14, 16, 18); head 0 keeps rows 0, 2, 3 and head 1 keeps 1, 3, 4.
  const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 5 })
  const keep = [Int32Array.from([0, 2, 3, 1, 3, 4]), Int32Array.from([0, 2, 3, 1, 3, 4])]
  const kept = gatherTokens(mem, keep)

  it('gathers rows and metadata per head, keeps nextPosition and seq', () => {
    expect(kept.tokens).toBe(3)
    expect([kept.nextPosition, kept.seq]).toEqual([mem.nextPosition, mem.seq])
    expect([...kept.layers[1].positions]).toEqual([10, 14, 16, 12, 16, 18])
    expect([...kept.layers[1].frames]).toEqual([1, 1, 1, 1, 1, 2])
    expect([...kept.layers[1].kinds]).toEqual([0, 2, 0, 1, 0, 1])
    // layer 1 head 1 kept row 2 is token 4: dims 0…3
    const row = kept.layers[1].keys.subarray((1 * 3 + 2) * 4, (1 * 3 + 3) * 4)
    expect([...row]).toEqual([0, 1, 2, 3].map((d) => kvValue(1, 1, 4, d)))
    expect(kept.layers[0].values[0]).toBe(kvValue(0, 0, 0, 0, true))
  })

  it('refuses bad keep lists', () => {
    expect(() => gatherTokens(mem, [Int32Array.from([2, 0, 1, 3])])).toThrow(
      /keep has 1 layers, memory has 2/,
    )
    expect(() =>
      gatherTokens(mem, [Int32Array.from([2, 0, 1, 3]), Int32Array.from([0, 1, 2, 3])]),
    ).toThrow(/keep\[0\] head 0/)
    expect(() => gatherTokens(mem, [Int32Array.from([0, 5]), Int32Array.from([0, 1])])).toThrow(
      /\[0, 5\)/,
    )
    expect(() =>
      gatherTokens(mem, [Int32Array.from([0, 1]), Int32Array.from([0, 1, 2, 3])]),
    ).toThrow(/keep\[1\]/)
  })
})

describe('memoryBytes, summary and checkMemoryAgainstModel', () => {
  const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 3 })

  it('counts bytes by hand', () => {
    // per layer: K and V 2·3·4 floats · 4 B = 96 B each; positions, frames 6 · 4 B; kinds 6 · 1 B
    expect(memoryBytes(mem)).toBe(2 * (96 + 96 + 24 + 24 + 6))
    expect(summary(mem)).toEqual({ tokensPerLayer: [3, 3], nextPosition: 16, seq: 1 })
  })

  it('refuses another model or another geometry', () => {
    const model = { id: 'tiny-test', sha256: mem.model.sha256, layers: 2, kvHeads: 2, headDim: 4 }
    expect(() => checkMemoryAgainstModel(mem, model)).not.toThrow()
    expect(() =>
      checkMemoryAgainstModel(mem, { ...model, id: 'other', sha256: 'c'.repeat(64) }),
    ).toThrow(/belongs to model tiny-test \(sha256 aaaaaaaaaaaa…\), not other/)
    expect(() => checkMemoryAgainstModel(mem, { ...model, layers: 3 })).toThrow(
      /layers 2, model tiny-test has 3/,
    )
    expect(() => checkMemoryAgainstModel(mem, { ...model, headDim: 8 })).toThrow(ModelMismatchError)
  })
})

describe('pinned kinds, carried scores and layerIds', () => {
  const empty = emptyMemory({ model: MODEL, layers: 2, kvHeads: 2, headDim: 2 })
  const first = appendPrefix(empty, present(2, 2, 3, 2), prefix(1, [5, 6, 7]))

  it('appends kind codes with the PINNED bit and refuses other bits', () => {
    const kinds = [TokenKind.text | PINNED, TokenKind.proprio | PINNED]
    const mem = appendPrefix(first, present(2, 2, 5, 2), prefix(2, [8, 9], kinds))
    expect([...mem.layers[1].kinds]).toEqual([0, 0, 0, 0x80, 0x82, 0, 0, 0, 0x80, 0x82])
    for (const bad of [0x83, 0x40, 0xc1, 3]) {
      expect(() => appendPrefix(first, present(2, 2, 5, 2), prefix(2, [8, 9], [0, bad]))).toThrow(
        `kinds[1] = ${bad} is not a TokenKind code`,
      )
    }
  })

  it('extends carried scores with 0 for the new tokens, per head', () => {
    const scored = {
      ...first,
      layers: first.layers.map((layer, l) => ({
        ...layer,
        scores: Float32Array.from([1, 2, 3, 4, 5, 6], (x) => x + 10 * l),
      })),
    }
    const mem = appendPrefix(scored, present(2, 2, 5, 2), prefix(2, [8, 9]))
    expect([...mem.layers[0].scores!]).toEqual([1, 2, 3, 0, 0, 4, 5, 6, 0, 0])
    expect([...mem.layers[1].scores!]).toEqual([11, 12, 13, 0, 0, 14, 15, 16, 0, 0])
    expect(first.layers[0].scores).toBeUndefined()
    expect(appendPrefix(first, present(2, 2, 5, 2), prefix(2, [8, 9])).layers[0].scores).toBe(
      undefined,
    )
  })

  it('gathers carried scores with their rows', () => {
    const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 5, scores: true })
    const keep = Int32Array.from([0, 2, 3, 1, 3, 4]) // head 0 rows 0, 2, 3; head 1 rows 1, 3, 4
    const kept = gatherTokens(mem, [keep, keep])
    const expected = [0, 2, 3].map((t) => scoreValue(1, 0, t))
    expected.push(...[1, 3, 4].map((t) => scoreValue(1, 1, t)))
    expect([...kept.layers[1].scores!]).toEqual(expected)
    expect(memoryBytes(kept) - memoryBytes(gatherTokens(makeMemory(), [keep, keep]))).toBe(
      2 * 6 * 4,
    )
  })

  it('keeps layerIds through append and gather; emptyMemory stores only those layers', () => {
    const bank = emptyMemory({ model: MODEL, layers: 4, kvHeads: 2, headDim: 2, layerIds: [1, 2] })
    expect(bank.layers).toHaveLength(2)
    expect(bank.layerIds).toEqual([1, 2])
    const grown = appendPrefix(bank, present(2, 2, 3, 2), prefix(1, [0, 1, 2]))
    expect(grown.layerIds).toEqual([1, 2])
    const keep = Int32Array.from([1, 2, 1, 2])
    expect(gatherTokens(grown, [keep, keep]).layerIds).toEqual([1, 2])
    for (const layerIds of [[], [2, 1], [1, 4], [1, 1]]) {
      const shape = { model: MODEL, layers: 4, kvHeads: 2, headDim: 2, layerIds }
      expect(() => emptyMemory(shape)).toThrow(RangeError)
    }
  })

  it('checks stored layers against the expected model layers', () => {
    const model = { id: 'tiny-test', sha256: 'a'.repeat(64), layers: 4, kvHeads: 2, headDim: 4 }
    const bank = makeMemory({ layerIds: [1, 2] })
    expect(() => checkMemoryAgainstModel(bank, model, [1, 2])).not.toThrow()
    expect(() => checkMemoryAgainstModel(bank, model, [1, 3])).toThrow(
      'memory holds model layers [1,2], model tiny-test expects model layers [1,3]',
    )
    expect(() => checkMemoryAgainstModel(bank, model)).toThrow(
      'memory holds model layers [1,2], model tiny-test expects all 4 layers',
    )
    const carried = makeMemory({ layers: 4 })
    expect(() => checkMemoryAgainstModel(carried, model)).not.toThrow()
    expect(() => checkMemoryAgainstModel(carried, model, [0, 1, 2, 3])).not.toThrow()
    expect(() => checkMemoryAgainstModel(carried, model, [1, 2])).toThrow(ModelMismatchError)
    expect(() => checkMemoryAgainstModel(carried, model, [1, 2])).toThrow(
      'memory holds all 4 layers, model tiny-test expects model layers [1,2]',
    )
    expect(() => checkMemoryAgainstModel(bank, model, [1, 5])).toThrow(RangeError)
  })
})
