/**
 * @module fast-check arbitraries for memory property tests: memories with per-head positions that
 * have gaps (as after evictions), K/V realistic (small values, outlier tokens), any finite float32
 * (−0, subnormals, ±3.4e38) or clustered a few float32 steps apart (levels collide), and KIVI
 * settings.
 */
import fc from 'fast-check'
import type { KiviOptions } from '../../memory/kivi.ts'
import type { SessionMemory } from '../../memory/types.ts'

/** Float32 values: any finite float32, or N(0,1)-like values with rare ×64 outliers. */
function valuesArb(length: number): fc.Arbitrary<Float32Array> {
  const anyFloat = fc.float32Array({ minLength: length, maxLength: length, noNaN: true })
  const realistic = fc
    .array(fc.tuple(fc.double({ min: -3, max: 3, noNaN: true }), fc.nat(31)), {
      minLength: length,
      maxLength: length,
    })
    .map((pairs) => Float32Array.from(pairs, ([x, roll]) => (roll === 0 ? x * 64 : x)))
  const finite = anyFloat.filter((a) => a.every(Number.isFinite))
  // A few float32 steps apart around one value: levels finer than float32 spacing collide.
  const clustered = fc
    .tuple(
      fc.float({
        noNaN: true,
        noDefaultInfinity: true,
        min: Math.fround(-1e37),
        max: Math.fround(1e37),
      }),
      fc.array(fc.integer({ min: -6, max: 6 }), { minLength: length, maxLength: length }),
    )
    .map(([base, steps]) => {
      const bits = new Uint32Array(Float32Array.of(base).buffer)[0]
      return new Float32Array(Uint32Array.from(steps, (step) => bits + step).buffer)
    })
    .filter((a) => a.every(Number.isFinite))
  return fc.oneof(
    { arbitrary: realistic, weight: 3 },
    { arbitrary: finite, weight: 1 },
    { arbitrary: clustered, weight: 2 },
  )
}

/** Strictly increasing positions in `[0, span)`, `count` of them. */
function positionsArb(count: number, span: number): fc.Arbitrary<number[]> {
  return fc
    .uniqueArray(fc.nat(span - 1), { minLength: count, maxLength: count })
    .map((list) => list.sort((a, b) => a - b))
}

/** Geometry bounds of `memoryArb`. */
export interface MemoryArbOptions {
  maxLayers?: number
  maxKvHeads?: number
  maxHeadDim?: number
  maxTokens?: number
}

/** A valid memory (frames 1, seq 1, kinds text, optional scores). */
export function memoryArb({
  maxLayers = 3,
  maxKvHeads = 3,
  maxHeadDim = 9,
  maxTokens = 40,
}: MemoryArbOptions = {}): fc.Arbitrary<SessionMemory> {
  const geometry = fc.record({
    layers: fc.integer({ min: 1, max: maxLayers }),
    kvHeads: fc.integer({ min: 1, max: maxKvHeads }),
    headDim: fc.integer({ min: 1, max: maxHeadDim }),
    tokens: fc.integer({ min: 0, max: maxTokens }),
    gap: fc.integer({ min: 0, max: 40 }),
    after: fc.integer({ min: 0, max: 40 }),
    scores: fc.boolean(),
  })
  return geometry.chain(({ layers, kvHeads, headDim, tokens, gap, after, scores }) => {
    const span = tokens + gap
    const layerArb = fc.record({
      positions: fc.array(positionsArb(tokens, Math.max(span, 1)), {
        minLength: kvHeads,
        maxLength: kvHeads,
      }),
      keys: valuesArb(kvHeads * tokens * headDim),
      values: valuesArb(kvHeads * tokens * headDim),
    })
    return fc.array(layerArb, { minLength: layers, maxLength: layers }).map((drawn) => {
      const last = Math.max(-1, ...drawn.flatMap((d) => d.positions.flat()))
      return {
        model: { id: 'tiny-test', sha256: 'a'.repeat(64) },
        layers: drawn.map((d) => ({
          keys: d.keys,
          values: d.values,
          positions: Int32Array.from(d.positions.flat()),
          frames: new Int32Array(kvHeads * tokens).fill(1),
          kinds: new Uint8Array(kvHeads * tokens),
          ...(scores && { scores: new Float32Array(kvHeads * tokens).fill(0.5) }),
        })),
        kvHeads,
        headDim,
        tokens,
        nextPosition: last + 1 + after,
        seq: 1,
      }
    })
  })
}

/** KIVI options for a memory of `layers` layers: per-layer bits, G 1…8, R 0…12, either tail,
 * statistics and residual precision float16 (where the data allows; 3 in 4) or float32. */
export function kiviArb(layers: number): fc.Arbitrary<Required<KiviOptions>> {
  const precision = fc.constantFrom(
    'float16' as const,
    'float16' as const,
    'float16' as const,
    'float32' as const,
  )
  return fc.record({
    bits: fc.constantFrom(2 as const, 4 as const),
    layerBits: fc.array(fc.constantFrom(2, 4), { minLength: layers, maxLength: layers }),
    groupSize: fc.integer({ min: 1, max: 8 }),
    residualTokens: fc.integer({ min: 0, max: 12 }),
    tail: fc.constantFrom('residual' as const, 'quantized' as const),
    statsDtype: precision,
    residualDtype: precision,
  })
}

/** Per layer, the same number `budget` of kept rows for every head, chosen at random. */
export function keepArb(mem: SessionMemory): fc.Arbitrary<Int32Array[]> {
  const { kvHeads, tokens } = mem
  const rows = Array.from({ length: tokens }, (_, t) => t)
  return fc.integer({ min: 0, max: tokens }).chain((budget) => {
    const head = fc
      .shuffledSubarray(rows, { minLength: budget, maxLength: budget })
      .map((kept) => kept.sort((a, b) => a - b))
    const layer = fc
      .array(head, { minLength: kvHeads, maxLength: kvHeads })
      .map((heads) => Int32Array.from(heads.flat()))
    return fc.array(layer, { minLength: mem.layers.length, maxLength: mem.layers.length })
  })
}
