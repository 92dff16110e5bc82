/**
 * The version 2 metadata stream (memory/meta-codec.ts): bytes worked by hand and against an
 * independent writer (meta-reference.ts), round trips of random metadata, and every malformed
 * stream refused with its reason (never a crash, never an unchecked value).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryCodecError } from '../../memory/errors.ts'
import { decodeLayerMeta, encodeLayerMeta, type LayerMeta } from '../../memory/meta-codec.ts'
import { PINNED, type SessionMemory } from '../../memory/types.ts'
import { referenceMeta } from './meta-reference.ts'

/** Metadata `[kvHeads, tokens]` from per-head rows. */
function metaOf(heads: { positions: number[]; frames: number[]; kinds: number[] }[]): LayerMeta {
  return {
    positions: Int32Array.from(heads.flatMap((h) => h.positions)),
    frames: Int32Array.from(heads.flatMap((h) => h.frames)),
    kinds: Uint8Array.from(heads.flatMap((h) => h.kinds)),
  }
}

/** A memory holding `layers` of metadata (K/V empty: only the metadata matters here). */
function memoryOf(layers: LayerMeta[], kvHeads: number, tokens: number): SessionMemory {
  return {
    model: { id: 'tiny-test', sha256: 'a'.repeat(64) },
    layers: layers.map((m) => ({ ...m, keys: new Float32Array(0), values: new Float32Array(0) })),
    kvHeads,
    headDim: 1,
    tokens,
    nextPosition: 1000,
    seq: 50,
  }
}

describe('metadata stream bytes', () => {
  // Head 0: positions 3 4 5 9 10, frames 7 7 7 7 8, kinds 1 1 0 0 0|PINNED.
  //   0 (written out); positions (gap 3, 3) (gap 3, 2): 3 3 3 2; frames (zigzag +7 = 14, 4)
  //   (zigzag +1 = 2, 1): 14 4 2 1; kinds (1, 2) (0, 2) (0x80 = LEB128 0x80 0x01, 1).
  // Head 1: positions 0 1 2 3 200, frames 9 9 8 8 8, kinds 2 2 2 2 2.
  //   0; positions (0, 4) (gap 196 = LEB128 0xc4 0x01, 1); frames (18, 2) (zigzag −1 = 1, 3);
  //   kinds (2, 5).
  const layer = metaOf([
    { positions: [3, 4, 5, 9, 10], frames: [7, 7, 7, 7, 8], kinds: [1, 1, 0, 0, PINNED] },
    { positions: [0, 1, 2, 3, 200], frames: [9, 9, 8, 8, 8], kinds: [2, 2, 2, 2, 2] },
  ])
  // prettier-ignore
  const HAND = [
    0, 3, 3, 3, 2, 14, 4, 2, 1, 1, 2, 0, 2, 0x80, 0x01, 1,
    0, 0, 4, 0xc4, 0x01, 1, 18, 2, 1, 3, 2, 5,
  ]

  it('codes runs as worked by hand, and as the reference writer does', () => {
    const bytes = encodeLayerMeta(layer, 2, 5)
    expect([...bytes]).toEqual(HAND)
    expect([...bytes]).toEqual(referenceMeta(memoryOf([layer], 2, 5), 0))
    expect(decodeLayerMeta(bytes, 0, 2, 5, 1000, 50)).toEqual(layer)
  })

  it('writes a repeated head as marker 1, a repeated layer as nothing, no tokens as nothing', () => {
    const same = metaOf([0, 1].map(() => ({ positions: [5, 6], frames: [2, 2], kinds: [1, 0] })))
    expect([...encodeLayerMeta(same, 2, 2)]).toEqual([0, 5, 2, 4, 2, 1, 1, 0, 1, 1])
    expect(encodeLayerMeta(same, 2, 2, same)).toHaveLength(0)
    expect(encodeLayerMeta(metaOf([{ positions: [], frames: [], kinds: [] }]), 1, 0)).toHaveLength(
      0,
    )
    const decoded = decodeLayerMeta(new Uint8Array(0), 1, 2, 2, 1000, 50, same)
    expect(decoded).toEqual(same)
    expect(decoded.positions).not.toBe(same.positions) // a copy
    expect(decodeLayerMeta(new Uint8Array(0), 0, 3, 0, 0, 0)).toEqual(
      metaOf([{ positions: [], frames: [], kinds: [] }]),
    )
  })

  it('refuses positions that do not increase strictly from 0 (a malformed memory)', () => {
    const bad = metaOf([{ positions: [4, 4], frames: [1, 1], kinds: [0, 0] }])
    expect(() => encodeLayerMeta(bad, 1, 2)).toThrow(RangeError)
    const negative = metaOf([{ positions: [-1], frames: [1], kinds: [0] }])
    expect(() => encodeLayerMeta(negative, 1, 1)).toThrow(
      'positions of head 0 must increase strictly',
    )
    expect(() => encodeLayerMeta(bad, 1, 2, bad)).toThrow(RangeError) // even as a repeat
  })
})

/** Metadata of one layer: per head strictly increasing positions, frames in 1 … seq, kind codes. */
const layerArb = (kvHeads: number, tokens: number, seq: number) =>
  fc
    .array(
      fc.record({
        positions: fc
          .uniqueArray(fc.nat(3 * tokens + 300), { minLength: tokens, maxLength: tokens })
          .map((p) => p.sort((a, b) => a - b)),
        frames: fc.array(fc.integer({ min: 1, max: seq }), {
          minLength: tokens,
          maxLength: tokens,
        }),
        kinds: fc.array(fc.constantFrom(0, 1, 2, PINNED, PINNED | 1, PINNED | 2), {
          minLength: tokens,
          maxLength: tokens,
        }),
        repeat: fc.boolean(),
      }),
      { minLength: kvHeads, maxLength: kvHeads },
    )
    .map((heads) => metaOf(heads.map((h, i) => (i > 0 && h.repeat ? heads[i - 1] : h))))

describe('metadata stream round trip', () => {
  it('property: decode(encode(m)) = m, bytes = the reference writer, every layer', () => {
    const cases = fc
      .record({ kvHeads: fc.integer({ min: 1, max: 4 }), tokens: fc.integer({ min: 0, max: 40 }) })
      .chain(({ kvHeads, tokens }) =>
        fc.tuple(
          fc.constant({ kvHeads, tokens }),
          fc.array(layerArb(kvHeads, tokens, 70), { minLength: 1, maxLength: 3 }),
          fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        ),
      )
    fc.assert(
      fc.property(cases, ([{ kvHeads, tokens }, drawn, repeats]) => {
        const layers = drawn.map((m, l) => (l > 0 && repeats[l] ? drawn[l - 1] : m))
        const mem = memoryOf(layers, kvHeads, tokens)
        layers.forEach((meta, l) => {
          const bytes = encodeLayerMeta(meta, kvHeads, tokens, layers[l - 1])
          expect([...bytes]).toEqual(referenceMeta(mem, l))
          expect(decodeLayerMeta(bytes, l, kvHeads, tokens, 1000, 70, layers[l - 1])).toEqual(meta)
        })
      }),
      { numRuns: 300 },
    )
  })

  it('property: arbitrary bytes decode to valid metadata or a MemoryCodecError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 60 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 8 }),
        (bytes, kvHeads, tokens) => {
          try {
            const meta = decodeLayerMeta(bytes, 0, kvHeads, tokens, 500, 20)
            expect(meta.positions).toHaveLength(kvHeads * tokens)
            for (let h = 0; h < kvHeads; h++)
              for (let t = 0; t < tokens; t++) {
                const [p, f] = [meta.positions[h * tokens + t], meta.frames[h * tokens + t]]
                expect(p >= 0 && p < 500 && f >= 1 && f <= 20).toBe(true)
                if (t > 0) expect(p).toBeGreaterThan(meta.positions[h * tokens + t - 1])
              }
          } catch (error) {
            expect(error).toBeInstanceOf(MemoryCodecError)
          }
        },
      ),
      { numRuns: 3000 },
    )
  })
})

describe('malformed metadata streams', () => {
  // One head, 2 tokens unless stated: valid is [0, 5, 2, 2, 2, 1, 2] (positions 5 6, frames 1 1,
  // kinds 1 1).
  const invariant = 'memory blob breaks an invariant: layer 0 head 0'
  // prettier-ignore
  it.each<[string, number[], string, { tokens?: number; heads?: number; next?: number; seq?: number }?]>([
    ['a stream that ends inside a number', [0, 5, 0x82], 'ends inside a number'],
    ['a stream that ends early', [0, 5, 2], 'ends inside a number'],
    ['a number not minimally encoded', [0, 0x85, 0x00, 2, 2, 2, 1, 2], 'not minimally encoded'],
    ['a number of more than 5 bytes', [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 'longer than 5 bytes'],
    ['a number over 2^32 − 1', [0, 0xff, 0xff, 0xff, 0xff, 0x1f, 1], 'exceeds 4294967295'],
    ['a run of 0 rows', [0, 5, 0, 5, 2], 'a position run of 0 rows'],
    ['runs past the token count', [0, 5, 3, 2, 2, 1, 2], 'position runs exceed 2 rows'],
    ['position runs that are not maximal', [0, 5, 1, 0, 1, 2, 2, 1, 2], 'position runs are not maximal'],
    ['frame runs that are not maximal', [0, 5, 2, 2, 1, 0, 1, 1, 2], 'frame runs are not maximal'],
    ['kind runs that are not maximal', [0, 5, 2, 2, 2, 1, 1, 1, 1], 'kind runs are not maximal'],
    ['trailing bytes', [0, 5, 2, 2, 2, 1, 2, 7], '1 trailing bytes'],
    ['a repeat marker on head 0', [1], 'head 0: repeat marker 1'],
    ['an unknown repeat marker', [0, 5, 2, 2, 2, 1, 2, 2], 'head 1: repeat marker 2', { heads: 2 }],
    ['a head written out that repeats the one before', [0, 5, 2, 2, 2, 1, 2, 0, 5, 2, 2, 2, 1, 2], 'head 1 repeats head 0 without the repeat marker', { heads: 2 }],
    ['an empty stream for layer 0', [], 'no previous layer to repeat'],
    ['a position past int32', [0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 1, 1, 1], 'exceeds int32', { tokens: 1, next: 2 ** 40 }],
    ['a position ≥ nextPosition', [0, 9, 2, 2, 2, 1, 2], `${invariant} row 1: position 10 ≥ nextPosition 10`, { next: 10 }],
    ['a frame of 0', [0, 5, 2, 0, 2, 1, 2], `${invariant} row 0: frame 0 not in 1…20`],
    ['a frame past seq', [0, 5, 2, 42, 2, 1, 2], `${invariant} row 0: frame 21 not in 1…20`],
    ['a frame past int32', [0, 5, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1, 2, 1, 1, 2], 'frame 2147483648 exceeds int32', { seq: 2 ** 40 }],
    ['an unknown kind code', [0, 5, 2, 2, 2, 3, 2], `${invariant} row 0: unknown token kind 3`],
    ['a kind with a stray bit', [0, 5, 2, 2, 2, 0x40, 2], `${invariant} row 0: unknown token kind 64`],
  ])('refuses %s', (_, bytes, message, options = {}) => {
    const { tokens = 2, heads = 1, next = 1000, seq = 20 } = options
    const run = () => decodeLayerMeta(Uint8Array.from(bytes), 0, heads, tokens, next, seq)
    expect(run).toThrow(MemoryCodecError)
    expect(run).toThrow(message)
  })

  it('refuses a written-out layer that repeats the layer before', () => {
    const meta = metaOf([{ positions: [5, 6], frames: [1, 1], kinds: [1, 1] }])
    const bytes = encodeLayerMeta(meta, 1, 2)
    expect(() => decodeLayerMeta(bytes, 1, 1, 2, 1000, 20, meta)).toThrow(
      'repeats the previous layer without being empty',
    )
  })
})
