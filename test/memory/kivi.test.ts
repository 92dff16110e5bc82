import { describe, expect, it } from 'vitest'
import { decodeMemory, encodeMemory } from '../../memory/codec.ts'
import { MemoryCodecError, ModelMismatchError, NumericError } from '../../memory/errors.ts'
import { roundTrip } from '../../memory/storage.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { editBlob, splitBlob } from './blob-tools.ts'
import { bitsOf, shapeOf } from './fixtures.ts'
import {
  expectWithinGroups,
  precisionOf,
  referenceLayout,
  referencePayloadBytes,
} from './kivi-reference.ts'
import { referenceHalf } from './reference.ts'

const POLICY = { name: 'full', params: {} }

/** A memory of one layer from rows `[kvHeads][tokens][headDim]` and per-head positions. */
function memoryOf(
  keys: number[][][],
  values: number[][][],
  positions: number[][],
  nextPosition: number,
): SessionMemory {
  const [kvHeads, tokens, headDim] = [keys.length, keys[0].length, keys[0][0].length]
  return {
    model: { id: 'tiny-test', sha256: 'a'.repeat(64) },
    layers: [
      {
        keys: Float32Array.from(keys.flat(2)),
        values: Float32Array.from(values.flat(2)),
        positions: Int32Array.from(positions.flat()),
        frames: new Int32Array(kvHeads * tokens).fill(1),
        kinds: new Uint8Array(kvHeads * tokens),
      },
    ],
    kvHeads,
    headDim,
    tokens,
    nextPosition,
    seq: 1,
  }
}

/** Mulberry32: a small seeded PRNG, so the random tests are reproducible. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A memory of realistic K/V: N(0,1) values (Box–Muller), key channel 1 an outlier channel (×40,
 * offset +25, as KIVI reports for keys), every 17th token ×30 (a value outlier). Positions per head
 * skip a few (evictions, at most 9 per head); nextPosition follows the last one.
 */
function realisticMemory(
  layers: number,
  kvHeads: number,
  tokens: number,
  headDim: number,
  seed = 7,
): SessionMemory {
  const random = prng(seed)
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  const mem: SessionMemory = {
    model: { id: 'tiny-test', sha256: 'a'.repeat(64) },
    layers: [],
    kvHeads,
    headDim,
    tokens,
    nextPosition: 0,
    seq: 1,
  }
  for (let l = 0; l < layers; l++) {
    const keys = new Float32Array(kvHeads * tokens * headDim)
    const values = new Float32Array(kvHeads * tokens * headDim)
    const positions = new Int32Array(kvHeads * tokens)
    for (let h = 0; h < kvHeads; h++) {
      let position = 0
      for (let t = 0; t < tokens; t++) {
        if (random() < 0.08 && position < t + 9) position++ // an evicted position
        positions[h * tokens + t] = position++
        for (let d = 0; d < headDim; d++) {
          const i = (h * tokens + t) * headDim + d
          keys[i] = d === 1 ? 25 + 40 * normal() : normal()
          values[i] = t % 17 === 0 ? 30 * normal() : normal()
        }
      }
    }
    const frames = new Int32Array(kvHeads * tokens).fill(1)
    mem.layers.push({ keys, values, positions, frames, kinds: new Uint8Array(kvHeads * tokens) })
    mem.nextPosition = Math.max(mem.nextPosition, ...positions.map((p) => p + 1))
  }
  return mem
}

/** float16 bits → value, from the definition (sign · 2^(e − 15) · 1.f, subnormal 2^−14 · 0.f). */
function halfBitsValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const [e, f] = [(bits >> 10) & 0x1f, bits & 0x3ff]
  if (e === 31) return f ? NaN : sign * Infinity
  return sign * (e === 0 ? 2 ** -14 * (f / 1024) : 2 ** (e - 15) * (1 + f / 1024))
}

/** A tensor of a blob by name, as numbers (float16 widened); `keys.min` etc. are read out of the
 * version 2 `keys.stats` tensor (min part, then max part). */
function tensorOf(blob: Uint8Array, name: string): number[] {
  const { header, payload } = splitBlob(blob)
  const stat = /^(layers\.\d+\.(?:keys|values))\.(min|max)$/.exec(name)
  const entry = header.tensors.find(
    (t: { name: string }) => t.name === (stat ? `${stat[1]}.stats` : name),
  )
  const bytes = payload.slice(entry.offset, entry.offset + entry.byteLength)
  const all =
    entry.dtype === 'uint8'
      ? [...bytes]
      : entry.dtype === 'float16'
        ? [...new Uint16Array(bytes.buffer)].map(halfBitsValue)
        : [...new Float32Array(bytes.buffer)]
  if (!stat) return all
  return stat[2] === 'min' ? all.slice(0, all.length / 2) : all.slice(all.length / 2)
}

describe('KIVI worked by hand', () => {
  // 1 head, headDim 4, G = 4, R = 0, 2 bits (levels 0…3), 4 tokens at positions 0…3,
  // nextPosition 4: block 0 ends at 3 < 4 − 0, so every token is quantized.
  // Keys, one group per channel over the block:
  //   c0: 0, 1, 2, 3      → min 0, max 3, scale 1 → codes 0 1 2 3, exact
  //   c1: 0, 0.4, 1.5, 3  → min 0, max 3, scale 1 → codes 0 0 2 3 (1.5 is a tie: upper level)
  //   c2: −1, −1, −1, 2   → min −1, max 2, scale 1 → codes 0 0 0 3
  //   c3: 5, 5, 5, 5      → scale 0 → codes 0
  // Codes row by row (c0 | c1 << 2 | c2 << 4 | c3 << 6): 0x00, 0x01, 0x0a, 0x3f.
  // Values, one group per token (min(G, headDim) = 4 channels):
  //   t0: 0, 1, 2, 3        → min 0, max 3, scale 1 → codes 0 1 2 3 → 0xe4
  //   t1: −3, 0, 0, 3       → min −3, max 3, scale 2, levels −3 −1 1 3 → 0 ties → 1: 0 2 2 3 → 0xe8
  //   t2: 0.25 ×4           → scale 0 → codes 0 → 0x00
  //   t3: −1, 0.1, 0.2, 0.5 → min −1, max 0.5, scale 0.5, levels −1 −0.5 0 0.5 → 0 2 2 3 → 0xe8
  const keys = [
    [
      [0, 0, -1, 5],
      [1, 0.4, -1, 5],
      [2, 1.5, -1, 5],
      [3, 3, 2, 5],
    ],
  ]
  const values = [
    [
      [0, 1, 2, 3],
      [-3, 0, 0, 3],
      [0.25, 0.25, 0.25, 0.25],
      [-1, 0.1, 0.2, 0.5],
    ],
  ]
  const mem = memoryOf(keys, values, [[0, 1, 2, 3]], 4)
  const storage = { dtype: 'kivi', kivi: { bits: 2, groupSize: 4, residualTokens: 0 } } as const
  const blob = encodeMemory(mem, { policy: POLICY, ...storage })

  it('stores the expected codes, statistics and no residual', () => {
    // Every statistic is a float16 value and each group's min and max take codes 0 and 3 with
    // the float16 levels, so the statistics are stored as float16 (2 bytes each): same values.
    expect(tensorOf(blob, 'layers.0.keys.codes')).toEqual([0x00, 0x01, 0x0a, 0x3f])
    expect(tensorOf(blob, 'layers.0.keys.min')).toEqual([0, 0, -1, 5])
    expect(tensorOf(blob, 'layers.0.keys.max')).toEqual([3, 3, 2, 5])
    expect(tensorOf(blob, 'layers.0.values.codes')).toEqual([0xe4, 0xe8, 0x00, 0xe8])
    expect(tensorOf(blob, 'layers.0.values.min')).toEqual([0, -3, 0.25, -1])
    expect(tensorOf(blob, 'layers.0.values.max')).toEqual([3, 3, 0.25, 0.5])
    expect(tensorOf(blob, 'layers.0.keys.residual')).toHaveLength(0)
    const { header } = splitBlob(blob)
    expect(header.kivi).toEqual({
      bits: [2],
      groupSize: 4,
      residualTokens: 0,
      quantizedTokens: [4],
      keyBlocks: [1],
      statsDtype: ['float16'],
      residualDtype: ['float16'],
    })
    expect(header.tensors.map((t: { name: string }) => t.name)).toEqual([
      'layers.0.keys.codes',
      'layers.0.keys.stats',
      'layers.0.keys.residual',
      'layers.0.values.codes',
      'layers.0.values.stats',
      'layers.0.values.residual',
      'layers.0.meta',
    ])
    expect(header.tensors[1]).toMatchObject({ dtype: 'float16', dims: [2, 1, 4], byteLength: 16 })
    expect(header.tensors[4]).toMatchObject({ dtype: 'float16', dims: [2, 4, 1], byteLength: 16 })
    // The same with float32 statistics: the version 1 values, 4 bytes each.
    const exact = { ...storage, kivi: { ...storage.kivi, statsDtype: 'float32' } } as const
    const single = encodeMemory(mem, { policy: POLICY, ...exact })
    expect(splitBlob(single).header.tensors[1]).toMatchObject({ dtype: 'float32', byteLength: 32 })
    expect(tensorOf(single, 'layers.0.values.max')).toEqual([3, 3, 0.25, 0.5].map(Math.fround))
    expect(decodeMemory(single).memory.layers[0].keys).toEqual(
      decodeMemory(blob).memory.layers[0].keys,
    )
  })

  it('dequantizes to the levels', () => {
    const decoded = decodeMemory(blob, shapeOf(mem))
    expect(decoded.dtype).toBe('kivi')
    expect(decoded.kivi).toEqual({
      groupSize: 4,
      residualTokens: 0,
      layerBits: [2],
      statsDtype: 'float16',
      residualDtype: 'float16',
    })
    const { keys: k, values: v } = decoded.memory.layers[0]
    expect([...k]).toEqual([0, 0, -1, 5, 1, 0, -1, 5, 2, 2, -1, 5, 3, 3, 2, 5])
    expect([...v]).toEqual([0, 1, 2, 3, -3, 1, 1, 3, 0.25, 0.25, 0.25, 0.25, -1, 0, 0, 0.5])
    expect(bitsOf(roundTrip(mem, storage).layers[0].keys)).toEqual(bitsOf(k))
  })

  it('keeps the residual: blocks ending at or after nextPosition − R stay float32', () => {
    // G = 4, R = 3, nextPosition 10: block 0 ends at 3 < 7 (quantized), block 1 ends at 7, not
    // < 7, so positions 4…9 (6 tokens, between R and R + G − 1) stay float32.
    const rows = (t: number) => [t + 0.1, -t, 2 * t + 0.3, 1 / (t + 3)]
    const k = [Array.from({ length: 10 }, (_, t) => rows(t))]
    const v = [Array.from({ length: 10 }, (_, t) => rows(t).reverse())]
    const residual = memoryOf(k, v, [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]], 10)
    const kivi = { bits: 4, groupSize: 4, residualTokens: 3, residualDtype: 'float32' } as const
    const stored = encodeMemory(residual, { policy: POLICY, dtype: 'kivi', kivi })
    expect(splitBlob(stored).header.kivi).toMatchObject({ quantizedTokens: [4], keyBlocks: [1] })
    const back = decodeMemory(stored).memory.layers[0]
    const tail = (a: Float32Array) => bitsOf(a.subarray(4 * 4))
    expect(tail(back.keys)).toEqual(tail(residual.layers[0].keys))
    expect(tail(back.values)).toEqual(tail(residual.layers[0].values))
    expect(bitsOf(back.keys.subarray(0, 16))).not.toEqual(
      bitsOf(residual.layers[0].keys.subarray(0, 16)),
    )
    // By default the residual rows are stored as float16: their nearest float16 (t + 0.1 is not
    // one), 2 bytes a value.
    const half = encodeMemory(residual, {
      policy: POLICY,
      dtype: 'kivi',
      kivi: { ...kivi, residualDtype: 'float16' },
    })
    const entry = splitBlob(half).header.tensors.find(
      (t: { name: string }) => t.name === 'layers.0.keys.residual',
    )
    expect(entry).toMatchObject({ dtype: 'float16', dims: [6, 4], byteLength: 48 })
    const halfBack = decodeMemory(half).memory.layers[0]
    expect([...halfBack.keys.subarray(16)]).toEqual(
      [...residual.layers[0].keys.subarray(16)].map(referenceHalf),
    )
    expect([...halfBack.values.subarray(16)]).toEqual(
      [...residual.layers[0].values.subarray(16)].map(referenceHalf),
    )
  })

  it('keeps between R and R + G − 1 tokens in float32 while a session streams', () => {
    const [G, R] = [8, 5]
    for (let next = 1; next <= 60; next++) {
      const positions = Array.from({ length: next }, (_, t) => t)
      const rows = positions.map((t) => [t, -t])
      const streamed = memoryOf([rows], [rows], [positions], next)
      const { quantizedTokens } = referenceLayout(streamed, {
        bits: [4],
        groupSize: G,
        residualTokens: R,
      })
      const blob = encodeMemory(streamed, {
        policy: POLICY,
        dtype: 'kivi',
        kivi: { groupSize: G, residualTokens: R },
      })
      expect(splitBlob(blob).header.kivi.quantizedTokens).toEqual(quantizedTokens[0])
      const full = next - quantizedTokens[0][0]
      expect(full).toBeGreaterThanOrEqual(Math.min(R, next))
      expect(full).toBeLessThanOrEqual(R + G - 1)
    }
  })
})

describe("KIVI tail 'quantized'", () => {
  it('keeps exactly the last R positions unquantized while a session streams, partial key blocks quantized', () => {
    const [G, R] = [8, 5]
    for (let next = 1; next <= 40; next++) {
      const positions = Array.from({ length: next }, (_, t) => t)
      const rows = positions.map((t) => [t, -t])
      const streamed = memoryOf([rows], [rows], [positions], next)
      const kivi = { groupSize: G, residualTokens: R, tail: 'quantized' as const }
      const { quantizedTokens } = referenceLayout(streamed, { bits: [4], ...kivi })
      const { header } = splitBlob(encodeMemory(streamed, { policy: POLICY, dtype: 'kivi', kivi }))
      expect(header.kivi.quantizedTokens).toEqual(quantizedTokens[0])
      expect(header.kivi.tail).toBe('quantized')
      expect(next - quantizedTokens[0][0]).toBe(Math.min(R, next))
    }
  })

  it('with R = 0 quantizes every row: a smaller blob than the whole-block layout, a fixed point, and the header decides the layout', () => {
    const mem = realisticMemory(2, 2, 45, 8) // 45 tokens (positions with gaps): a partial last block at G = 32
    const tail = { residualTokens: 0, tail: 'quantized' as const }
    const blob = encodeMemory(roundTrip(mem, { dtype: 'kivi', kivi: tail }), { policy: POLICY, dtype: 'kivi', kivi: tail })
    const whole = encodeMemory(roundTrip(mem, { dtype: 'kivi', kivi: { residualTokens: 0 } }), { policy: POLICY, dtype: 'kivi', kivi: { residualTokens: 0 } })
    const { header } = splitBlob(blob)
    expect(header.kivi.quantizedTokens).toEqual([45, 45, 45, 45])
    for (const rows of splitBlob(whole).header.kivi.quantizedTokens) expect(rows).toBeLessThan(45)
    expect(blob.byteLength).toBeLessThan(whole.byteLength)
    const once = roundTrip(mem, { dtype: 'kivi', kivi: tail })
    expect(roundTrip(once, { dtype: 'kivi', kivi: tail }).layers[1].keys).toEqual(once.layers[1].keys)
    const { memory, kivi } = decodeMemory(blob)
    expect(kivi).toMatchObject({ residualTokens: 0, tail: 'quantized' })
    expect(memory.layers[0].keys).toEqual(once.layers[0].keys)
    // without `tail` in the header, the counts disagree with the positions: refused
    const edited = editBlob(blob, (parts) => {
      delete (parts.header.kivi as Record<string, unknown>).tail
    })
    expect(() => decodeMemory(edited)).toThrow(MemoryCodecError)
    expect(() => encodeMemory(mem, { policy: POLICY, dtype: 'kivi', kivi: { tail: 'all' as never } })).toThrow("kivi tail must be 'residual' or 'quantized', got all")
  })
})

describe('KIVI reconstruction error', () => {
  it.each([2, 4] as const)('stays within half a step of every group at %i bits', (bits) => {
    const mem = realisticMemory(2, 2, 100, 16)
    for (const precision of ['float16', 'float32'] as const) {
      const kivi = {
        bits,
        groupSize: 8,
        residualTokens: 5,
        statsDtype: precision,
        residualDtype: precision,
      }
      const back = decodeMemory(encodeMemory(mem, { policy: POLICY, dtype: 'kivi', kivi })).memory
      const stored = precisionOf(mem, kivi)
      // Realistic K/V (outlier channel 25 ± 40σ, ×30 value outliers) fit float16 everywhere.
      expect(stored.stats).toEqual([precision === 'float16', precision === 'float16'])
      expect(stored.residual).toEqual([precision === 'float16', precision === 'float16'])
      expectWithinGroups(mem, back, { bits: [bits, bits], groupSize: 8, residualTokens: 5 }, stored)
    }
  })

  it('honours per-layer bits', () => {
    const mem = realisticMemory(3, 2, 64, 8, 11)
    const kivi = { bits: 4, layerBits: [2, 4, 2], groupSize: 8, residualTokens: 8 } as const
    const blob = encodeMemory(mem, { policy: POLICY, dtype: 'kivi', kivi })
    const { header } = splitBlob(blob)
    expect(header.kivi.bits).toEqual([2, 4, 2])
    const layout = referenceLayout(mem, { ...kivi, bits: [2, 4, 2] })
    const decoded = decodeMemory(blob)
    expect(decoded.kivi?.layerBits).toEqual([2, 4, 2])
    const meanError = [0, 1, 2].map((l) => {
      const rows = layout.quantizedTokens[l].reduce((a, b) => a + b, 0)
      const codes = header.tensors.find(
        (t: { name: string }) => t.name === `layers.${l}.keys.codes`,
      )
      expect(codes.byteLength).toBe(Math.ceil((rows * 8 * kivi.layerBits[l]) / 8))
      let sum = 0
      for (let i = 0; i < mem.layers[l].keys.length; i++)
        sum += Math.abs(mem.layers[l].keys[i] - decoded.memory.layers[l].keys[i])
      return sum / mem.layers[l].keys.length
    })
    expect(meanError[1]).toBeLessThan(meanError[0] / 3) // 15 levels instead of 3
    expect(meanError[1]).toBeLessThan(meanError[2] / 3)
  })
})

describe('KIVI blob size', () => {
  it.each([
    [4, 2, 1024, 16, 4, 32, 32],
    [4, 2, 1024, 16, 2, 32, 32],
    [4, 2, 1024, 16, 4, 32, 0],
    [3, 2, 37, 6, 2, 4, 3],
  ] as const)(
    '%i layers × %i heads × %i tokens × headDim %i at %i bits (G %i, R %i) matches the layout formula',
    (layers, kvHeads, tokens, headDim, bits, groupSize, residualTokens) => {
      const mem = realisticMemory(layers, kvHeads, tokens, headDim, tokens)
      if (tokens === 37) mem.layers.forEach((l) => (l.scores = new Float32Array(kvHeads * tokens)))
      const kivi = { bits, groupSize, residualTokens }
      const blob = encodeMemory(mem, { policy: POLICY, dtype: 'kivi', kivi })
      const headerLength = new DataView(blob.buffer).getUint32(6, true)
      const settings = { ...kivi, bits: mem.layers.map(() => bits) }
      const half = { statsBytes: mem.layers.map(() => 2), residualBytes: mem.layers.map(() => 2) }
      const payload = referencePayloadBytes(mem, settings, half)
      expect(blob.byteLength).toBe(Math.ceil((10 + headerLength) / 8) * 8 + payload + 4)
      const float32 = encodeMemory(mem, { policy: POLICY, dtype: 'float32' }).byteLength
      // G = 4 over headDim 6 stores more statistics than values: only the G = 32 cases shrink
      if (groupSize === 32) expect(blob.byteLength).toBeLessThan(float32 / (bits === 4 ? 4.5 : 6))
      else expect(blob.byteLength).toBeGreaterThan(float32 / 3)
    },
  )

  it('takes float32 statistics and residual in a layer whose values do not fit float16', () => {
    const mem = realisticMemory(3, 2, 80, 8, 3)
    mem.layers[1].keys[3] = 1e6 // quantized row 0 of head 0: a key statistic beyond ±65504
    mem.layers[2].values[mem.layers[2].values.length - 1] = -7e4 // the last residual row
    const kivi = { bits: 4, groupSize: 16, residualTokens: 16 } as const
    const blob = encodeMemory(mem, { policy: POLICY, dtype: 'kivi', kivi })
    const { header } = splitBlob(blob)
    expect(header.kivi.statsDtype).toEqual(['float16', 'float32', 'float16'])
    expect(header.kivi.residualDtype).toEqual(['float16', 'float16', 'float32'])
    const headerLength = new DataView(blob.buffer).getUint32(6, true)
    const payload = referencePayloadBytes(
      mem,
      { ...kivi, bits: [4, 4, 4] },
      {
        statsBytes: [2, 4, 2],
        residualBytes: [2, 2, 4],
      },
    )
    expect(blob.byteLength).toBe(Math.ceil((10 + headerLength) / 8) * 8 + payload + 4)
    const back = decodeMemory(blob).memory
    expectWithinGroups(mem, back, { ...kivi, bits: [4, 4, 4] }, precisionOf(mem, kivi))
    expect(back.layers[2].values[mem.layers[2].values.length - 1]).toBe(-7e4)
  })
})

describe('KIVI decoding stays strict', () => {
  const mem = realisticMemory(2, 2, 12, 3, 5)
  const kivi = { bits: 2, groupSize: 4, residualTokens: 2 } as const
  const blob = encodeMemory(mem, { policy: POLICY, dtype: 'kivi', kivi })
  const crcMessage = /CRC32 mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}/
  type Parts = ReturnType<typeof splitBlob>
  const refuse = (edit: (parts: Parts) => void, message: string | RegExp): void => {
    const bad = editBlob(blob, edit)
    expect(() => decodeMemory(bad)).toThrow(MemoryCodecError)
    expect(() => decodeMemory(bad)).toThrow(message)
  }
  const at = (parts: Parts, name: string): number =>
    parts.header.tensors.find((t: { name: string }) => t.name === name).offset
  const view = (parts: Parts) => new DataView(parts.payload.buffer, parts.payload.byteOffset)

  it('fails the CRC for a flipped byte anywhere', () => {
    expect(decodeMemory(editBlob(blob, () => {})).memory.tokens).toBe(12)
    for (let i = 10; i < blob.byteLength; i++) {
      const bad = blob.slice()
      bad[i] ^= 0x10
      expect(() => decodeMemory(bad)).toThrow(crcMessage)
    }
  })

  it('refuses another model and other stored layers', () => {
    const other = { ...shapeOf(mem), model: { id: 'other', sha256: 'f'.repeat(64) } }
    expect(() => decodeMemory(blob, other)).toThrow(ModelMismatchError)
    expect(() => decodeMemory(blob, { ...shapeOf(mem), layerIds: [0, 2], layers: 3 })).toThrow(
      ModelMismatchError,
    )
  })

  it.each<[string, (parts: Parts) => void, string | RegExp]>([
    [
      'counts that disagree with the positions',
      ({ header }) => void (header.kivi.residualTokens = 7),
      'kivi layer 0: head 0: header says 10 quantized tokens in 3 key blocks, positions give 3 in 1',
    ],
    [
      'counts that disagree with the tensor table',
      ({ header }) => void (header.kivi.keyBlocks[1] = 1),
      /tensor layers\.0\.keys\.stats has dims/,
    ],
    [
      'a NaN statistic',
      // keys.stats: float16 [2, B, headDim], min part first; 0x7e00 is a float16 NaN
      (parts) => view(parts).setUint16(at(parts, 'layers.1.keys.stats') + 2, 0x7e00, true),
      'kivi layer 1: keys statistic 1 has min NaN',
    ],
    [
      'min > max',
      // values.stats of layer 0: min part [Q = 22, 1] then max part; 0xfbff = −65504
      (parts) => view(parts).setUint16(at(parts, 'layers.0.values.stats') + 2 * 22, 0xfbff, true),
      /kivi layer 0: values statistic 0 has min .*, max -65504/,
    ],
    [
      'float32 statistics where the header says float16',
      ({ header }) => void (header.kivi.statsDtype[1] = 'float32'),
      'tensor layers.1.keys.stats is float16, expected float32',
    ],
    [
      'a residual dtype list of the wrong length',
      ({ header }) => void header.kivi.residualDtype.pop(),
      'kivi residualDtype has 1 entries, 2 layers',
    ],
    [
      'non-zero code padding',
      // layer 0 quantizes 10 + 12 rows: 22 · 3 channels · 2 bits = 132 bits, 4 pad bits in byte 16
      (parts) => void (parts.payload[at(parts, 'layers.0.values.codes') + 16] |= 0x80),
      'kivi layer 0: values.codes has non-zero padding bits',
    ],
    [
      'a NaN residual value',
      // layer 0's key residual rows are float16: head 0 quantizes 10 of its 12 rows (layer 1 all),
      // so the first residual value is keys[10 · 3]
      (parts) => view(parts).setUint16(at(parts, 'layers.0.keys.residual'), 0x7e00, true),
      'memory blob breaks an invariant: layer 0 keys[30] is NaN',
    ],
    [
      'a kivi dtype without its header',
      ({ header }) => void delete header.kivi,
      "memory header is invalid: dtype 'kivi' needs a kivi header",
    ],
    [
      'bits for the wrong number of layers',
      ({ header }) => void header.kivi.bits.pop(),
      'kivi bits has 1 entries, 2 layers',
    ],
    [
      '3-bit codes',
      ({ header }) => void (header.kivi.bits[0] = 3),
      /memory header is invalid: kivi/,
    ],
    [
      'more quantized tokens than tokens',
      ({ header }) => void (header.kivi.quantizedTokens[2] = 13),
      'kivi layer 1 head 0: 13 quantized tokens of 12',
    ],
    [
      'a zero group size',
      ({ header }) => void (header.kivi.groupSize = 0),
      /memory header is invalid: kivi\.groupSize/,
    ],
  ])('refuses %s', (_, edit, message) => refuse(edit, message))

  it('refuses a kivi header on a float32 blob', () => {
    const plain = encodeMemory(mem, { policy: POLICY, dtype: 'float32' })
    const { header } = splitBlob(blob)
    const bad = editBlob(plain, (parts) => void (parts.header.kivi = header.kivi))
    expect(() => decodeMemory(bad)).toThrow("a kivi header with dtype 'float32'")
  })
})

describe('KIVI options', () => {
  const mem = realisticMemory(2, 1, 10, 4)
  const encode = (kivi: object) => () =>
    encodeMemory(mem, { policy: POLICY, dtype: 'kivi', kivi: kivi as never })

  it('refuses bad options with RangeError', () => {
    expect(encode({ bits: 3 })).toThrow('kivi bits must be 2 or 4, got 3')
    expect(encode({ layerBits: [4] })).toThrow('kivi layerBits has 1 entries, memory has 2 layers')
    expect(encode({ layerBits: [4, 8] })).toThrow('kivi bits must be 2 or 4, got 8')
    expect(encode({ groupSize: 0 })).toThrow(RangeError)
    expect(encode({ groupSize: 2.5 })).toThrow(RangeError)
    expect(encode({ residualTokens: -1 })).toThrow(RangeError)
    expect(() => roundTrip(mem, { dtype: 'kivi', kivi: { bits: 1 as never } })).toThrow(RangeError)
  })

  it('uses 4 bits, G = 32, R = 32 (as in the KIVI example script), float16 statistics and residual by default', () => {
    const { header } = splitBlob(encodeMemory(mem, { policy: POLICY, dtype: 'kivi' }))
    expect(header.kivi).toMatchObject({
      bits: [4, 4],
      groupSize: 32,
      residualTokens: 32,
      statsDtype: ['float16', 'float16'],
      residualDtype: ['float16', 'float16'],
    })
    expect(encode({ statsDtype: 'bfloat16' })).toThrow(
      "kivi statsDtype must be 'float16' or 'float32', got bfloat16",
    )
  })

  it('refuses NaN and ±Infinity instead of hiding them in statistics', () => {
    const bad = { ...mem, layers: mem.layers.map((l) => ({ ...l, values: l.values.slice() })) }
    bad.layers[1].values[3] = -Infinity
    expect(() => encodeMemory(bad, { policy: POLICY, dtype: 'kivi' })).toThrow(NumericError)
    expect(() => roundTrip(bad, { dtype: 'kivi' })).toThrow(
      'layers.1.values[3] is -Infinity; KIVI stores finite values',
    )
  })
})
