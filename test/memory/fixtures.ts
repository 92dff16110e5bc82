/**
 * @module Test memories whose every value encodes where it came from, so a gather or a round trip
 * can be checked by reading the numbers back.
 */
import type { SessionMemory } from '../../memory/types.ts'

/** Options of `makeMemory`. */
export interface FixtureShape {
  layers?: number
  kvHeads?: number
  headDim?: number
  tokens?: number
  sha256?: string
  /** Carry `scores` `[kvHeads, tokens]` = `scoreValue(l, h, t)` in every layer. */
  scores?: boolean
  /** Store these model layers (`layerIds`); `layers` then defaults to their count. */
  layerIds?: number[]
}

/** Carried score of (layer, head, token): exact in float32, unique. */
export const scoreValue = (layer: number, head: number, token: number): number =>
  layer * 100 + head * 10 + token / 8

/** K/V element value: exact in float32 (dyadic), unique per (layer, head, token, dim, part). */
export function kvValue(
  layer: number,
  head: number,
  token: number,
  dim: number,
  isValue = false,
): number {
  return (isValue ? -1 : 1) * (layer * 10_000 + head * 1000 + token + dim / 64)
}

/** Token t was prefilled at position 10 + 2t, by step 1 + ⌊t/4⌋, kind t mod 3. */
export const fixturePosition = (token: number): number => 10 + 2 * token

/**
 * A memory with `tokens` rows per head, values from `kvValue`, positions `10 + 2t`, frames
 * `1 + ⌊t/4⌋`, kinds `t mod 3`; nextPosition = last position + 2, seq = last frame.
 */
export function makeMemory({
  layerIds,
  layers = layerIds?.length ?? 2,
  kvHeads = 2,
  headDim = 4,
  tokens = 5,
  sha256 = 'a'.repeat(64),
  scores = false,
}: FixtureShape = {}): SessionMemory {
  const layerList = Array.from({ length: layers }, (_, l) => {
    const keys = new Float32Array(kvHeads * tokens * headDim)
    const values = new Float32Array(kvHeads * tokens * headDim)
    const positions = new Int32Array(kvHeads * tokens)
    const frames = new Int32Array(kvHeads * tokens)
    const kinds = new Uint8Array(kvHeads * tokens)
    for (let h = 0; h < kvHeads; h++) {
      for (let t = 0; t < tokens; t++) {
        const row = h * tokens + t
        positions[row] = fixturePosition(t)
        frames[row] = 1 + Math.floor(t / 4)
        kinds[row] = t % 3
        for (let d = 0; d < headDim; d++) {
          keys[row * headDim + d] = kvValue(l, h, t, d)
          values[row * headDim + d] = kvValue(l, h, t, d, true)
        }
      }
    }
    if (!scores) return { keys, values, positions, frames, kinds }
    const score = new Float32Array(kvHeads * tokens)
    for (let h = 0; h < kvHeads; h++)
      for (let t = 0; t < tokens; t++) score[h * tokens + t] = scoreValue(l, h, t)
    return { keys, values, positions, frames, kinds, scores: score }
  })
  return {
    model: { id: 'tiny-test', sha256 },
    layers: layerList,
    kvHeads,
    headDim,
    tokens,
    nextPosition: tokens > 0 ? fixturePosition(tokens - 1) + 2 : 0,
    seq: tokens > 0 ? 1 + Math.floor((tokens - 1) / 4) : 0,
    ...(layerIds && { layerIds: [...layerIds] }),
  }
}

/** The memory's model shape, as `decodeMemory`'s `expect` takes it. */
export function shapeOf(mem: SessionMemory) {
  return {
    model: { ...mem.model },
    layers: mem.layers.length,
    kvHeads: mem.kvHeads,
    headDim: mem.headDim,
  }
}

/** Raw bits of a float32 array, for bit-exact comparisons (−0, NaN payloads). */
export const bitsOf = (data: Float32Array): Uint32Array =>
  new Uint32Array(data.buffer, data.byteOffset, data.length).slice()
