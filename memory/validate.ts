/**
 * @module Invariants of a `SessionMemory`, as checks that return the first problem found (or
 * undefined), so each caller throws the error class that fits it (a corrupt blob, a bug, a model).
 */
import { KIND_MASK, TokenKind, type SessionMemory } from './types.ts'

const KIND_CODES = new Set<number>(Object.values(TokenKind))

/**
 * True when `code` is a stored kind code: an integer 0 … 255 whose `KIND_MASK` bits are a
 * `TokenKind` (0 text, 1 visual, 2 proprio), optionally with the `PINNED` bit (0x80). Any other
 * bit set (e.g. 0x40, or 3 in the kind bits) is invalid.
 */
export function isTokenKindCode(code: number): boolean {
  return Number.isInteger(code) && code >= 0 && code <= 0xff && KIND_CODES.has(code & KIND_MASK)
}

/** True for a safe integer ≥ `min`. */
export function isCount(value: unknown, min = 0): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min
}

/**
 * Index of the first NaN/±Infinity in `values`, or −1 when all are finite. One branch-free pass
 * (x · 0 is ±0 for finite x and NaN otherwise, summed in four chains) at several GB/s; the index
 * is searched only when something is not finite.
 * @param values Float32Array, any shape (flat)
 */
export function firstNonFinite(values: Float32Array): number {
  const n = values.length
  const end = n & ~3
  let a = 0
  let b = 0
  let c = 0
  let d = 0
  for (let i = 0; i < end; i += 4) {
    a += values[i] * 0
    b += values[i + 1] * 0
    c += values[i + 2] * 0
    d += values[i + 3] * 0
  }
  for (let i = end; i < n; i++) a += values[i] * 0
  if (a + b + c + d === 0) return -1
  for (let i = 0; i < n; i++) {
    const x = values[i]
    if (x - x !== 0) return i // NaN − NaN and ∞ − ∞ are NaN; finite x − x is 0
  }
  return -1
}

/**
 * Index (into `kv`) of the first NaN/±Infinity in the S new rows of any head of a K/V tensor
 * `[heads, P + S, headDim]` — the rows a prefill appended after the P carried ones — or −1.
 * @param kv Float32Array `[heads, P + S, headDim]` (flat)
 * @param P carried rows per head (not scanned), S new rows per head (tokens)
 */
export function firstNonFiniteNewRows(kv: Float32Array, heads: number, P: number, S: number, headDim: number): number {
  for (let h = 0; h < heads; h++) {
    const from = (h * (P + S) + P) * headDim
    const at = firstNonFinite(kv.subarray(from, from + S * headDim))
    if (at >= 0) return from + at
  }
  return -1
}

/**
 * Scalars and array lengths: layers ≥ 1, kvHeads ≥ 1, headDim ≥ 1, tokens/nextPosition/seq ≥ 0;
 * per layer `keys`/`values` Float32Array `[kvHeads, tokens, headDim]`, `positions`/`frames`
 * Int32Array and `kinds` Uint8Array `[kvHeads, tokens]`; `scores` Float32Array
 * `[kvHeads, tokens]` in every layer or in none; `layerIds`, when present, one integer ≥ 0 per
 * stored layer, strictly increasing. O(layers), reads no tensor data.
 * @returns a description of the first problem, or undefined
 */
export function shapeProblem(mem: SessionMemory): string | undefined {
  const { kvHeads, headDim, tokens } = mem
  if (!isCount(kvHeads, 1)) return `kvHeads must be an integer ≥ 1, got ${kvHeads}`
  if (!isCount(headDim, 1)) return `headDim must be an integer ≥ 1, got ${headDim}`
  if (!isCount(tokens)) return `tokens must be an integer ≥ 0, got ${tokens}`
  if (!isCount(mem.nextPosition))
    return `nextPosition must be an integer ≥ 0, got ${mem.nextPosition}`
  if (!isCount(mem.seq)) return `seq must be an integer ≥ 0, got ${mem.seq}`
  if (!Array.isArray(mem.layers) || mem.layers.length < 1) return 'memory needs at least one layer'
  const layerIdsProblem = layerIdsShapeProblem(mem.layerIds, mem.layers.length)
  if (layerIdsProblem) return layerIdsProblem
  const kvLength = kvHeads * tokens * headDim
  const metaLength = kvHeads * tokens
  const withScores = mem.layers[0].scores !== undefined
  for (let l = 0; l < mem.layers.length; l++) {
    const layer = mem.layers[l]
    const arrays = [
      ['keys', layer.keys, Float32Array, kvLength],
      ['values', layer.values, Float32Array, kvLength],
      ['positions', layer.positions, Int32Array, metaLength],
      ['frames', layer.frames, Int32Array, metaLength],
      ['kinds', layer.kinds, Uint8Array, metaLength],
    ] as const
    for (const [name, array, ctor, expected] of arrays) {
      if (!(array instanceof ctor)) return `layer ${l} ${name} must be a ${ctor.name}`
      if (array.length !== expected) {
        return `layer ${l} ${name} has ${array.length} elements, expected ${expected}`
      }
    }
    if ((layer.scores !== undefined) !== withScores) {
      return `layer ${l} ${withScores ? 'lacks' : 'has'} scores: every layer has them or none does`
    }
    if (layer.scores !== undefined) {
      if (!(layer.scores instanceof Float32Array)) return `layer ${l} scores must be a Float32Array`
      if (layer.scores.length !== metaLength) {
        return `layer ${l} scores has ${layer.scores.length} elements, expected ${metaLength}`
      }
    }
  }
  return undefined
}

function layerIdsShapeProblem(layerIds: unknown, layers: number): string | undefined {
  if (layerIds === undefined) return undefined
  if (!Array.isArray(layerIds)) return 'layerIds must be an array of layer indices'
  if (layerIds.length !== layers)
    return `layerIds has ${layerIds.length} entries, memory has ${layers} layers`
  for (let i = 0; i < layerIds.length; i++) {
    if (!isCount(layerIds[i]) || (i > 0 && layerIds[i] <= layerIds[i - 1])) {
      return `layerIds must be integers ≥ 0, strictly increasing; got [${layerIds}]`
    }
  }
  return undefined
}

/**
 * Everything `shapeProblem` checks, plus the data: K/V (and scores) finite; per head, positions
 * strictly increasing, ≥ 0 and < nextPosition; frames in 1 … seq; kinds valid kind codes
 * (`isTokenKindCode`: a `TokenKind`, optionally `PINNED`).
 * One pass over every tensor (use on untrusted input, e.g. a decoded blob).
 * @returns a description of the first problem, or undefined
 */
export function memoryProblem(mem: SessionMemory): string | undefined {
  const shape = shapeProblem(mem)
  if (shape) return shape
  const { kvHeads, tokens, nextPosition, seq } = mem
  for (let l = 0; l < mem.layers.length; l++) {
    const { keys, values, positions, frames, kinds, scores } = mem.layers[l]
    for (const [name, data] of [
      ['keys', keys],
      ['values', values],
      ['scores', scores ?? new Float32Array(0)],
    ] as const) {
      const bad = firstNonFinite(data)
      if (bad >= 0) return `layer ${l} ${name}[${bad}] is ${data[bad]}`
    }
    for (let h = 0; h < kvHeads; h++) {
      let previous = -1
      for (let row = h * tokens; row < (h + 1) * tokens; row++) {
        const where = `layer ${l} head ${h} row ${row - h * tokens}`
        if (positions[row] <= previous) return `${where}: positions not strictly increasing`
        if (positions[row] >= nextPosition) {
          return `${where}: position ${positions[row]} ≥ nextPosition ${nextPosition}`
        }
        if (frames[row] < 1 || frames[row] > seq)
          return `${where}: frame ${frames[row]} not in 1…${seq}`
        if (!isTokenKindCode(kinds[row])) return `${where}: unknown token kind ${kinds[row]}`
        previous = positions[row]
      }
    }
  }
  return undefined
}
