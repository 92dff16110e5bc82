import { describe, expect, it } from 'vitest'
import { decodeMemory, encodeMemory, MEMORY_FORMAT_VERSION } from '../../memory/codec.ts'
import { MemoryCodecError, ModelMismatchError, NumericError } from '../../memory/errors.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { atOffset, editBlob, splitBlob } from './blob-tools.ts'
import { bitsOf, makeMemory, shapeOf } from './fixtures.ts'
import { referenceCrc32, referenceHalf } from './reference.ts'

const POLICY = { name: 'window', params: { sinkTokens: 4, recentTokens: 252 } }

/** Awkward finite float32 values: −0, float32 subnormals, extremes (float32 / float16 range). */
const SPECIALS = {
  float32: [-0, 1e-40, -1e-45, 3.4028234663852886e38, -3.4028234663852886e38, 1 / 3, 6.1e-5, 65520],
  float16: [-0, 1e-40, -1e-45, 65504, -65519, 1 / 3, 6.1e-5, 0.1],
}

/** A memory whose K/V hold the awkward values of one storage dtype. */
function awkwardMemory(dtype: 'float32' | 'float16' = 'float32'): SessionMemory {
  const mem = makeMemory({ layers: 3, kvHeads: 2, headDim: 4, tokens: 5 })
  const specials = SPECIALS[dtype]
  mem.layers[1].keys.set(specials, 0)
  mem.layers[2].values.set(specials, 8)
  return mem
}

function expectSameMemory(actual: SessionMemory, expected: SessionMemory): void {
  const { layers: actualLayers, ...actualRest } = actual
  const { layers: expectedLayers, ...expectedRest } = expected
  expect(actualRest).toEqual(expectedRest)
  actualLayers.forEach((layer, l) => {
    expect(bitsOf(layer.keys)).toEqual(bitsOf(expectedLayers[l].keys))
    expect(bitsOf(layer.values)).toEqual(bitsOf(expectedLayers[l].values))
    expect(layer.positions).toEqual(expectedLayers[l].positions)
    expect(layer.frames).toEqual(expectedLayers[l].frames)
    expect(layer.kinds).toEqual(expectedLayers[l].kinds)
  })
}

describe('memory codec round trip', () => {
  const mem = awkwardMemory()
  const blob = encodeMemory(mem, { policy: POLICY, dtype: 'float32' })

  it('writes the documented prelude, alignment and CRC', () => {
    expect(new TextDecoder().decode(blob.subarray(0, 4))).toBe('SKVM')
    const view = new DataView(blob.buffer)
    expect(view.getUint16(4, true)).toBe(MEMORY_FORMAT_VERSION)
    expect(MEMORY_FORMAT_VERSION).toBe(2)
    const { header } = splitBlob(blob)
    expect(header).toMatchObject({
      seq: 2,
      nextPosition: 20,
      kvHeads: 2,
      headDim: 4,
      layers: 3,
      tokens: 5,
    })
    expect(header).toMatchObject({
      dtype: 'float32',
      hmac: false,
      policy: POLICY,
      model: mem.model,
    })
    expect(header.tensors).toHaveLength(9) // per layer: keys, values, meta
    expect(header.tensors[0]).toEqual({
      name: 'layers.0.keys',
      dtype: 'float32',
      dims: [2, 5, 4],
      offset: 0,
      byteLength: 160,
    })
    // The fixture's metadata, worked by hand (meta-codec.ts): head 0 has positions 10, 12, …, 18
    // (5 runs of one: gap 10, then gap 1 four times), frames 1 1 1 1 2 (delta +1 ×4, then +1 ×1:
    // zigzag 2), kinds 0 1 2 0 1 (5 runs of one); head 1 repeats head 0 (marker 1). Layers 1 and 2
    // repeat layer 0: empty.
    expect(header.tensors[2]).toEqual({
      name: 'layers.0.meta',
      dtype: 'uint8',
      dims: [26],
      offset: 320,
      byteLength: 26,
    })
    const { payload } = splitBlob(blob)
    // prettier-ignore
    expect([...payload.subarray(320, 346)]).toEqual([
      0, // head 0: written out
      10, 1, 1, 1, 1, 1, 1, 1, 1, 1, // positions: (gap, count) × 5
      2, 4, 2, 1, // frames: (zigzag +1, 4), (zigzag +1, 1)
      0, 1, 1, 1, 2, 1, 0, 1, 1, 1, // kinds: (kind, 1) × 5
      1, // head 1: same as head 0
    ])
    expect(header.tensors[5]).toMatchObject({ name: 'layers.1.meta', dims: [0], byteLength: 0 })
    expect(header.tensors[3].offset).toBe(352) // 346 rounded up to 8
    expect((blob.byteLength - 4) % 8).toBe(0)
    expect(view.getUint32(blob.byteLength - 4, true)).toBe(
      referenceCrc32(blob.subarray(0, blob.byteLength - 4)),
    )
  })

  it('round-trips float32 K/V and int32/uint8 metadata bit-exactly', () => {
    const decoded = decodeMemory(blob, shapeOf(mem))
    expectSameMemory(decoded.memory, mem)
    expect(decoded.policy).toEqual(POLICY)
    expect(decoded.dtype).toBe('float32')
  })

  it('decodes from views with byteOffset 3 (copied) and 8 (zero copy)', () => {
    const odd = atOffset(blob, 3)
    const aligned = atOffset(blob, 8)
    const fromOdd = decodeMemory(odd).memory
    const fromAligned = decodeMemory(aligned).memory
    expectSameMemory(fromOdd, mem)
    expectSameMemory(fromAligned, mem)
    expect(fromAligned.layers[0].keys.buffer).toBe(aligned.buffer)
    expect(fromOdd.layers[0].keys.buffer).not.toBe(odd.buffer)
  })

  it('is deterministic and round-trips an empty memory', () => {
    expect(encodeMemory(mem, { policy: POLICY, dtype: 'float32' })).toEqual(blob)
    const empty = makeMemory({ tokens: 0 })
    expectSameMemory(
      decodeMemory(encodeMemory(empty, { policy: POLICY, dtype: 'float16' })).memory,
      empty,
    )
  })
})

describe('float16 storage', () => {
  const mem = awkwardMemory('float16')
  const blob = encodeMemory(mem, { policy: POLICY, dtype: 'float16' })

  it('stores K/V as float16 bits, rounded like the reference', () => {
    const { header, payload } = splitBlob(blob)
    const keys1 = header.tensors.find((t: { name: string }) => t.name === 'layers.1.keys')
    expect(keys1).toMatchObject({ dtype: 'float16', byteLength: 2 * 5 * 4 * 2 })
    const bits = new Uint16Array(payload.buffer, payload.byteOffset + keys1.offset, 8)
    // hand-checked: −0; 1e−40 (< 2^−25) → +0; −1e−45 → −0; 65504 = max; −65519 (< 65520, the
    // midpoint to 2^16) → −65504; 1/3 → 0x3555; 6.1e−5 → subnormal 1023 · 2^−24; 0.1 → 0x2E66
    expect([...bits]).toEqual([0x8000, 0x0000, 0x8000, 0x7bff, 0xfbff, 0x3555, 0x03ff, 0x2e66])
  })

  it('refuses K/V values that overflow float16 instead of storing ±Infinity', () => {
    const big = awkwardMemory('float32') // holds ±3.4e38 and 65520 (rounds to 2^16: overflow)
    expect(() => encodeMemory(big, { policy: POLICY, dtype: 'float16' })).toThrow(NumericError)
    expect(() => encodeMemory(big, { policy: POLICY, dtype: 'float16' })).toThrow(
      'layers.1.keys[3] = 3.4028234663852886e+38 does not fit float16 (max 65504)',
    )
  })

  it('refuses float16 bits of ±Infinity or NaN, naming the value', () => {
    const { header } = splitBlob(blob)
    const at = header.tensors.find((t: { name: string }) => t.name === 'layers.2.values').offset
    for (const [bits, shown] of [
      [0x7c00, 'Infinity'],
      [0xfe01, 'NaN'],
    ] as const) {
      const bad = editBlob(blob, ({ payload }) => {
        new DataView(payload.buffer, payload.byteOffset).setUint16(at + 2 * 5, bits, true)
      })
      expect(() => decodeMemory(bad)).toThrow(
        `memory blob breaks an invariant: layer 2 values[5] is ${shown}`,
      )
    }
  })

  it('decodes to the reference rounding of every value, and the bits survive a second trip', () => {
    const decoded = decodeMemory(atOffset(blob, 3), shapeOf(mem))
    expect(decoded.dtype).toBe('float16')
    decoded.memory.layers.forEach((layer, l) => {
      const expected = Float32Array.from(mem.layers[l].keys, referenceHalf)
      expect(bitsOf(layer.keys)).toEqual(bitsOf(expected))
    })
    expect(encodeMemory(decoded.memory, { policy: POLICY, dtype: 'float16' })).toEqual(blob)
  })
})

describe('encodeMemory input checks', () => {
  const mem = makeMemory()

  it('refuses an unknown dtype, non-finite policy parameters and malformed memories', () => {
    expect(() => encodeMemory(mem, { policy: POLICY, dtype: 'bfloat16' as never })).toThrow(
      TypeError,
    )
    const nanPolicy = { name: 'window', params: { sinkTokens: NaN } }
    expect(() => encodeMemory(mem, { policy: nanPolicy, dtype: 'float32' })).toThrow(TypeError)
    const short = { ...mem, tokens: 6 }
    expect(() => encodeMemory(short, { policy: POLICY, dtype: 'float32' })).toThrow(
      'malformed memory: layer 0 keys has 40 elements, expected 48',
    )
  })
})

describe('memory codec refusals', () => {
  const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 3 })
  const blob = encodeMemory(mem, { policy: POLICY, dtype: 'float32' })
  const crcMessage = /CRC32 mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}/

  it('refuses a single flipped byte anywhere in header, padding, payload or CRC with the CRC error', () => {
    const { header } = splitBlob(blob)
    expect(header.tensors.length).toBe(6)
    for (let at = 10; at < blob.byteLength; at++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = blob.slice()
        bad[at] ^= mask
        let error: unknown
        try {
          decodeMemory(bad)
        } catch (caught) {
          error = caught
        }
        if (!(error instanceof MemoryCodecError) || !crcMessage.test(error.message)) {
          expect.fail(`byte ${at} ^ ${mask}: ${String(error)}`)
        }
      }
    }
  })

  it('refuses a changed header length or a blob with trailing bytes', () => {
    for (const delta of [-1, 1, 8, 100_000]) {
      const bad = blob.slice()
      const view = new DataView(bad.buffer)
      view.setUint32(6, view.getUint32(6, true) + delta, true)
      expect(() => decodeMemory(bad)).toThrow(MemoryCodecError)
    }
    const longer = new Uint8Array(blob.byteLength + 8)
    longer.set(blob)
    expect(() => decodeMemory(longer)).toThrow(crcMessage)
  })

  it.each([0, 5, 13, 20, 200, -1, -4, -5, -9, -100])(
    'refuses the blob cut at %i bytes as truncated',
    (cut) => {
      const short = blob.slice(0, cut < 0 ? blob.byteLength + cut : cut)
      const run = () => decodeMemory(short)
      expect(run).toThrow(MemoryCodecError)
      expect(run).toThrow(/truncated|too short/)
      try {
        run()
      } catch (error) {
        expect((error as MemoryCodecError).code).toBe('memory_truncated')
      }
    },
  )

  it('refuses a wrong magic and an unknown version', () => {
    const magic = blob.slice()
    magic[3] = 'X'.charCodeAt(0)
    expect(() => decodeMemory(magic)).toThrow('not a memory blob: magic is "SKVX", expected "SKVM"')
    for (const unknown of [0, 3, 0xffff]) {
      const version = blob.slice()
      new DataView(version.buffer).setUint16(4, unknown, true)
      expect(() => decodeMemory(version)).toThrow(
        `unknown memory format version ${unknown} (this build reads 1 and 2)`,
      )
    }
  })

  it('refuses a blob of another model, or shapes that disagree with expect', () => {
    const expect_ = shapeOf(mem)
    const other = { ...expect_, model: { id: 'other', sha256: 'f'.repeat(64) } }
    expect(() => decodeMemory(blob, other)).toThrow(ModelMismatchError)
    expect(() => decodeMemory(blob, other)).toThrow(/belongs to model tiny-test .* not other/)
    expect(() => decodeMemory(blob, { ...expect_, layers: 3 })).toThrow(
      /memory has layers 2, model tiny-test has 3/,
    )
    expect(() => decodeMemory(blob, { ...expect_, kvHeads: 1 })).toThrow(/kvHeads 2, .* has 1/)
    expect(() => decodeMemory(blob, { ...expect_, headDim: 8 })).toThrow(/headDim 4, .* has 8/)
    expect(() => decodeMemory(blob, expect_)).not.toThrow()
  })
})

describe('carried scores and layerIds in the blob', () => {
  const scored = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 3, scores: true })
  const bank = makeMemory({ layerIds: [1, 2], kvHeads: 2, headDim: 4, tokens: 3 })
  const bankShape = { model: bank.model, layers: 4, kvHeads: 2, headDim: 4, layerIds: [1, 2] }

  it('stores scores as layers.{l}.scores float32 [kvHeads, tokens] behind `scores: true`', () => {
    for (const dtype of ['float32', 'float16'] as const) {
      const blob = encodeMemory(scored, { policy: POLICY, dtype })
      const { header } = splitBlob(blob)
      expect(header.scores).toBe(true)
      expect(header.tensors).toHaveLength(8)
      expect(header.tensors[3]).toMatchObject({
        name: 'layers.0.scores',
        dtype: 'float32',
        dims: [2, 3],
        byteLength: 24,
      })
      const decoded = decodeMemory(blob, shapeOf(scored)).memory
      decoded.layers.forEach((layer, l) => {
        expect(bitsOf(layer.scores!)).toEqual(bitsOf(scored.layers[l].scores!))
      })
    }
    const plain = splitBlob(encodeMemory(makeMemory(), { policy: POLICY, dtype: 'float32' }))
    expect('scores' in plain.header).toBe(false)
    expect('layerIds' in plain.header).toBe(false)
    expect(
      decodeMemory(encodeMemory(makeMemory(), { policy: POLICY, dtype: 'float32' })).memory,
    ).not.toHaveProperty('layerIds')
  })

  it('round-trips layerIds and checks them against expect', () => {
    const blob = encodeMemory(bank, { policy: POLICY, dtype: 'float32' })
    expect(splitBlob(blob).header.layerIds).toEqual([1, 2])
    const decoded = decodeMemory(blob, bankShape).memory
    expect(decoded.layerIds).toEqual([1, 2])
    expectSameMemory(decoded, bank)
    expect(() => decodeMemory(blob, { ...bankShape, layerIds: [2, 3] })).toThrow(
      'memory holds model layers [1,2], model tiny-test expects model layers [2,3]',
    )
    const { layerIds: _, ...allLayers } = bankShape
    expect(() => decodeMemory(blob, allLayers)).toThrow(ModelMismatchError)
    const carried = encodeMemory(makeMemory({ layers: 4 }), { policy: POLICY, dtype: 'float32' })
    expect(() => decodeMemory(carried, bankShape)).toThrow(
      'memory holds all 4 layers, model tiny-test expects model layers [1,2]',
    )
  })

  it('refuses a scores flag without tensors, tensors without the flag, bad layerIds', () => {
    const blob = encodeMemory(scored, { policy: POLICY, dtype: 'float32' })
    const noFlag = editBlob(blob, ({ header }) => void delete header.scores)
    expect(() => decodeMemory(noFlag)).toThrow('tensor table has 8 entries, a 2-layer memory has 6')
    const falseFlag = editBlob(blob, ({ header }) => void (header.scores = false))
    expect(() => decodeMemory(falseFlag)).toThrow(/memory header is invalid: scores/)
    const plain = encodeMemory(makeMemory(), { policy: POLICY, dtype: 'float32' })
    const flagOnly = editBlob(plain, ({ header }) => void (header.scores = true))
    expect(() => decodeMemory(flagOnly)).toThrow('a 2-layer memory has 8')
    const nanScore = editBlob(blob, ({ header, payload }) => {
      const at = header.tensors.find((t: { name: string }) => t.name === 'layers.1.scores').offset
      new DataView(payload.buffer, payload.byteOffset).setFloat32(at + 8, NaN, true)
    })
    expect(() => decodeMemory(nanScore)).toThrow('layer 1 scores[2] is NaN')
    // `trusted` (a deployment's own copy) skips only the value scan: the NaN comes through, while
    // the CRC, the header and the metadata invariants are still checked
    expect(Number.isNaN(decodeMemory(nanScore, undefined, { trusted: true }).memory.layers[1].scores![2])).toBe(true)
    const nanKey = editBlob(blob, ({ header, payload }) => {
      const at = header.tensors.find((t: { name: string }) => t.name === 'layers.0.keys').offset
      new DataView(payload.buffer, payload.byteOffset).setFloat32(at + 4, Infinity, true)
    })
    expect(() => decodeMemory(nanKey)).toThrow('layer 0 keys[1] is Infinity')
    expect(decodeMemory(nanKey, undefined, { trusted: true }).memory.layers[0].keys[1]).toBe(Infinity)
    const flipped = Uint8Array.from(nanKey)
    flipped[flipped.length - 100] ^= 1
    expect(() => decodeMemory(flipped, undefined, { trusted: true })).toThrow(/CRC32 mismatch/)
    expect(() => decodeMemory(flagOnly, undefined, { trusted: true })).toThrow('a 2-layer memory has 8')
    const bankBlob = encodeMemory(bank, { policy: POLICY, dtype: 'float32' })
    for (const [layerIds, message] of [
      [[2, 1], /layerIds must be integers ≥ 0, strictly increasing/],
      [[1], /layerIds has 1 entries, memory has 2 layers/],
      [[1, -2], /memory header is invalid: layerIds/],
    ] as const) {
      const bad = editBlob(bankBlob, ({ header }) => void (header.layerIds = layerIds))
      expect(() => decodeMemory(bad)).toThrow(MemoryCodecError)
      expect(() => decodeMemory(bad)).toThrow(message)
    }
  })
})
